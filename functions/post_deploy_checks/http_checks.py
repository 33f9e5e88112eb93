"""Runs HTTP checks: concurrently in one event loop, each retried up to ``attempts`` times.

Every attempt is bounded by wall time: ``timeout_seconds`` covers the whole request (name resolution,
connect, TLS, headers and the body, however slowly it trickles), not each socket read; and all checks
together end within ``budget_seconds`` (the invocation's remaining time less what reporting needs), so the
result is always reported before Lambda's deadline. Whatever an endpoint does (late or trickled bytes,
redirect loops, resets, a broken gzip stream or chunked encoding, an unknown charset) becomes a failed
attempt with a reason; it never escapes and never loses the other checks' results.

No AWS here and no environment: header values (secrets already resolved) are passed in and never logged.
TLS is verified against certifi's CA bundle, or a private CA through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import httpx

from post_deploy_checks.evaluate import CheckResult, HttpResponse, evaluate
from post_deploy_checks.spec import CheckSpec, redact_url

MAX_BODY_BYTES = 1_000_000
MAX_REDIRECTS = 10
USER_AGENT = "aws-ops-automations/post_deploy_checks"

Sleep = Callable[[float], Awaitable[None]]
# Monotonic clock for latencies and deadlines; tests replace it to get exact figures.
CLOCK: Callable[[], float] = time.perf_counter
_URL = re.compile(r"https?://[^\s'\"<>]+")


def run_checks(
    specs: Sequence[CheckSpec],
    headers: Mapping[str, Mapping[str, str]],
    *,
    attempts: int,
    interval_seconds: float,
    timeout_seconds: float,
    budget_seconds: float | None = None,
    sleep: Sleep = asyncio.sleep,
) -> list[CheckResult]:
    """One result per check, in the order of ``specs``. ``headers``: check name -> resolved headers.

    ``budget_seconds``: wall time all checks must end within (None: only the per-attempt bound).
    """
    if not specs:
        return []
    return _run(_run_all(specs, headers, attempts, interval_seconds, timeout_seconds, budget_seconds, sleep))


def run_check(
    spec: CheckSpec,
    headers: Mapping[str, str],
    *,
    attempts: int,
    interval_seconds: float,
    timeout_seconds: float,
    budget_seconds: float | None = None,
    sleep: Sleep = asyncio.sleep,
) -> CheckResult:
    """Try ``spec`` until it passes or ``attempts`` are used up; the result of the last attempt."""
    return run_checks([spec], {spec.name: headers}, attempts=attempts, interval_seconds=interval_seconds,
                      timeout_seconds=timeout_seconds, budget_seconds=budget_seconds, sleep=sleep)[0]


def _run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in a private event loop. Closing it does not wait for a resolver thread still
    stuck in a slow ``getaddrinfo`` (``asyncio.run`` would, for up to five minutes)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()  # shuts the default executor down without waiting


async def _run_all(specs: Sequence[CheckSpec], headers: Mapping[str, Mapping[str, str]], attempts: int,
                   interval_seconds: float, timeout_seconds: float, budget_seconds: float | None,
                   sleep: Sleep) -> list[CheckResult]:
    deadline = None if budget_seconds is None else CLOCK() + max(budget_seconds, 0.0)
    async with httpx.AsyncClient(
        follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout_seconds, trust_env=True,
        headers={"User-Agent": USER_AGENT},
    ) as http:
        return list(await asyncio.gather(*(
            _check(http, spec, headers.get(spec.name, {}), attempts, interval_seconds, timeout_seconds, deadline,
                   sleep)
            for spec in specs
        )))


async def _check(http: httpx.AsyncClient, spec: CheckSpec, headers: Mapping[str, str], attempts: int,
                 interval_seconds: float, timeout_seconds: float, deadline: float | None,
                 sleep: Sleep) -> CheckResult:
    url = redact_url(spec.url)
    status: int | None = None
    latency: float | None = None
    reason = "not run: no time left before the invocation's deadline"
    made = 0
    for attempt in range(1, attempts + 1):
        if attempt > 1 and interval_seconds > 0:
            if deadline is not None and CLOCK() + interval_seconds >= deadline:
                break  # no time for another attempt: report what the last one saw
            await sleep(interval_seconds)
        limit = _attempt_limit(timeout_seconds, deadline)
        if limit is None:
            break
        made = attempt
        response, seen_status, error = await _attempt(http, spec, headers, limit, timeout_seconds)
        if response is None:
            status, latency, reason = seen_status, None, error
            continue
        status, latency = response.status, response.latency_ms
        failure = evaluate(spec, response)
        if failure is None:
            return CheckResult(spec.name, url, True, status, latency, attempt)
        reason = failure
    return CheckResult(spec.name, url, False, status, latency, made, reason)


def _attempt_limit(timeout_seconds: float, deadline: float | None) -> float | None:
    """Wall time the next attempt may take: ``timeout_seconds``, less when the deadline is nearer; None when
    no time is left."""
    if deadline is None:
        return timeout_seconds
    left = deadline - CLOCK()
    return min(timeout_seconds, left) if left > 0.05 else None


async def _attempt(http: httpx.AsyncClient, spec: CheckSpec, headers: Mapping[str, str], limit: float,
                   timeout_seconds: float) -> tuple[HttpResponse | None, int | None, str]:
    """One request within ``limit`` seconds of wall time: the response; or None, the status if the headers
    came, and why there is no complete response."""
    started = CLOCK()
    status: int | None = None
    try:
        async with asyncio.timeout(limit):
            # A check that expects a redirect judges the first response; any other follows redirects.
            follow = not any(300 <= code < 400 for code in spec.expect_status)
            async with http.stream(spec.method, spec.url, headers=dict(headers), follow_redirects=follow) as response:
                status = response.status_code
                body = b"" if spec.method == "HEAD" else await _read_body(response)
                latency_ms = (CLOCK() - started) * 1000
                text, body_error = _decode(body, response.charset_encoding)
                return HttpResponse(response.status_code, text, latency_ms, body_error), status, ""
    except (TimeoutError, httpx.TimeoutException):
        if limit < timeout_seconds:
            return None, status, (f"no complete response within the {limit:.1f} s left before the "
                                  "invocation's deadline")
        return None, status, f"no complete response within timeout_seconds {timeout_seconds:g}"
    except httpx.TooManyRedirects:
        return None, status, f"too many redirects (more than {MAX_REDIRECTS})"
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return None, status, _error_reason(exc, body_started=status is not None)


async def _read_body(response: httpx.Response) -> bytes:
    """The decoded body (Content-Encoding undone), at most ``MAX_BODY_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def _decode(body: bytes, charset: str | None) -> tuple[str, str]:
    """The body as text and, when it cannot be decoded, why (only a body check needs the text)."""
    encoding = charset or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        return "", f"body has an unknown charset {_clip(encoding)!r}"
    return body.decode(encoding, errors="replace"), ""


def _error_reason(exc: BaseException, *, body_started: bool) -> str:
    text = _describe(exc)
    if body_started:
        if isinstance(exc, httpx.DecodingError):
            return f"body read failed: its Content-Encoding could not be decoded ({text})"
        return f"body read failed: {text}"
    if "certificate verify failed" in text or "SSL" in text or "TLS" in text:
        return f"TLS error: {text}"
    if isinstance(exc, httpx.TransportError | OSError):
        return f"connection failed: {text}"
    return f"request failed: {type(exc).__name__}: {text}"


_MARKERS = ("Connection refused", "Connection reset", "Name or service not known", "certificate verify failed",
            "No route to host", "Server disconnected", "peer closed connection")


def _describe(exc: BaseException) -> str:
    """A short reason from ``exc`` and its causes (httpx wraps httpcore, which wraps the socket's error)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        chain.extend(getattr(current, "exceptions", ()))  # anyio's group of connection attempts
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return "Connection refused"
        if isinstance(error, ConnectionResetError):
            return "Connection reset"
    texts = [str(error) for error in chain if str(error)]
    for marker in _MARKERS:
        if any(marker in text for text in texts):
            return marker
    text = texts[0] if texts else type(exc).__name__
    return _URL.sub(lambda match: redact_url(match.group(0)), _clip(text))


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
