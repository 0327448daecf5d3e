"""The HTTP front of the embedded server: passes every request through, turns Triton 2.51's
500 for a malformed or incomplete JSON body into the 400 it should be.

Triton 2.51 (the embedded binary, NGC 24.10) reports a request body it cannot parse as JSON with
``500 {"error": "failed to parse the request JSON buffer: ..."}``: the parser's error is tagged
INTERNAL (upstream triton-inference-server/server#8762). A 500 tells the caller the server is at
fault and makes well-behaved clients retry; the caller's body is. So the launcher puts this small
proxy on the public HTTP port and runs tritonserver's HTTP endpoint on a private loopback port.

Everything else passes untouched, byte for byte: bodies (binary tensors, compressed payloads),
status codes, and headers such as the admin key, which Triton itself still checks. gRPC and
metrics do not pass through here. ``--no-http-guard`` (``HTTP_GUARD=0``) serves Triton directly;
``bench/`` measures what the extra hop costs.

Run by the launcher as ``python -m tritonkit.server.guard --listen HOST:PORT --upstream http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from aiohttp import ClientConnectionError, ClientSession, ClientTimeout, TCPConnector, web
from yarl import URL

from tritonkit.server.command import EXIT_TIMEOUT_S

# Triton 2.51's 500s that are the caller's fault, found by fuzzing: JSON it cannot parse; valid JSON that lacks a
# member the protocol requires ("Unable to parse 'inputs'", or an input's 'name', 'shape', 'datatype', 'data');
# and data of the wrong JSON type ("Unable to parse JSON bytes array: attempt to access JSON non-string as string").
PARSE_ERRORS = (b"failed to parse the request JSON buffer", b"Unable to parse ")
MAX_BODY_BYTES = 256 * 1024 * 1024  # Triton's own limit for a request body is far below this
# Per-connection headers (RFC 9110 7.6.1) and those aiohttp recomputes for the new message.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})
MALFORMED_JSON_HINT = (
    "malformed or incomplete JSON in the request body ({detail}); send one JSON object as the KServe v2 protocol "
    'describes, e.g. {{"inputs": [{{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["hi"]}}]}}; '
    "with binary tensors, Inference-Header-Content-Length must count the JSON part's bytes"
)


def _forwarded(headers, drop: frozenset[str] = HOP_BY_HOP) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.items() if name.lower() not in drop]


# aiohttp's server has already decompressed a gzip/deflate request body: Triton gets it plain.
REQUEST_DROP = HOP_BY_HOP | {"content-encoding"}


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


class Health:
    """The watchdog's health file, read on each health request (a few hundred bytes; no file: all healthy)."""

    def __init__(self, path: Path | None):
        self.path = path

    def state(self) -> dict:
        if self.path is None:
            return {"down": [], "gave_up": False, "recoveries": []}
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"down": [], "gave_up": False, "recoveries": []}

    def refusal(self, path: str) -> str | None:
        """Why a health request must answer 503 now, or None to ask tritonserver."""
        state = self.state()
        down = state["down"]
        if path == "/v2/health/live":
            return "the watchdog gave up on a crash-looping model; restart the server" if state["gave_up"] else None
        if path == "/v2/health/ready" and down:
            return f"recovering: {', '.join(down)} cannot answer now (a model's stub is being reloaded)"
        model = MODEL_READY.fullmatch(path)
        if model and model.group(1) in down:
            return f"{model.group(1)} is recovering: a model's stub is being reloaded"
        return None

    def metrics(self) -> str:
        lines = ["# HELP tritonkit_model_recoveries_total Python-backend models the watchdog reloaded, by cause.",
                 "# TYPE tritonkit_model_recoveries_total counter"]
        for entry in self.state()["recoveries"]:
            lines.append(f'tritonkit_model_recoveries_total{{model="{entry["model"]}",cause="{entry["cause"]}"}} '
                         f'{entry["count"]}')
        return "\n".join(lines) + "\n"


MODEL_READY = re.compile(r"/v2/models/([^/]+)(?:/versions/[^/]+)?/ready")
MODEL_CONTROL = re.compile(r"/v2/repository/models/[^/]+/(?:load|unload)")


def make_app(upstream: str, health_file: Path | None = None, refuse_model_control: bool = False) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    base = upstream.rstrip("/")
    health = Health(health_file)

    async def open_session(app: web.Application):
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

    async def forward(request: web.Request) -> web.Response:
        local = answer_locally(request.method, request.path)
        if local is not None:
            return local
        body = await request.read()
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

    def answer_locally(method: str, path: str) -> web.Response | None:
        if method == "GET" and path == "/metrics":
            return web.Response(text=health.metrics(), content_type="text/plain")
        if method == "POST" and refuse_model_control and MODEL_CONTROL.fullmatch(path):
            return web.json_response({"error": "loading and unloading models is off (MODEL_CONTROL=none); start "
                                      "the server with MODEL_CONTROL=explicit to manage models"}, status=403)
        reason = health.refusal(path) if method == "GET" else None
        return None if reason is None else web.json_response({"error": reason}, status=503)

    app.cleanup_ctx.append(open_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.server.guard",
        description="HTTP front for the embedded tritonserver: 400 instead of Triton 2.51's 500 for malformed JSON.",
    )
    parser.add_argument("--listen", required=True, metavar="HOST:PORT", help="public address to serve")
    parser.add_argument("--upstream", required=True, metavar="URL", help="tritonserver's HTTP endpoint")
    parser.add_argument("--health-file", type=Path, help="the watchdog's health file: readiness answers 503 for "
                        "what it lists as down, liveness when it gave up; /metrics shows its recoveries")
    parser.add_argument("--refuse-model-control", action="store_true",
                        help="answer 403 to load/unload (tritonserver is explicit only for the watchdog)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    app = make_app(args.upstream, args.health_file, args.refuse_model_control)
    web.run_app(app, host=host.strip("[]"), port=int(port), print=None,
                access_log=None, handle_signals=True, shutdown_timeout=EXIT_TIMEOUT_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
