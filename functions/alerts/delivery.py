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

from alerts.render import wire_bytes
from alerts.routing import FILTER_KEYS, FilterError, Filters, parse_filters

DESTINATION_TYPES = ("slack", "teams", "webhook", "slack-app")
USER_AGENT = "aws-ops-automations-alerts/1.0"
HEADERS = {"User-Agent": USER_AGENT, "Content-Type": "application/json; charset=utf-8"}

# urllib3 logs request paths at DEBUG, and a Slack/Teams webhook path is the secret.
logging.getLogger("urllib3").setLevel(logging.WARNING)


class DestinationsError(ValueError):
    """The destinations secret does not hold the documented JSON."""


@dataclass(frozen=True)
class Destination:
    """A webhook (``url``), or a Slack app channel (``channel`` with the bot ``token``: ``type`` slack-app)."""

    type: str
    url: str = field(repr=False)
    filters: Filters = field(default_factory=Filters)
    index: int = 0
    channel: str = ""
    token: str = field(default="", repr=False)

    @property
    def min_severity(self) -> str:
        return self.filters.min_severity

    @property
    def name(self) -> str:
        """How logs and metrics refer to this destination (never by URL)."""
        return f"{self.type}#{self.index}"


def _url(where: str, url: Any) -> str:
    if not isinstance(url, str):
        raise DestinationsError(f"{where}.url must be an https:// URL")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise DestinationsError(f"{where}.url must be an https:// URL")
    return url


DESTINATION_KEYS = ("type", "url", "default", *FILTER_KEYS)
SLACK_APP_KEYS = ("type", "token_secret_field", "channel", "default", *FILTER_KEYS)


def _slack_app(where: str, item: dict[str, Any], secret: dict[str, Any]) -> tuple[str, str]:
    """``(channel, token)`` of a slack-app entry; the token is the secret's field named by token_secret_field."""
    field_name = item.get("token_secret_field")
    if not isinstance(field_name, str) or not field_name:
        raise DestinationsError(f"{where}.token_secret_field must name the secret's field holding the bot token")
    token = secret.get(field_name)
    if not isinstance(token, str) or not token.startswith(("xoxb-", "xoxp-")):
        raise DestinationsError(f"{where}.token_secret_field: the secret's field {field_name!r} must hold a Slack "
                                "bot token (xoxb-...)")
    channel = item.get("channel")
    if not isinstance(channel, str) or not channel.strip():
        raise DestinationsError(f"{where}.channel must be a channel id (C0123ABC) or name (#ops)")
    return channel.strip(), token


def _destination(index: int, item: Any, secret: dict[str, Any]) -> Destination:
    where = f"destinations[{index}]"
    if not isinstance(item, dict):
        raise DestinationsError(f"{where} must be an object with type and url")
    kind = item.get("type")
    if kind not in DESTINATION_TYPES:
        raise DestinationsError(f"{where}.type must be one of {', '.join(DESTINATION_TYPES)} (got {kind!r})")
    unknown = sorted(set(item) - set(SLACK_APP_KEYS if kind == "slack-app" else DESTINATION_KEYS))
    if unknown:
        raise DestinationsError(f"{where} has unknown key(s) {', '.join(unknown)}")
    try:
        filters = parse_filters(where, item)
    except FilterError as exc:
        raise DestinationsError(str(exc)) from None
    if kind == "slack-app":
        channel, token = _slack_app(where, item, secret)
        return Destination(type=kind, url=f"slack-app:{channel}", filters=filters, index=index, channel=channel,
                           token=token)
    return Destination(type=kind, url=_url(where, item.get("url")), filters=filters, index=index)


@dataclass(frozen=True)
class Destinations:
    """The valid destinations of the secret, and what is wrong with the others (they are skipped)."""

    valid: list[Destination]
    problems: list[str]


def read_destinations(value: Any) -> Destinations:
    """``{"destinations": [...]}`` -> every valid destination, and one problem per invalid entry (named by
    index and field, never quoting the URL). The whole secret unreadable is :class:`DestinationsError`."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            raise DestinationsError('the secret is not JSON; expected {"destinations": [...]}') from None
    if not isinstance(value, dict) or not isinstance(value.get("destinations"), list):
        raise DestinationsError('the secret must be a JSON object with a "destinations" list')
    valid, problems = [], []
    for index, item in enumerate(value["destinations"]):
        try:
            valid.append(_destination(index, item, value))
        except DestinationsError as exc:
            problems.append(str(exc))
    return Destinations(valid, problems)


def parse_destinations(value: Any) -> list[Destination]:
    """Every destination of the secret, or :class:`DestinationsError` for the first invalid one."""
    found = read_destinations(value)
    if found.problems:
        raise DestinationsError(found.problems[0])
    return found.valid


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


def _try(session: requests.Session, destination: Destination, body: bytes, policy: Policy,
         attempts: int) -> tuple[Result | None, int | None, str, float]:
    """One POST: a final :class:`Result`, or ``None`` with the status, reason and wait before the next try."""
    wait = policy.backoff_base * 2 ** (attempts - 1)
    try:
        response = session.post(destination.url, data=body, timeout=policy.timeout, headers=HEADERS)
    except requests.Timeout:
        return None, None, "timeout", wait
    except requests.RequestException as exc:
        # The exception text names the URL: keep only its class.
        return None, None, f"connection error ({type(exc).__name__})", wait
    status = response.status_code
    if 200 <= status < 300:
        return Result(destination.name, destination.type, True, attempts, status), status, "", wait
    if status in (404, 410):
        return Result(destination.name, destination.type, False, attempts, status,
                      f"HTTP {status}: the webhook no longer exists", gone=True), status, "", wait
    if status == 429:
        return None, status, "HTTP 429: rate limited", retry_after_seconds(
            response.headers.get("Retry-After"), policy.retry_after_cap)
    if status >= 500:
        return None, status, f"HTTP {status}", wait
    return Result(destination.name, destination.type, False, attempts, status,
                  f"HTTP {status}: {_body_hint(response)}"), status, "", wait


def post(session: requests.Session, destination: Destination, payload: dict[str, Any], policy: Policy) -> Result:
    """POST ``payload`` as JSON to ``destination``, retrying as the module docstring says."""
    body = wire_bytes(payload)
    attempts = 0
    status: int | None = None
    reason = ""
    while attempts < policy.max_attempts:
        attempts += 1
        final, status, reason, wait = _try(session, destination, body, policy, attempts)
        if final is not None:
            return final
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
