# Test asset: every execution sleeps delay_s, then echoes each request's VALUE as VALUE_OUT.
import json
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self.delay_s = float(parameters.get("delay_s", {}).get("string_value", "0.5"))

    def execute(self, requests):
        time.sleep(self.delay_s)
        responses = []
        for request in requests:
            value = pb_utils.get_input_tensor_by_name(request, "VALUE").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("VALUE_OUT", value)]))
        return responses
