"""The gRPC front of the embedded server: every call passes through as bytes; health answers tell the truth.

Triton's gRPC health answers come from tritonserver alone, which still calls a model READY after its Python stub
died (see watchdog.py). So, like the HTTP guard, this front holds the public gRPC port and forwards each call,
unparsed, to tritonserver's private loopback port, except three answers it gives itself while the watchdog's
health file lists a model as down:

  ``ServerReady``                ``ready: false`` (what tritonserver answers while a model loads)
  ``ModelReady`` for that model  ``ready: false``
  ``grpc.health.v1.Health/Check``  ``NOT_SERVING`` (what Kubernetes' native gRPC probe reads)

and, under the watchdog, ``ServerLive`` is answered here: ``live: false`` once it gave up, else ``live: true`` (the
launcher restarts a tritonserver that died or stopped answering).
With ``refuse_model_control`` (tritonserver is in explicit mode for the watchdog only), ``RepositoryModelLoad`` and
``RepositoryModelUnload`` get ``PERMISSION_DENIED``, as the HTTP guard answers 403. ``ModelInfer`` for a model with
as many calls in flight as its admission limit (admission.py, shared with HTTP) gets ``UNAVAILABLE`` at once.

Everything else is tritonserver's: messages, status codes and details, trailing metadata, the admin-key metadata
(which Triton itself checks), deadlines and cancellation (a cancelled or expired call is cancelled upstream too).
``ModelStreamInfer`` streams both ways.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from tritonclient.grpc import service_pb2

from tritonkit.server.front.admission import Admission
from tritonkit.server.health import Health

SERVICE = "/inference.GRPCInferenceService/"
STREAM = f"{SERVICE}ModelStreamInfer"
INFER = f"{SERVICE}ModelInfer"
RESTRICTED = "This protocol is restricted"  # Triton's details when the admin-key metadata is missing or wrong
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# grpc.health.v1.HealthCheckResponse{status: NOT_SERVING}: field 1 (varint) = 2. Written out because the message
# is two bytes and grpcio-health-checking would be a dependency for it alone.
NOT_SERVING = b"\x08\x02"
MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # the HTTP guard's body limit; Triton's own gRPC limit is INT32_MAX
REFUSED_MODEL_CONTROL = ("loading and unloading models is off (MODEL_CONTROL=none); start the server with "
                         "MODEL_CONTROL=explicit to manage models")
OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
           ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
# The channel to tritonserver tries to reconnect at least every 0.5 s: gRPC's default backoff grows to 2 minutes
# while tritonserver restarts, and the front would then refuse calls for seconds after it is ready again.
RECONNECT_MS = 500
CHANNEL_OPTIONS = [*OPTIONS, ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", RECONNECT_MS)]
MODEL_CONTROL = frozenset({f"{SERVICE}RepositoryModelLoad", f"{SERVICE}RepositoryModelUnload"})
# Metadata the channel to tritonserver sets itself; the caller's own (the admin key, ...) goes through.
OWN_METADATA = frozenset({"user-agent", "te", "content-type"})


Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


class Forwarder(grpc.GenericRpcHandler):
    """Serves every method of the public port by forwarding it; answers health itself when the watchdog says so."""

    def __init__(self, channel: grpc.aio.Channel, health: Health, refuse_model_control: bool = False,
                 admission: Admission | None = None):
        self.channel, self.health, self.admission = channel, health, admission or Admission()
        self._calls: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}  # one per method, not one per call
        self.own: dict[str, Handler] = {
            f"{SERVICE}ServerReady": self.server_ready,
            f"{SERVICE}ModelReady": self.model_ready,
            f"{SERVICE}ServerLive": self.server_live,
            HEALTH_CHECK: self.health_check,
            INFER: self.model_infer,
        }
        if refuse_model_control:
            self.own.update(dict.fromkeys(MODEL_CONTROL, self.refuse_model_control))

    def service(self, handler_call_details):
        method = handler_call_details.method
        if method == STREAM:
            return grpc.stream_stream_rpc_method_handler(self._streamer(method))
        return grpc.unary_unary_rpc_method_handler(self.own.get(method) or self._forwarder(method))

    # -- answers of its own -----------------------------------------------------------------------

    async def server_ready(self, request: bytes, context) -> bytes:
        if self.health.down():
            return service_pb2.ServerReadyResponse(ready=False).SerializeToString()
        return await self._forward(f"{SERVICE}ServerReady", request, context)

    async def model_ready(self, request: bytes, context) -> bytes:
        if service_pb2.ModelReadyRequest.FromString(request).name in self.health.down():
            return service_pb2.ModelReadyResponse(ready=False).SerializeToString()
        return await self._forward(f"{SERVICE}ModelReady", request, context)

    async def server_live(self, request: bytes, context) -> bytes:
        live = self.health.live()
        if live is not None:
            return service_pb2.ServerLiveResponse(live=live).SerializeToString()
        return await self._forward(f"{SERVICE}ServerLive", request, context)

    async def health_check(self, request: bytes, context) -> bytes:
        if self.health.down():
            return NOT_SERVING
        return await self._forward(HEALTH_CHECK, request, context)

    async def model_infer(self, request: bytes, context) -> bytes:
        model = model_name(request)
        overloaded = self.admission.enter(model)
        if overloaded is not None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, overloaded)
        try:
            return await self._forward(INFER, request, context)
        finally:
            self.admission.leave(model)

    async def refuse_model_control(self, request: bytes, context) -> bytes:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, REFUSED_MODEL_CONTROL)
        raise AssertionError("abort raises")  # for the type checker: never reached

    # -- passing through --------------------------------------------------------------------------

    def _forwarder(self, method: str) -> Handler:
        async def forward(request: bytes, context) -> bytes:
            return await self._forward(method, request, context)

        return forward

    async def _forward(self, method: str, request: bytes, context) -> bytes:
        if method not in self._calls:
            self._calls[method] = self.channel.unary_unary(method)
        call = self._calls[method](request, metadata=_metadata(context), timeout=_timeout(context))
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            await _fail(context, error)
            raise  # not reached: abort raises

    def _streamer(self, method: str):
        async def stream(requests: AsyncIterator[bytes], context) -> AsyncIterator[bytes]:
            call = self.channel.stream_stream(method)(requests, metadata=_metadata(context), timeout=_timeout(context))
            try:
                async for answer in call:
                    yield answer
            except grpc.aio.AioRpcError as error:
                await _fail(context, error)

        return stream


def model_name(request: bytes) -> str:
    """``ModelInferRequest.model_name`` (field 1) without parsing the tensors: serializers write it first."""
    if request[:1] == b"\x0a":
        length, shift, index = 0, 0, 1
        while index < len(request):
            byte = request[index]
            length |= (byte & 0x7F) << shift
            index += 1
            if byte < 0x80:
                return request[index : index + length].decode("utf-8", "replace")
            shift += 7
    return service_pb2.ModelInferRequest.FromString(request).model_name


def _metadata(context) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((key, value) for key, value in context.invocation_metadata() or ()
                 if key not in OWN_METADATA and not key.startswith((":", "grpc-")))


def _timeout(context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(remaining, 0.001)


async def _fail(context, error: grpc.aio.AioRpcError) -> None:
    """Ends the caller's call with tritonserver's status, details and trailing metadata."""
    trailing = error.trailing_metadata()
    if trailing:
        context.set_trailing_metadata(tuple(trailing))
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE and RESTRICTED in details:
        # Triton 2.51 refuses a restricted API without the admin key as UNAVAILABLE, which clients retry in vain
        # and read as an outage: it is a permission problem (HTTP says 403).
        code = grpc.StatusCode.PERMISSION_DENIED
    elif code == grpc.StatusCode.UNAVAILABLE:
        details = f"tritonserver is not reachable behind the gRPC front ({details}); check the server log"
    await context.abort(code, details)


async def start(listen: str, upstream: str, health: Health, refuse_model_control: bool = False,
                admission: Admission | None = None) -> grpc.aio.Server:
    """Binds ``listen`` (HOST:PORT) and forwards to tritonserver at ``upstream`` (HOST:PORT); returns the server."""
    channel = grpc.aio.insecure_channel(upstream, options=CHANNEL_OPTIONS)
    server = grpc.aio.server(options=OPTIONS)
    server.add_generic_rpc_handlers([Forwarder(channel, health, refuse_model_control, admission)])
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot bind the gRPC front to {listen}: the port is taken or the address is not local")
    await server.start()
    return server
