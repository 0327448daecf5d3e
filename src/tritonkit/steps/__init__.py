"""Python pre/post-processing steps of the ensembles, shared by every ``ensembles/<step>/1/model.py``.

Triton loads each step's ``model.py``; those files only pick a class from here, so batching the request
list, splitting results back and per-request errors are written once (``steps.py``). The pure parts
(``texts.py``, ``imaging.py``, ``labels.py``) import no Triton module and are unit-tested directly.

The package must be importable inside the server: the embedded server gets it from the project's
editable install; the Docker image copies it (see the Dockerfile).

Exceptions::

    RequestError    one request is bad (empty text, undecodable image...): INVALID_ARG for it alone
"""


class RequestError(ValueError):
    """A request the step cannot process; the message says what was wrong and how to fix it."""
