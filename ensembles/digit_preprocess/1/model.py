# Encoded image -> the digit model input; see tritonkit_steps/imaging.py for each step of the conversion.
from tritonkit_steps.steps import DigitImageStep as TritonPythonModel  # noqa: F401
