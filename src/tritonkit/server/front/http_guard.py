"""The embedded server's front: it holds the public HTTP, gRPC and metrics ports; tritonserver listens on
private loopback ports behind it.

HTTP passes through byte for byte (bodies, binary tensors, compressed payloads, status codes, headers such as the
admin key, which Triton itself still checks), with three corrections of Triton 2.51:
  - its 500 for a malformed or incomplete JSON body (the parser's error is tagged INTERNAL, upstream
    triton-inference-server/server#8762) becomes the 400 it should be: a 500 blames the server and makes
    well-behaved clients retry;
  - an input whose JSON ``shape`` does not match its ``data`` gets 400 before tritonserver sees it: Triton
    allocates by the shape first, and ``[1, 100000000000]`` aborted it (``std::bad_alloc``, see ``shape_error``);
  - health tells the truth: readiness (server and model) answers 503 while the watchdog's health file lists a
    model as down, liveness once the watchdog gave up (see ../health.py and ../supervisor/watchdog.py);
  - a model with as many requests in flight as it can queue and run gets 503 at once, before tritonserver
    spends CPU on the request (see admission.py).
gRPC passes through the same way, with the same health answers and admission (grpc_guard.py). The metrics port
serves Triton's metrics plus the watchdog's ``tritonkit_model_recoveries_total``, so one scrape gets both.

``--no-http-guard`` (``HTTP_GUARD=0``) serves Triton directly on all three ports; ``bench/`` measures what the
extra hop costs.

Run by the launcher as ``python -m tritonkit.server.front`` (__main__.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path

from aiohttp import ClientConnectionError, ClientSession, ClientTimeout, TCPConnector, web
from yarl import URL

from tritonkit.server.front import grpc_guard
from tritonkit.server.front.admission import RETRY_AFTER_S, Admission
from tritonkit.server.health import Health

# Triton 2.51's 500s that are the caller's fault, found by fuzzing: JSON it cannot parse; valid JSON that lacks a
# member the protocol requires ("Unable to parse 'inputs'", or an input's 'name', 'shape', 'datatype', 'data');
# and data of the wrong JSON type ("Unable to parse JSON bytes array: attempt to access JSON non-string as string").
PARSE_ERRORS = (b"failed to parse the request JSON buffer", b"Unable to parse ")
BODY_TIMEOUT_S = 10.0  # a request's whole body must arrive within this, or 408 (slow clients hold nothing longer)
METRICS_TIMEOUT_S = 5  # Triton's metrics page on a busy server; a scrape does not wait longer
MAX_BODY_BYTES = 256 * 1024 * 1024  # Triton's own limit for a request body is far below this
# Per-connection headers (RFC 9110 7.6.1) and those aiohttp recomputes for the new message.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})
UNCHECKED_ELEMENTS = 1 << 20  # Triton's allocation by the shape: at most 8 MB per input below this
INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/[^/]+)?/infer")
MALFORMED_JSON_HINT = (
    "malformed or incomplete JSON in the request body ({detail}); send one JSON object as the KServe v2 protocol "
    'describes, e.g. {{"inputs": [{{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["hi"]}}]}}; '
    "with binary tensors, Inference-Header-Content-Length must count the JSON part's bytes"
)


def _forwarded(headers, drop: frozenset[str] = HOP_BY_HOP) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.items() if name.lower() not in drop]


# aiohttp's server has already decompressed a gzip/deflate request body: Triton gets it plain.
REQUEST_DROP = HOP_BY_HOP | {"content-encoding"}


def shape_error(body: bytes, header_length: str | None) -> str | None:
    """Why an inference body must get 400 before tritonserver sees it, or None to pass it on.

    Triton 2.51 sizes the buffer for an input's JSON ``data`` from its declared ``shape`` before comparing the two:
    ``{"shape": [1, 100000000000], "datatype": "FP32", "data": [1]}`` asks it for 400 GB, and the failed
    allocation (``std::bad_alloc``) aborts tritonserver: one unauthenticated request takes every endpoint down.
    A shape that declares more than ``UNCHECKED_ELEMENTS`` and more than the data holds is refused here with the
    counts. Everything else goes on, so Triton's own messages stay: a small mismatch (Triton allocates a few MB at
    most, then answers 400 itself) and binary tensors (Triton checks their byte size against the shape first).
    """
    if header_length is not None:
        try:
            body = body[: int(header_length)]
        except ValueError:
            return None  # tritonserver names a bad Inference-Header-Content-Length itself
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None  # tritonserver's parse error becomes a 400 on the way back
    problem = protocol_error(request)
    if problem is not None:
        return problem
    for tensor in request.get("inputs") or ():
        if not isinstance(tensor, dict) or "data" not in tensor:
            continue
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(type(dim) is int and dim >= 0 for dim in shape):
            continue  # tritonserver refuses it with its own 400
        declared = math.prod(shape)
        if declared <= UNCHECKED_ELEMENTS:
            continue
        held = _element_count(tensor["data"])
        if declared > held:
            return (f"input {tensor.get('name')!r}: shape {shape} declares {declared} elements but 'data' holds "
                    f"{held}; the shape must match the data (batch dimension first)")
    return None


def protocol_error(request) -> str | None:
    """Where a parsed inference body breaks the JSON types of the Open Inference Protocol (KServe v2), or None.

    Triton 2.51 answers some of these with 500: ``{"id": "", "inputs": [], "parameters": [null, null]}`` (parameters
    as an array) and ``"parameters": null`` got 500 from every model, both found by fuzzing with the protocol's
    published specification. Only the
    types are checked here; a missing member or a wrong value keeps Triton's own 400 (its 500 for a missing one
    becomes a 400 on the way back).
    """
    if not isinstance(request, dict):
        return (f"the request body is a JSON {_json_type(request)}; send one JSON object with an 'inputs' array "
                "(Open Inference Protocol, REST)")
    problems = [_typed(request, "id", str, "id"), _typed(request, "parameters", dict, "parameters"),
                _typed(request, "inputs", list, "inputs"), _typed(request, "outputs", list, "outputs")]
    for kind, members in (("inputs", ("name", "datatype")), ("outputs", ("name",))):
        for index, tensor in enumerate(request.get(kind) or () if isinstance(request.get(kind), list) else ()):
            where = f"{kind}[{index}]"
            if not isinstance(tensor, dict):
                problems.append(f"'{where}' is a JSON {_json_type(tensor)}; each of '{kind}' must be an object")
                continue
            problems += [_typed(tensor, member, str, f"{where}.{member}") for member in members]
            problems.append(_typed(tensor, "parameters", dict, f"{where}.parameters"))
            shape = tensor.get("shape")
            if kind == "inputs" and shape is not None and not (
                    isinstance(shape, list) and all(type(dim) is int for dim in shape)):
                problems.append(f"'{where}.shape' must be an array of integers, e.g. [1, 4]; it is {shape!r:.60}")
    found = [problem for problem in problems if problem]
    return found[0] + " (Open Inference Protocol, REST)" if found else None


def _typed(container: dict, member: str, kind: type, where: str) -> str | None:
    """Why ``member`` of ``container``, when present, is not of ``kind`` (null is none of the protocol's types:
    ``"parameters": null`` got 500 from Triton 2.51, "attempt to get members for non-object")."""
    if member not in container:
        return None
    value = container[member]
    if isinstance(value, kind):
        return None
    wanted = {str: "a string", dict: "a JSON object", list: "an array"}[kind]
    return f"'{where}' must be {wanted}; it is a JSON {_json_type(value)}"


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(type(value), "null")


def _element_count(data) -> int:
    """Leaves of a nested JSON array (a scalar counts as one), judging each list by its first item: never more
    than the body's bytes, so a request that passes cannot make Triton allocate more than it sent."""
    count, pending = 0, [data]
    while pending:
        item = pending.pop()
        if not isinstance(item, list):
            count += 1
        elif item and isinstance(item[0], list):
            pending.extend(item)
        else:
            count += len(item)  # a flat row: no loop over a million numbers
    return count


def is_misreported_parse_error(status: int, body: bytes) -> bool:
    """True for Triton's 500 that is really the caller's malformed or incomplete JSON."""
    return status == 500 and any(marker in body[:512] for marker in PARSE_ERRORS)


def bad_request_body(body: bytes) -> bytes:
    """The 400 body that replaces Triton's 500, keeping Triton's parser message as the detail."""
    try:
        detail = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        detail = body[:300].decode("utf-8", "replace")
    return json.dumps({"error": MALFORMED_JSON_HINT.format(detail=detail)}).encode()


MODEL_CONTROL = re.compile(r"/v2/repository/models/[^/]+/(?:load|unload)")


async def _open_session(app: web.Application):
    # No automatic Accept-Encoding or Content-Type: the client's own headers go through unchanged,
    # and compressed answers stay compressed for the client that asked for them.
    app["session"] = ClientSession(
        connector=TCPConnector(limit=0, ttl_dns_cache=None),
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        timeout=ClientTimeout(total=None, sock_connect=5),
    )
    yield
    await app["session"].close()


async def combined_metrics(session: ClientSession, metrics_url: str | None, health: Health) -> web.Response:
    """Triton's metrics (from its private port) followed by ours; ours alone when tritonserver does not answer."""
    if metrics_url is None:
        return web.Response(text=health.metrics(), content_type="text/plain")
    try:
        async with session.get(metrics_url, timeout=ClientTimeout(total=METRICS_TIMEOUT_S)) as answer:
            triton = await answer.text() if answer.status == 200 else ""
    except (ClientConnectionError, TimeoutError):
        triton = ""
    return web.Response(text=triton + health.metrics(tritonserver_up=bool(triton)), content_type="text/plain")


def make_metrics_app(metrics_url: str, health_file: Path | None = None) -> web.Application:
    """The public metrics port: ``GET /metrics`` as ``combined_metrics``."""
    app = web.Application()
    health = Health(health_file)

    async def metrics(request: web.Request) -> web.Response:
        return await combined_metrics(request.app["session"], metrics_url, health)

    app.cleanup_ctx.append(_open_session)
    app.router.add_get("/metrics", metrics)
    return app


def make_app(upstream: str, health_file: Path | None = None, refuse_model_control: bool = False,
             metrics_url: str | None = None, admission: Admission | None = None) -> web.Application:
    """The public HTTP port (``metrics_url``: tritonserver's private metrics, also served at ``/metrics`` here;
    ``admission``: in-flight limits per model, shared with the gRPC front)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    base = upstream.rstrip("/")
    health = Health(health_file)
    admission = admission or Admission()

    async def forward(request: web.Request) -> web.Response:
        if request.method == "GET" and request.path == "/metrics":
            return await combined_metrics(request.app["session"], metrics_url, health)
        local = answer_locally(request.method, request.path)
        if local is not None:
            return local
        infer = INFER_PATH.fullmatch(request.path) if request.method == "POST" else None
        if infer is None:
            return await pass_on(request)
        # The body first, within a deadline, and only then a place in the model's count: a client that sends the
        # headers and a trickle of its body holds no slot (400 such clients once made every other request a 503)
        # and is not waited for without bound.
        body = await read_body(request)
        if isinstance(body, web.Response):
            return body
        overloaded = admission.enter(infer.group(1))
        if overloaded is not None:
            return web.json_response({"error": overloaded}, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            return await pass_on(request, check_shape=True, body=body)
        finally:
            admission.leave(infer.group(1))

    async def pass_on(request: web.Request, check_shape: bool = False, body: bytes | None = None) -> web.Response:
        if body is None:
            body = await read_body(request)
            if isinstance(body, web.Response):
                return body
        if check_shape and body:
            refusal = shape_error(body, request.headers.get("Inference-Header-Content-Length"))
            if refusal is not None:
                return web.json_response({"error": refusal}, status=400)
        url = URL(base + request.raw_path, encoded=True)
        try:
            async with request.app["session"].request(
                request.method, url, headers=_forwarded(request.headers, REQUEST_DROP), data=body or None
            ) as answer:
                payload = await answer.read()
                status, headers = answer.status, _forwarded(answer.headers)
        except ClientConnectionError as exc:
            message = f"tritonserver behind {base} is not reachable ({exc}); check the server log"
            return web.json_response({"error": message}, status=503)
        if is_misreported_parse_error(status, payload):
            return web.Response(status=400, body=bad_request_body(payload), content_type="application/json")
        return web.Response(status=status, body=payload, headers=headers)

    async def read_body(request: web.Request) -> bytes | web.Response:
        """The whole body, or a 408 when it does not arrive within ``BODY_TIMEOUT_S``."""
        try:
            return await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
        except asyncio.TimeoutError:
            return web.json_response({"error": f"the request body did not arrive within {BODY_TIMEOUT_S:g} s; send "
                                               "it whole"}, status=408, headers={"Connection": "close"})

    def answer_locally(method: str, path: str) -> web.Response | None:
        if method == "GET" and path == "/v2/health/live" and health.live() is not None:
            if health.live():
                return web.Response(status=200)
            return web.json_response({"error": "the watchdog gave up on a crash loop; restart the server"}, status=503)
        if method == "POST" and refuse_model_control and MODEL_CONTROL.fullmatch(path):
            return web.json_response({"error": grpc_guard.REFUSED_MODEL_CONTROL}, status=403)
        reason = health.refusal(path) if method == "GET" else None
        return None if reason is None else web.json_response({"error": reason}, status=503)

    app.cleanup_ctx.append(_open_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app
