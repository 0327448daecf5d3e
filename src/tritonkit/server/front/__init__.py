"""The front: the public ports, between clients and tritonserver's private loopback ports.

    http_guard.py   HTTP: passes through byte for byte; 400 for what Triton 2.51 answers 500; shape and body checks;
                    a slow body gets 408; honest health from the supervisor's health file
    grpc_guard.py   gRPC: the same passing through, health answers and admission
    admission.py    per-model in-flight limits: 503 at once when a model is full (both protocols, one count)
    __main__.py     ``python -m tritonkit.server.front``: all three ports in one event loop

The front owns no process and knows nothing of the supervisor but the health file it reads (``server/health.py``).
"""
