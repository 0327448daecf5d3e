"""tritonkit: a Triton Inference Server model repository with verified exports, an embedded server and tooling.

Parts (each imports only what it needs; ``tritonkit.client`` needs just ``tritonclient`` and numpy):
  client    typed Client/AsyncClient and the ``tritonkit`` CLI
  server    the embedded tritonserver launcher, the process owner, the front (HTTP, gRPC, metrics), the Docker path
  export    train, convert to ONNX, verify, write configs (models and ensembles)
  steps     the ensembles' Python-backend steps (imported inside tritonserver)
  loadtest  locust users, SLOs and the server-side summary
  bench     the side-by-side benchmark
  catalog   labels, splits and limits shared by all of them
  paths     where the repositories, data and reports live
"""

__version__ = "0.1.0"
