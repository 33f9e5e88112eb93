"""Runs HTTP checks: concurrently, each retried up to ``attempts`` times with ``interval_seconds`` between.

No AWS here and no environment: header values (secrets already resolved) are passed in and never logged.
TLS is verified with requests' defaults, so a private CA is trusted through ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import requests

from post_deploy_checks.checks import CheckResult, CheckSpec, HttpResponse, evaluate

MAX_BODY_BYTES = 1_000_000
MAX_WORKERS = 16
USER_AGENT = "aws-ops-automations/post_deploy_checks"

Sleep = Callable[[float], None]
# Monotonic clock for latencies; tests replace it to get exact figures.
CLOCK: Callable[[], float] = time.perf_counter


def run_checks(
    specs: Sequence[CheckSpec],
    headers: Mapping[str, Mapping[str, str]],
    *,
    attempts: int,
    interval_seconds: float,
    timeout_seconds: float,
    sleep: Sleep = time.sleep,
) -> list[CheckResult]:
    """One result per check, in the order of ``specs``. ``headers``: check name -> resolved headers."""
    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(specs)), thread_name_prefix="check") as pool:
        futures = [
            pool.submit(run_check, spec, headers.get(spec.name, {}), attempts=attempts,
                        interval_seconds=interval_seconds, timeout_seconds=timeout_seconds, sleep=sleep)
            for spec in specs
        ]
        return [future.result() for future in futures]


def run_check(
    spec: CheckSpec,
    headers: Mapping[str, str],
    *,
    attempts: int,
    interval_seconds: float,
    timeout_seconds: float,
    sleep: Sleep = time.sleep,
) -> CheckResult:
    """Try ``spec`` until it passes or ``attempts`` are used up; the result of the last attempt."""
    status: int | None = None
    latency: float | None = None
    reason = "not run"
    with requests.Session() as session:
        session.headers["User-Agent"] = USER_AGENT
        for attempt in range(1, attempts + 1):
            if attempt > 1 and interval_seconds > 0:
                sleep(interval_seconds)
            response, error = _request(session, spec, headers, timeout_seconds)
            if response is None:
                status, latency, reason = None, None, error
                continue
            status, latency = response.status, response.latency_ms
            failure = evaluate(spec, response)
            if failure is None:
                return CheckResult(spec.name, spec.url, True, status, latency, attempt)
            reason = failure
    return CheckResult(spec.name, spec.url, False, status, latency, attempts, reason)


def _request(
    session: requests.Session, spec: CheckSpec, headers: Mapping[str, str], timeout_seconds: float
) -> tuple[HttpResponse | None, str]:
    started = CLOCK()
    try:
        with session.request(
            spec.method, spec.url, headers=dict(headers), timeout=timeout_seconds, allow_redirects=True,
            stream=True,
        ) as response:
            raw = response.raw.read(MAX_BODY_BYTES, decode_content=True) if spec.method != "HEAD" else b""
            latency_ms = (CLOCK() - started) * 1000
            encoding = response.encoding or "utf-8"
            body = raw.decode(encoding, errors="replace") if isinstance(raw, bytes) else ""
            return HttpResponse(response.status_code, body, latency_ms), ""
    except requests.exceptions.SSLError as exc:
        return None, f"TLS error: {_short(exc)}"
    except requests.exceptions.ConnectTimeout:
        return None, f"connect timeout after {timeout_seconds:g} s"
    except requests.exceptions.ReadTimeout:
        return None, f"no response within timeout_seconds {timeout_seconds:g}"
    except requests.exceptions.ConnectionError as exc:
        return None, f"connection failed: {_short(exc)}"
    except requests.exceptions.RequestException as exc:
        return None, f"request failed: {type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "certificate verify failed",
                   "timed out", "No route to host", "Connection reset"):
        if marker in text:
            return marker
    return text[:200]
