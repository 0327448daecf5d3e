"""Issue 38's tokenizer in the graph: does onnxruntime-extensions' ``BertTokenizer`` operator give exactly the ids
of the served tokenizer (ensembles/minilm_tokenizer/1/tokenizer.json) on every text of data/sentiment?

With the operator's defaults, no: 17 texts with accented letters differ ("café" -> [UNK]), as issue 38 found with
``gen_processing_models``. With ``strip_accents=1`` (what the uncased vocabulary's normalizer does), every text
agrees. Run in an environment of its own (the project does not depend on the package yet), after `make export`:

    python3 -m venv /tmp/ortx && /tmp/ortx/bin/pip install "numpy<2" onnx==1.23.2 onnxruntime==1.31.1 \\
        onnxruntime-extensions==0.15.2 tokenizers
    /tmp/ortx/bin/python scripts/ortx_tokenizer_parity.py
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
from onnxruntime_extensions import get_library_path
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "ensembles" / "minilm_tokenizer" / "1" / "tokenizer.json"
EXTRA = ["Un café très bon.", "naïve façade, Ærøskøbing, straße", "ÉCOLE Zoë Brontë"]


def texts() -> list[str]:
    rows = []
    for name in ("reviews.tsv", "challenge.tsv"):
        with open(ROOT / "data" / "sentiment" / name, newline="", encoding="utf-8") as handle:
            rows += [row["text"] for row in csv.DictReader(handle, delimiter="\t")]
    unlabelled = (ROOT / "data" / "sentiment" / "unlabelled.txt").read_text(encoding="utf-8").splitlines()
    return rows + [line for line in unlabelled if line.strip()] + EXTRA


def operator_session(vocabulary: str, **attributes) -> ort.InferenceSession:
    node = helper.make_node("BertTokenizer", ["text"], ["input_ids", "token_type_ids", "attention_mask"],
                            domain="ai.onnx.contrib", vocab_file=vocabulary, do_lower_case=1, **attributes)
    graph = helper.make_graph([node], "tokenizer", [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
                              [helper.make_tensor_value_info(name, TensorProto.INT64, [None])
                               for name in ("input_ids", "token_type_ids", "attention_mask")])
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                  helper.make_opsetid("ai.onnx.contrib", 1)])
    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> int:
    served = Tokenizer.from_file(str(TOKENIZER))
    served.no_padding()
    served.no_truncation()
    vocab = json.loads(TOKENIZER.read_text())["model"]["vocab"]
    vocabulary = "\n".join(token for token, _ in sorted(vocab.items(), key=lambda item: item[1]))
    corpus = texts()
    for label, attributes in (("defaults", {}), ("strip_accents=1", {"strip_accents": 1})):
        session = operator_session(vocabulary, **attributes)
        differ = [text for text in corpus
                  if session.run(["input_ids"], {"text": np.array([text])})[0].tolist() != served.encode(text).ids]
        print(f"{label}: {len(differ)} of {len(corpus)} texts differ from the served tokenizer"
              + (f", e.g. {differ[0]!r}" if differ else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
