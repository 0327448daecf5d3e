# Softmax and label for the two sentiment classes in labels.txt beside config.pbtxt.
from tritonkit.steps.steps import ClassifierPostprocess as TritonPythonModel
