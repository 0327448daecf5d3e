"""Locust load tests against the Triton server: ``python -m tritonkit.loadtest`` (``make loadtest``).

- ``triton_user.TritonUser``: an abstract locust User over the project's ``Client`` (binary tensors; HTTP through
  tritonclient's gevent client, gRPC made gevent-safe); each call fires locust's request event with
  name = model and type = protocol.
- ``locustfile.py``: a weighted mixed workload over the public endpoints and one user class per endpoint,
  load shapes (steady, step, spike), SLOs as the exit code, the load generator's own CPU use.
- ``__main__``: runs locust headless and bounded in time, starts the embedded server when none answers,
  writes CSV + HTML + a summary that puts client percentiles beside the server's queue and compute time
  per model (from the change in its Prometheus counters), and the rollout-under-load scenario.
"""
