# Test asset: echoes TEXT as ECHO; a text "hang" blocks execute forever, as a deadlocked step would.
import threading

from tritonkit.steps.steps import BatchStep


class TritonPythonModel(BatchStep):
    def read(self, request):
        return self.rows(request, "TEXT")

    def process(self, items):
        if any(value == b"hang" for item in items for value in item.ravel()):
            threading.Event().wait()  # nobody sets it
        return [{"ECHO": item} for item in items]
