# The LSTM's own WordPiece vocabulary, from the tokenizer.json that `make export` writes beside this file.
from tritonkit.steps.steps import TokenizerStep as TritonPythonModel
