"""The server: a real tritonserver on this repository, behind a front that keeps it honest.

    __main__.py   the launcher, ``python -m tritonkit.server`` (what `make serve` runs): wires the two parts below
    supervisor/   owns processes: tritonserver (embedded or in a container), the watchdog, restarts, /dev/shm
    front/        holds the public ports: HTTP and gRPC guards, admission
    health.py     the health file: written by the supervisor, read by the front
    command.py    the command lines of tritonserver, the front and the launcher
    settings.py   ServerSettings: ports, host, admin key, repositories (flags, then environment, then defaults)
    errors.py     the package's exceptions (ServerError and below)
    logs.py       logging: time, level, component; text or JSON
    ports.py      free loopback ports

Arrows run down only: the launcher imports both parts, the parts import the shared modules, never each other.
"""
