"""The baseline: the hand-rolled web service the project's origins describe, built the way they built it.

A Flask app, threaded, that for every request parses JSON (or takes the uploaded image), runs the
tokenizer (Hugging Face ``AutoTokenizer``) or the image preprocessing, then the PyTorch model, one
request at a time: no batching, no ONNX. The weights are the very ones ``make export`` trained and
converted (``artifacts/pytorch/<model>.pt``), so the baseline and Triton serve the same model.

    python -m tritonkit.bench.baseline --model sentiment --port 5000
    curl -s localhost:5000/predict -H 'Content-Type: application/json' -d '{"text": "great movie"}'
"""

from __future__ import annotations

import argparse
import os
import sys

from tritonkit import paths
from tritonkit.export.pipeline import pytorch_weights_path
from tritonkit.server.settings import LOOPBACK

MODELS = {"sentiment": "minilm_sentiment", "digits": "digit_resnet"}


def weights(model: str):
    """The exported state dict, or SystemExit naming the fix."""
    import torch

    path = pytorch_weights_path(paths.model_repository(), MODELS[model])
    if not path.is_file():
        raise SystemExit(f"error: {path} is missing; run `make export` (it saves the trained PyTorch weights)")
    return torch.load(path, map_location="cpu", weights_only=True)


def sentiment_app():
    import torch
    from flask import Flask, jsonify, request
    from transformers import AutoTokenizer

    from tritonkit.export.builtin import text

    tokenizer = AutoTokenizer.from_pretrained(str(text.minilm_path()), local_files_only=True)
    model = text._sentiment_classifier_class()(text.load_encoder())
    model.load_state_dict(weights("sentiment"))
    model.eval()
    app = Flask("sentiment-baseline")

    @app.post("/predict")
    def predict():
        payload = request.get_json(silent=True) or {}
        sentence = payload.get("text")
        if not isinstance(sentence, str) or not sentence.strip():
            return jsonify(error="send JSON {\"text\": \"...\"} with a non-empty text"), 400
        encoded = tokenizer(sentence, truncation=True, max_length=text.MAX_SEQUENCE, return_tensors="pt")
        with torch.no_grad():
            logits = model(encoded["input_ids"], encoded["attention_mask"])
        probabilities = torch.softmax(logits, dim=-1)[0]
        return jsonify(label=text.LABELS[int(probabilities.argmax())], probabilities=probabilities.tolist())

    return app


def digits_app():
    import numpy as np
    import torch
    from flask import Flask, jsonify, request

    from tritonkit.export.builtin import vision
    from tritonkit.steps import RequestError
    from tritonkit.steps.imaging import image_pixels

    model = vision.digit_resnet()
    model.load_state_dict(weights("digits"))
    model.eval()
    app = Flask("digits-baseline")

    @app.post("/predict")
    def predict():
        try:
            pixels = image_pixels(request.get_data(), 0)
        except RequestError as exc:
            return jsonify(error=str(exc)), 400
        with torch.no_grad():
            logits = model(torch.from_numpy(pixels[np.newaxis]))
        probabilities = torch.softmax(logits, dim=-1)[0]
        return jsonify(label=vision.LABELS[int(probabilities.argmax())], probabilities=probabilities.tolist())

    return app


APPS = {"sentiment": sentiment_app, "digits": digits_app}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.bench.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(APPS), required=True)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default=LOOPBACK)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))  # the cores it may run on (taskset), not the machine's
    app = APPS[args.model]()
    print(f"baseline {args.model} ready on http://{args.host}:{args.port}/predict", flush=True)
    app.run(host=args.host, port=args.port, threaded=True)  # Werkzeug's threaded server, as the origins ran it
    return 0


if __name__ == "__main__":
    sys.exit(main())
