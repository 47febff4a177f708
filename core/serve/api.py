"""The HTTP API of the scoring service (FastAPI): ``create_app(service)``.

Routes: ``POST /v1/events`` (store and score), ``POST /v1/score`` (score one session inline,
store nothing), ``GET /v1/alerts``, ``GET /v1/alerts/stream`` (server-sent events),
``GET /healthz``, ``GET /metrics`` and ``GET /openapi.json``. FastAPI's /docs and /redoc pages
load their JavaScript from a CDN, so they are switched off (the service makes no external
fetch); point any OpenAPI viewer at /openapi.json instead.

Auth: ``Authorization: Bearer <token>`` (``core.serve.tokens``); 401 without a valid token,
403 when the token's role is too low (viewer: read alerts and metrics; analyst and admin:
post events and score). ``insecure_local`` (loopback only, see ``check_bind``) lets every
request in as a local admin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.access import Principal, rank
from core.errors import AnomalystError, ConfigError
from core.serve import codec
from core.serve.event_log import LogFull
from core.serve.events_in import MAX_BODY_BYTES, BodyError, ParsedEvents, parse_events
from core.serve.service import ScoringService
from core.serve.tokens import TokenFile, tokens_path

LOCAL = Principal("local", "admin", authenticated=False)
MAX_ALERTS = 1_000
MAX_STREAM_S = 300.0
HEARTBEAT_S = 15.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or 'localhost') only accepts local connections."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, insecure_local: bool, n_tokens: int) -> None:
    """Refuse to serve without tokens, unless ``insecure_local`` on a loopback host."""
    if insecure_local and not is_loopback(host):
        raise ConfigError(f"--insecure-local must bind a loopback host (127.0.0.1, ::1 or "
                          f"localhost), got {host!r}. Anyone who can reach {host} could post "
                          "events unauthenticated: add a token (anomalyst serve token add "
                          "NAME --role analyst) and drop --insecure-local.")
    if not insecure_local and n_tokens == 0:
        raise ConfigError("the service must have at least one API token, got none. Add one "
                          "with `anomalyst serve token add NAME --role analyst`, or pass "
                          "--insecure-local to serve 127.0.0.1 without auth.")


INLINE_PARSE_BYTES = 16 << 10
"""Bodies up to this size are typed on the event loop when the Python path takes them
(microseconds); anything else goes to a worker thread (ingest's SQL: milliseconds)."""


class FastJSONResponse(JSONResponse):
    """The events answer, rendered by ``codec`` (a 1,000-event answer took longer to encode
    with the standard library than to score)."""

    def render(self, content: Any) -> bytes:
        return codec.dumps(content)


class MeasureMiddleware:
    """Request counts and latency per route (a plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` cost more event-loop time than the scoring request itself)."""

    def __init__(self, app: ASGIApp, metrics: Any) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", "other"), status[0],
                                 time.perf_counter() - started)


def create_app(service: ScoringService, *, insecure_local: bool = False,
               tokens: TokenFile | None = None, max_body_bytes: int = MAX_BODY_BYTES,
               heartbeat_s: float = HEARTBEAT_S) -> FastAPI:
    """The app over a started ``service``."""
    tokens = TokenFile(tokens_path(service.store.path)) if tokens is None else tokens
    if not insecure_local and len(tokens) == 0:
        check_bind("0.0.0.0", insecure_local=False, n_tokens=0)  # raises the message
    app = FastAPI(title="Anomalyst live scoring", version="1", docs_url=None, redoc_url=None)
    app.add_middleware(MeasureMiddleware, metrics=service.metrics)

    # async: FastAPI runs a plain ``def`` dependency in a worker thread (a thread hop per
    # request each); these only look up a hash
    async def principal(request: Request) -> Principal:
        if insecure_local:
            return LOCAL
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        found = tokens.verify(token.strip()) if scheme.lower() == "bearer" and token else None
        if found is None:
            raise HTTPException(401, "a valid API token is required: send Authorization: "
                                "Bearer <token>.", headers={"WWW-Authenticate": "Bearer"})
        return found

    def role(minimum: str) -> Callable[[Principal], Awaitable[Principal]]:
        async def check(who: Principal = Depends(principal)) -> Principal:  # noqa: B008
            if rank(who.role) < rank(minimum):
                raise HTTPException(403, f"this route needs the {minimum} role or higher, "
                                    f"got {who.role} ({who.name}).")
            return who
        return check


    @app.exception_handler(AnomalystError)
    async def user_error(request: Request, exc: AnomalystError) -> JSONResponse:
        status = getattr(exc, "status", 400 if isinstance(exc, ConfigError) else 500)
        return JSONResponse({"error": str(exc)}, status_code=status)

    async def parsed_body(request: Request) -> ParsedEvents:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                raise BodyError(f"the request body must be at most {max_body_bytes:,} bytes, "
                                "got more. Send the events in smaller batches.", 413)
        data = bytes(body)
        if len(data) <= INLINE_PARSE_BYTES:  # a few well-formed events: typed on the loop
            quick = parse_events(data, max_bytes=max_body_bytes, window=service.window,
                                 fast_only=True)
            if quick is not None:
                return quick
        return await run_in_threadpool(parse_events, data, max_bytes=max_body_bytes,
                                       window=service.window)

    @app.post("/v1/events")
    async def post_events(request: Request, all_or_nothing: bool = False,
                          wait_for_store: bool = False,
                          who: Principal = Depends(role("analyst"))  # noqa: B008
                          ) -> Response:
        """Store and score events (a JSON array or NDJSON); per-event answers."""
        parsed = await parsed_body(request)
        rejected = [{"index": i, "status": 422, "reason": r} for i, r in parsed.rejected]
        if rejected and (all_or_nothing or not parsed.rows):
            why = ("all_or_nothing is set and" if all_or_nothing and parsed.rows else "")
            return JSONResponse({"error": f"{why} {len(rejected)} of {parsed.n_total} "
                                 "event(s) are invalid; nothing was stored. Fix them and "
                                 "send again.".strip(), "events": rejected}, status_code=422)
        try:
            result = await service.submit_async(parsed, wait_store=wait_for_store)
        except LogFull as exc:
            return JSONResponse({"error": str(exc)}, status_code=429,
                                headers={"Retry-After": str(math.ceil(exc.retry_after_s))})
        status = 200 if result.applied else 202
        events = [{**e, "status": 422 if e.get("dead_letter") else status}
                  for e in result.events] + rejected
        return FastJSONResponse({"accepted": len(result.events), "rejected": len(rejected),
                                 "applied": result.applied, "seqs": [result.first_seq,
                                                                     result.last_seq],
                                 "events": sorted(events, key=lambda e: e["index"])},
                                status_code=status)

    @app.post("/v1/score")
    async def post_score(request: Request,
                         who: Principal = Depends(role("analyst"))  # noqa: B008
                         ) -> JSONResponse:
        """Score one session's events inline; nothing is stored."""
        parsed = await parsed_body(request)
        if parsed.rejected:
            return JSONResponse({"error": f"{len(parsed.rejected)} event(s) are invalid. Fix "
                                 "them and send again.", "events": [
                                     {"index": i, "reason": r} for i, r in parsed.rejected]},
                                status_code=422)
        return JSONResponse(await run_in_threadpool(service.score_inline, parsed))

    @app.get("/v1/alerts")
    def get_alerts(since: str | None = None, after_id: int = Query(0, ge=0),  # noqa: B008
                   limit: int = Query(100, ge=1, le=MAX_ALERTS),  # noqa: B008
                   who: Principal = Depends(role("viewer"))  # noqa: B008
                   ) -> dict[str, Any]:
        """Live alerts raised at or after ``since`` (ISO 8601), oldest first."""
        return {"alerts": service.alerts(_since(since), after_id=after_id, limit=limit)}

    @app.get("/v1/alerts/stream")
    async def stream_alerts(after_id: int = Query(0, ge=0),  # noqa: B008
                            duration: float = Query(60.0, gt=0, le=MAX_STREAM_S),  # noqa: B008
                            who: Principal = Depends(role("viewer"))  # noqa: B008
                            ) -> StreamingResponse:
        """Server-sent events: each new alert (``event: alert``), a comment heartbeat, and
        the end after ``duration`` seconds (reconnect with the last id as ``after_id``)."""
        return StreamingResponse(_alert_events(service, after_id, duration, heartbeat_s),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness: 200 while the writer runs, 503 otherwise."""
        health = service.health()
        ok = health["status"] == "ok"
        return JSONResponse({"status": health["status"], "pending": health["pending"],
                             "scoring": health["scoring"]},
                            status_code=200 if ok else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(who: Principal = Depends(role("viewer"))) -> PlainTextResponse:  # noqa: B008
        """Prometheus text format."""
        stats = service.writer.stats
        text = service.metrics.render({
            "anomalyst_queue_depth": ("gauge", "Events acknowledged but not yet applied.",
                                      service.log.pending()),
            "anomalyst_events_stored_total": ("counter", "Events written to the store.",
                                              stats.events_stored),
            "anomalyst_alerts_raised_total": ("counter", "Live alerts raised.",
                                              stats.alerts_raised),
            "anomalyst_writer_failures_total": ("counter", "Failed writer batches (retried).",
                                                stats.failures),
            "anomalyst_store_batches_total": ("counter", "Micro-batches written to the store.",
                                              stats.batches),
            "anomalyst_answer_batches_total": ("counter", "Micro-batches answered from memory.",
                                               0 if service.fast is None
                                               else service.fast.stats["batches"]),
            "anomalyst_dead_letters_total": ("counter", "Records moved to the dead-letter "
                                             "file.", stats.dead_letters),
            "anomalyst_embedding_backlog": ("gauge", "Texts waiting for their embedding "
                                            "(their sessions' answers are provisional).",
                                            0 if service.fast is None
                                            else service.fast.embed_backlog()),
        })
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app


def _since(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"since must be an ISO 8601 time, got {text[:40]!r}. Use e.g. "
                            "2026-01-01T00:00:00Z.") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


async def _alert_events(service: ScoringService, after_id: int, duration: float,
                        heartbeat_s: float) -> AsyncIterator[str]:
    """Poll the store for alerts after ``after_id`` once a second, for ``duration`` s."""
    end = time.monotonic() + duration
    last_beat = time.monotonic()
    yield ": connected\n\n"
    while time.monotonic() < end:
        found = await run_in_threadpool(service.alerts, None, after_id=after_id, limit=100)
        for alert in found:
            after_id = int(alert["alert_id"])
            yield f"id: {after_id}\nevent: alert\ndata: {json.dumps(alert)}\n\n"
        if time.monotonic() - last_beat >= heartbeat_s:
            last_beat = time.monotonic()
            yield ": heartbeat\n\n"
        await asyncio.sleep(max(0.0, min(1.0, end - time.monotonic())))
    yield "event: end\ndata: {}\n\n"
