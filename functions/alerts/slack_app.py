"""Slack app mode: a bot token posts with chat.postMessage (slack_sdk), so alarms thread.

- an ALARM (thread role ``open``) is posted and its message is remembered in the delivery table (TTL);
- its OK (``resolve``) is posted in that thread, and the original message's header is updated to resolved
  with chat.update;
- reports of one automation run (``group``, the reports' ``threadId``) share one thread;
- 429 waits ``Retry-After`` (capped) and 5xx or network errors back off, as webhooks do; an archived or
  unknown channel is ``gone``; any other Slack error (``invalid_auth``, ``not_in_channel``) is permanent.

The token is a credential: never logged, never in an error message.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from alerts.alert import Alert
from alerts.delivery import Destination, Policy, Result, retry_after_seconds
from shared.observability import logger

SLACK_API = "https://slack.com/api/"
GONE_ERRORS = ("channel_not_found", "is_archived")
RESOLVED = ":white_check_mark:"


class ThreadStore(Protocol):
    def get_thread(self, key: str) -> dict[str, str] | None: ...

    def put_thread(self, key: str, channel: str, ts: str, blocks: str) -> None: ...


@dataclass
class _Failure:
    status: int | None
    reason: str
    wait: float | None  # None: permanent
    gone: bool = False


def _thread_key(alert: Alert, destination: Destination) -> str:
    return hashlib.sha256(f"{alert.thread_key}|{destination.channel}".encode()).hexdigest()[:32]


def resolved_blocks(blocks: list[dict[str, Any]], alert: Alert) -> list[dict[str, Any]]:
    """The original message with its header saying it is resolved."""
    header = {"type": "header", "text": {"type": "plain_text", "text": f"{RESOLVED} RESOLVED: {alert.title}"[:150],
                                         "emoji": True}}
    return [header, *[block for block in blocks if block.get("type") != "header"]]


class SlackApp:
    """Posts one alert to one Slack app destination (channel + bot token)."""

    def __init__(self, threads: ThreadStore, policy: Policy, base_url: str = SLACK_API,
                 client: Callable[[str, str, float], WebClient] | None = None) -> None:
        self.threads = threads
        self.policy = policy
        self.base_url = base_url
        self._client = client or (lambda token, url, timeout: WebClient(token=token, base_url=url,
                                                                       timeout=int(timeout) or 1))

    def post(self, destination: Destination, alert: Alert, payload: dict[str, Any]) -> Result:
        client = self._client(destination.token, self.base_url, self.policy.timeout)
        key = _thread_key(alert, destination) if alert.thread_key else ""
        thread = self.threads.get_thread(key) if key and alert.thread_role in ("resolve", "group") else None
        message = {"channel": destination.channel, "text": payload["text"], "blocks": payload["blocks"],
                   "unfurl_links": False}
        if thread:
            message["thread_ts"] = thread["ts"]
        result, response = self._call(destination, lambda: client.chat_postMessage(**message))
        if not result.ok or response is None:
            return result
        if thread and alert.thread_role == "resolve":
            blocks = resolved_blocks(json.loads(thread.get("blocks") or "[]"), alert)
            update, _ = self._call(destination, lambda: client.chat_update(
                channel=thread["channel"], ts=thread["ts"], text=f"{RESOLVED} RESOLVED: {alert.title}",
                blocks=blocks))
            if not update.ok:  # the reply is posted; a retry would post it twice
                logger.warning("the thread reply is posted but the original message could not be marked resolved",
                               extra={"destination": destination.name, "reason": update.reason})
        elif key and (alert.thread_role == "open" or (alert.thread_role == "group" and not thread)):
            self.threads.put_thread(key, str(response.get("channel") or destination.channel),
                                    str(response.get("ts")), json.dumps(payload["blocks"]))
        return result

    def _call(self, destination: Destination, call: Callable[[], Any]) -> tuple[Result, Any]:
        attempts = 0
        failure = _Failure(None, "", 0.0)
        while attempts < self.policy.max_attempts:
            attempts += 1
            try:
                response = call()
            except SlackApiError as exc:
                failure = _slack_failure(exc, self.policy, attempts)
            except (OSError, TimeoutError) as exc:  # URLError, socket timeouts, TLS errors
                failure = _Failure(None, f"connection error ({type(exc).__name__})",
                                   self.policy.backoff_base * 2 ** (attempts - 1))
            else:
                return Result(destination.name, destination.type, True, attempts, 200), response
            if failure.wait is None or attempts >= self.policy.max_attempts:
                break
            if not self.policy.can_retry(failure.wait):
                failure.reason += " (no time left in this invocation to retry)"
                break
            (time.sleep if self.policy.sleep is None else self.policy.sleep)(failure.wait)
        return Result(destination.name, destination.type, False, attempts, failure.status, failure.reason,
                      gone=failure.gone), None


def _slack_failure(exc: SlackApiError, policy: Policy, attempts: int) -> _Failure:
    status = getattr(exc.response, "status_code", None)
    error = str((exc.response.data or {}).get("error", "")) if isinstance(exc.response.data, dict) else ""
    if status == 429:
        headers = getattr(exc.response, "headers", {}) or {}
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        return _Failure(429, "HTTP 429: rate limited", retry_after_seconds(retry_after, policy.retry_after_cap))
    if isinstance(status, int) and status >= 500:
        return _Failure(status, f"HTTP {status}", policy.backoff_base * 2 ** (attempts - 1))
    if error in GONE_ERRORS:
        return _Failure(status, f"Slack API error {error}: the channel is gone", None, gone=True)
    return _Failure(status, f"Slack API error {error or status}", None)
