"""The four steps of Secrets Manager rotation for an IAM user's access key.

The secret holds ``{"UserName", "AccessKeyId", "SecretAccessKey"}``. The steps follow the AWS
rotation templates: every step first checks that rotation is enabled on the secret and that the
token is a staged version of it; a token that is already ``AWSCURRENT`` means the rotation is done.

Failures raise ``RotationError``: Secrets Manager calls the function synchronously, marks the
rotation failed and leaves ``AWSCURRENT`` where it was (readers keep working).

This module is the pure part: the event, the values, which key to delete (``key_to_make_room``), whose
ARN a key signs in as (``user_matches``). ``runner.Rotator`` runs the steps through the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.timeutil import parse_time

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

# Tags the rotation writes on the secret, read by the sweep (key ids only, never a secret).
TAG_CURRENT_KEY = "KeyRotation:CurrentKeyId"
TAG_PREVIOUS_KEY = "KeyRotation:PreviousKeyId"
TAG_CURRENT_SINCE = "KeyRotation:CurrentSince"
TAG_PENDING_KEY = "KeyRotation:PendingKeyId"


def precise(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds: the sweep compares last use against it, so no rounding down."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class RotationError(Exception):
    """The rotation step cannot proceed; the message says why. Nothing was changed."""


class BadRotationEvent(ValueError):
    """The event is not a rotation step event."""


@dataclass(frozen=True)
class RotationEvent:
    step: str
    secret_id: str
    token: str

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> RotationEvent:
        step, secret_id, token = event.get("Step"), event.get("SecretId"), event.get("ClientRequestToken")
        if step not in STEPS:
            raise BadRotationEvent(f"Step {step!r} is not one of {', '.join(STEPS)}")
        if not isinstance(secret_id, str) or not secret_id:
            raise BadRotationEvent("SecretId is missing")
        if not isinstance(token, str) or not token:
            raise BadRotationEvent("ClientRequestToken is missing")
        return cls(step, secret_id, token)


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    status: str
    created: datetime


@dataclass(frozen=True)
class SecretState:
    """What a managed secret says: the key ids of its AWSCURRENT and AWSPENDING values, and its tags."""

    current_key_id: str | None
    pending_key_id: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class Identity:
    arn: str
    account: str


@dataclass(frozen=True)
class StepResult:
    step: str
    outcome: str  # what the step did, one word: created, exists, skipped, tested, finished, current
    detail: str
    new_key_id: str | None = None
    old_key_id: str | None = None
    deleted_key_ids: tuple[str, ...] = ()


def key_to_make_room(
    keys: list[AccessKey],
    current_key_id: str | None,
    user_name: str,
    *,
    deactivated: Mapping[str, datetime] | None = None,
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
) -> AccessKey | None:
    """IAM allows two keys per user: which one to delete before creating a new one (None: no need).

    Only an inactive key that is not ``AWSCURRENT`` may go (the older one when both qualify), and one this
    automation deactivated (``deactivated``: key id -> when) only ``grace`` after that.
    Raises ``RotationError`` when no key qualifies (e.g. both active): nothing is changed.
    """
    if len(keys) < 2:
        return None
    records = deactivated or {}

    def waiting(key: AccessKey) -> bool:
        at = records.get(key.key_id)
        return at is not None and now is not None and now < at + grace

    candidates = [k for k in keys if k.status != "Active" and k.key_id != current_key_id and not waiting(k)]
    if not candidates:
        states = ", ".join(
            f"{k.key_id} {k.status}{' (AWSCURRENT)' if k.key_id == current_key_id else ''}"
            + (f" (deactivated at {records[k.key_id]:%Y-%m-%d %H:%M}Z, deletable from "
               f"{records[k.key_id] + grace:%Y-%m-%d %H:%M}Z)" if waiting(k) else "")
            for k in keys
        )
        raise RotationError(
            f"user {user_name} already has two access keys ({states}) and neither is an inactive non-current key "
            "that could be deleted; deactivate or delete the key that is not in the secret, then retry the rotation"
        )
    return min(candidates, key=lambda k: k.created)


def user_matches(arn: str, user_name: str) -> bool:
    """True when ``arn`` is an IAM user ARN (any path) for ``user_name``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("user/"):
        return False
    return parts[5].rsplit("/", 1)[-1] == user_name


def current_since(tags: Mapping[str, str]) -> tuple[str | None, datetime | None]:
    """The (current key id, since when) the rotation recorded in the secret's tags."""
    key_id = tags.get(TAG_CURRENT_KEY) or None
    raw = tags.get(TAG_CURRENT_SINCE)
    try:
        since = parse_time(raw) if raw else None
    except ValueError:
        since = None
    return key_id, since
