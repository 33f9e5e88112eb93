"""The IAM credential report (CSV) as last-use facts per access key: pure, no boto3.

The report has two key slots per user (``access_key_1_*``, ``access_key_2_*``) and no key ids; a slot's
``last_rotated`` is its key's creation time, so a key is found by (user, creation time to the second).
Values IAM writes for "nothing": ``N/A``, ``no_information``, ``not_supported``, empty.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from shared.timeutil import parse_time

_NOTHING = {"", "N/A", "no_information", "not_supported"}


@dataclass(frozen=True)
class LastUse:
    at: datetime | None
    service: str | None


def _value(row: dict[str, str], column: str) -> str | None:
    value = (row.get(column) or "").strip()
    return None if value in _NOTHING else value


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def key_slot(user: str, created: datetime) -> tuple[str, str]:
    """The lookup key of a key in ``parse_credential_report``'s result."""
    return user, created.replace(microsecond=0).isoformat()


def parse_credential_report(text: str) -> dict[tuple[str, str], LastUse]:
    """(user, key creation time) -> last use, for every key slot the report lists."""
    found: dict[tuple[str, str], LastUse] = {}
    for row in csv.DictReader(io.StringIO(text)):
        user = (row.get("user") or "").strip()
        for slot in ("access_key_1", "access_key_2"):
            created = _time(_value(row, f"{slot}_last_rotated"))
            if not user or created is None:
                continue
            found[key_slot(user, created)] = LastUse(_time(_value(row, f"{slot}_last_used_date")),
                                                     _value(row, f"{slot}_last_used_service"))
    return found
