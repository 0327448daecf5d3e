"""The supervisor: owns the server's processes, watches them and restarts what died.

    base.py       ServerProcess: start, wait_until_ready, supervise, stop; the context manager every server shares
    process.py    TritonServer: the embedded tritonserver and its front (or the launcher); the supervisor thread
                  that alone applies the watchdog's events to the health state and restarts tritonserver
    container.py  ContainerServer and the docker/podman command lines (the same launcher in a container)
    embedded.py   the tritonserver binary of the nvidia-pytriton wheel and its backends
    watchdog.py   Watchdog: finds dead, stopped and hung stubs, reloads their model, reports events
    procfs.py     what /proc says of children, stubs and a dead server's orphans
    shm.py        sweeps /dev/shm regions no process maps (left by stubs killed with SIGKILL)
    spawn.py      spawn: every child in its own session, stopped when its owner dies

The supervisor knows the front only by its command line (``server/command.py``) and talks to it through the health
file (``server/health.py``); it never imports ``server/front``.
"""
