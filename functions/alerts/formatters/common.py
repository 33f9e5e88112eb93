"""What every formatter shares: the options, and readers that never raise on an odd shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from shared.text import truncate
from shared.timeutil import iso, parse_time

MAX_DETAILS_CHARS = 6_000
MAX_FIELD_CHARS = 300


@dataclass(frozen=True)
class Options:
    """What formatters need beyond the event: the function's region and the log-line budget."""

    region: str = "us-east-1"
    max_log_lines: int = 20


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | bool):
        return str(value)
    return json.dumps(value, default=str, sort_keys=True)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def aws_time(value: Any) -> str:
    """An AWS time (ISO with ``Z``, ``+0000`` or epoch milliseconds) as ``2026-11-28T08:05:00Z``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return iso(datetime.fromtimestamp(value / 1000, UTC))
    text = as_text(value).strip()
    if not text:
        return ""
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    try:
        return iso(parse_time(text))
    except ValueError:
        pass
    try:  # AWS Health writes RFC 1123 times: "Sat, 28 Nov 2026 07:50:00 GMT"
        return iso(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return as_text(value)


def one_field(name: str, value: Any) -> tuple[str, str] | None:
    text = as_text(value).strip()
    return (name, truncate(text, MAX_FIELD_CHARS)) if text else None


def fields_of(*pairs: tuple[str, Any]) -> tuple[tuple[str, str], ...]:
    found = (one_field(name, value) for name, value in pairs)
    return tuple(item for item in found if item is not None)


def joined(parts: list[str], sep: str = "\n") -> str:
    return sep.join(part for part in parts if part)


def event_common(event: Mapping[str, Any], options: Options) -> tuple[str, str, str]:
    """An EventBridge event's region (or the function's), account and time."""
    region = as_text(event.get("region")) or options.region
    return region, as_text(event.get("account")), aws_time(event.get("time"))
