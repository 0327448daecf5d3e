# MiniLM word pieces ([CLS] ... [SEP]) from the tokenizer.json that `make export` writes beside this file.
from tritonkit.steps.steps import TokenizerStep as TritonPythonModel
