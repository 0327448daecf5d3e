# Softmax and label for the ten digits in labels.txt beside config.pbtxt.
from tritonkit.steps.steps import ClassifierPostprocess as TritonPythonModel
