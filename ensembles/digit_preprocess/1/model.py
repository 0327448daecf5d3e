# Encoded image -> the digit model input; see src/tritonkit/steps/imaging.py for each step of the conversion.
from tritonkit.steps.steps import DigitImageStep as TritonPythonModel
