"""Destinations (parsed from the secret) and HTTP delivery with bounded retries.

- 2xx: delivered.
- 429: wait ``Retry-After`` (capped at ``retry_after_cap`` seconds) and try again.
- 5xx, connection errors, timeouts: try again after an exponential backoff.
- 404 / 410: the webhook was deleted: a failure at once, marked ``gone`` (loud in logs and metrics).
- any other 4xx: a failure at once (the payload or the token is wrong; retrying will not help).

A webhook URL is a credential: it never appears in a log line, an exception message or a repr.
Destinations are named ``<type>#<index>`` (``slack#0``) instead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from alerts.alert import SEVERITIES
from alerts.render import wire_bytes

DESTINATION_TYPES = ("slack", "teams", "webhook")
USER_AGENT = "aws-ops-automations-alerts/1.0"
HEADERS = {"User-Agent": USER_AGENT, "Content-Type": "application/json; charset=utf-8"}

# urllib3 logs request paths at DEBUG, and a Slack/Teams webhook path is the secret.
logging.getLogger("urllib3").setLevel(logging.WARNING)


class DestinationsError(ValueError):
    """The destinations secret does not hold the documented JSON."""


@dataclass(frozen=True)
class Destination:
    type: str
    url: str = field(repr=False)
    min_severity: str = "info"
    index: int = 0

    @property
    def name(self) -> str:
        """How logs and metrics refer to this destination (never by URL)."""
        return f"{self.type}#{self.index}"


def parse_destinations(value: Any) -> list[Destination]:
    """``{"destinations": [{"type", "url", "min_severity"?}, ...]}`` -> destinations, or a clear error.

    Error messages name the entry by index and never quote the URL.
    """
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            raise DestinationsError('the secret is not JSON; expected {"destinations": [...]}') from None
    if not isinstance(value, dict) or not isinstance(value.get("destinations"), list):
        raise DestinationsError('the secret must be a JSON object with a "destinations" list')
    found = []
    for index, item in enumerate(value["destinations"]):
        where = f"destinations[{index}]"
        if not isinstance(item, dict):
            raise DestinationsError(f"{where} must be an object with type and url")
        kind = item.get("type")
        if kind not in DESTINATION_TYPES:
            raise DestinationsError(f"{where}.type must be one of {', '.join(DESTINATION_TYPES)} (got {kind!r})")
        url = item.get("url")
        if not isinstance(url, str):
            raise DestinationsError(f"{where}.url must be an https:// URL")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            raise DestinationsError(f"{where}.url must be an https:// URL")
        minimum = item.get("min_severity", "info")
        if minimum not in SEVERITIES:
            raise DestinationsError(f"{where}.min_severity must be one of {', '.join(SEVERITIES)} (got {minimum!r})")
        unknown = sorted(set(item) - {"type", "url", "min_severity"})
        if unknown:
            raise DestinationsError(f"{where} has unknown key(s) {', '.join(unknown)}")
        found.append(Destination(type=kind, url=url, min_severity=minimum, index=index))
    return found


@dataclass(frozen=True)
class Policy:
    """How hard to try one destination. ``sleep`` is injectable so tests do not wait."""

    timeout: float = 10.0
    max_attempts: int = 3
    backoff_base: float = 0.5
    retry_after_cap: float = 10.0
    sleep: Callable[[float], None] | None = None  # None: time.sleep
    # Seconds left in the invocation (Lambda context); no retry is started that could not finish in time.
    remaining: Callable[[], float] | None = None

    def can_retry(self, wait: float) -> bool:
        return self.remaining is None or self.remaining() > wait + self.timeout + 1.0


@dataclass(frozen=True)
class Result:
    destination: str
    type: str
    ok: bool
    attempts: int
    status: int | None = None
    reason: str = ""
    gone: bool = False

    @property
    def transient(self) -> bool:
        """Not delivered, and a later try may succeed: a timeout, a connection error, 429 or 5xx."""
        return not self.ok and not self.gone and (self.status is None or self.status == 429 or self.status >= 500)


def retry_after_seconds(value: str | None, cap: float, now: float | None = None) -> float:
    """``Retry-After`` (seconds or an HTTP date) as a wait in seconds, within ``[0, cap]``."""
    if not value:
        return min(1.0, cap)
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return min(1.0, cap)
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(seconds, cap))


def post(session: requests.Session, destination: Destination, payload: dict[str, Any], policy: Policy) -> Result:
    """POST ``payload`` as JSON to ``destination``, retrying as the module docstring says."""
    body = wire_bytes(payload)
    attempts = 0
    status: int | None = None
    reason = ""
    while attempts < policy.max_attempts:
        attempts += 1
        wait = policy.backoff_base * 2 ** (attempts - 1)
        try:
            response = session.post(destination.url, data=body, timeout=policy.timeout, headers=HEADERS)
        except requests.Timeout:
            status, reason = None, "timeout"
        except requests.RequestException as exc:
            # The exception text names the URL: keep only its class.
            status, reason = None, f"connection error ({type(exc).__name__})"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return Result(destination.name, destination.type, True, attempts, status)
            if status in (404, 410):
                return Result(destination.name, destination.type, False, attempts, status,
                              f"HTTP {status}: the webhook no longer exists", gone=True)
            if status == 429:
                reason = "HTTP 429: rate limited"
                wait = retry_after_seconds(response.headers.get("Retry-After"), policy.retry_after_cap)
            elif status >= 500:
                reason = f"HTTP {status}"
            else:
                return Result(destination.name, destination.type, False, attempts, status,
                              f"HTTP {status}: {_body_hint(response)}")
        if attempts < policy.max_attempts:
            if not policy.can_retry(wait):
                reason += " (no time left in this invocation to retry)"
                break
            (time.sleep if policy.sleep is None else policy.sleep)(wait)
    return Result(destination.name, destination.type, False, attempts, status, reason)


def _body_hint(response: requests.Response) -> str:
    """The start of an error body (Slack says e.g. ``invalid_payload``), single line, short."""
    text = (response.text or "").strip().replace("\n", " ")
    return text[:200] or (response.reason or "rejected")
