"""Time: scheduled functions take "now" from the event, so a run is reproducible."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 time as AWS sends it (``2026-11-28T08:05:00Z``) into an aware UTC datetime."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def event_time(event: Mapping[str, Any] | None) -> datetime:
    """The EventBridge / Scheduler event's ``time``; the clock only when the event has none."""
    if isinstance(event, Mapping):
        value = event.get("time")
        if isinstance(value, str) and value:
            try:
                return parse_time(value)
            except ValueError:
                pass
    return utcnow()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
