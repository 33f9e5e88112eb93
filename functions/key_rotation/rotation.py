"""The four steps of Secrets Manager rotation for an IAM user's access key.

The secret holds ``{"UserName", "AccessKeyId", "SecretAccessKey"}``. The steps follow the AWS
rotation templates: every step first checks that rotation is enabled on the secret and that the
token is a staged version of it; a token that is already ``AWSCURRENT`` means the rotation is done.

Failures raise ``RotationError``: Secrets Manager calls the function synchronously, marks the
rotation failed and leaves ``AWSCURRENT`` where it was (readers keep working).

The AWS calls go through ``RotationAdapter`` (``aws.py`` in Lambda, the same with moto in tests);
the choice of which key to delete is the pure function ``key_to_make_room``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from key_rotation.policy import deactivation_tag, deactivations
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


class RotationAdapter(Protocol):
    def describe_secret(self, secret_id: str) -> dict[str, Any]: ...
    def get_secret(self, secret_id: str, *, stage: str, version_id: str | None = None) -> dict[str, Any] | None: ...
    def put_pending(self, secret_id: str, token: str, value: dict[str, str]) -> None: ...
    def move_current(self, secret_id: str, token: str, from_version: str | None) -> None: ...
    def tag_secret(self, secret_id: str, tags: dict[str, str]) -> None: ...
    def list_keys(self, user_name: str) -> list[AccessKey]: ...
    def create_key(self, user_name: str) -> NewKey: ...
    def delete_key(self, user_name: str, key_id: str) -> None: ...
    def user_tags(self, user_name: str) -> dict[str, str]: ...
    def untag_user(self, user_name: str, keys: list[str]) -> None: ...
    def caller_identity(self, key_id: str, secret_access_key: str) -> Identity: ...


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


class Rotator:
    """Runs one rotation step. ``expected_users`` maps secret ARN or name -> the user it must hold."""

    def __init__(
        self,
        adapter: RotationAdapter,
        *,
        expected_users: Mapping[str, str] | None = None,
        clock: Callable[[], datetime],
        test_attempts: int = 6,
        test_delay_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        grace_days: int = 0,
    ) -> None:
        self._aws = adapter
        self._grace = timedelta(days=grace_days)
        self._expected = dict(expected_users or {})
        self._clock = clock
        self._attempts = max(1, test_attempts)
        self._delay = test_delay_seconds
        self._sleep = sleep

    def run(self, event: RotationEvent) -> StepResult:
        meta = self._aws.describe_secret(event.secret_id)
        if not meta.get("RotationEnabled"):
            raise RotationError(f"secret {event.secret_id} is not enabled for rotation")
        versions: dict[str, list[str]] = meta.get("VersionIdsToStages", {})
        if event.token not in versions:
            raise RotationError(f"secret version {event.token} has no stage for rotation of secret {event.secret_id}")
        if CURRENT in versions[event.token]:
            if event.step == "finishSecret":
                return self._record_if_missing(event, meta)
            return StepResult(event.step, "current", f"version {event.token} is already AWSCURRENT: nothing to do")
        if PENDING not in versions[event.token]:
            raise RotationError(
                f"secret version {event.token} is not set as AWSPENDING for rotation of {event.secret_id}"
            )
        handlers = {
            "createSecret": self.create_secret,
            "setSecret": self.set_secret,
            "testSecret": self.test_secret,
            "finishSecret": self.finish_secret,
        }
        return handlers[event.step](event, meta)

    # -- steps

    def create_secret(self, event: RotationEvent, meta: dict[str, Any]) -> StepResult:
        current = self._aws.get_secret(event.secret_id, stage=CURRENT) or {}
        pending = self._aws.get_secret(event.secret_id, stage=PENDING, version_id=event.token)
        if pending is not None:
            return StepResult(
                "createSecret", "exists", f"AWSPENDING already holds key {pending.get('AccessKeyId')} for this token",
                new_key_id=pending.get("AccessKeyId"),
            )
        user = self._user_of(event.secret_id, meta, current)
        current_key_id = current.get("AccessKeyId") or None
        keys = self._aws.list_keys(user)
        if current_key_id and current_key_id not in {k.key_id for k in keys}:
            current_key_id = None  # the secret points at a key that no longer exists: treat as a first rotation
        deleted: list[str] = []
        # A key created by an earlier createSecret that never became current (its rotation was abandoned, or
        # storing it failed): nobody can hold it, and left alone it would block this rotation.
        tags = {tag["Key"]: tag["Value"] for tag in meta.get("Tags", [])}
        orphan = tags.get(TAG_PENDING_KEY)
        was_current = {current_key_id, tags.get(TAG_CURRENT_KEY), tags.get(TAG_PREVIOUS_KEY)}
        if orphan and orphan not in was_current and orphan in {k.key_id for k in keys}:
            self._aws.delete_key(user, orphan)
            deleted.append(orphan)
            keys = [k for k in keys if k.key_id != orphan]
        records = deactivations(self._aws.user_tags(user)) if len(keys) >= 2 else {}
        doomed = key_to_make_room(keys, current_key_id, user, deactivated=records, now=self._clock(),
                                  grace=self._grace)
        if doomed is not None:
            self._aws.delete_key(user, doomed.key_id)
            deleted.append(doomed.key_id)
            if doomed.key_id in records:
                self._aws.untag_user(user, [deactivation_tag(doomed.key_id)])
        new = self._aws.create_key(user)
        # Recorded before the value is stored: if storing fails, the retry finds and deletes this key.
        self._aws.tag_secret(event.secret_id, {TAG_PENDING_KEY: new.key_id})
        self._aws.put_pending(
            event.secret_id,
            event.token,
            {"UserName": user, "AccessKeyId": new.key_id, "SecretAccessKey": new.secret_access_key},
        )
        first = "" if current_key_id else " (first key of this secret)"
        return StepResult(
            "createSecret", "created", f"created key {new.key_id} for {user}{first}",
            new_key_id=new.key_id, old_key_id=current_key_id, deleted_key_ids=tuple(deleted),
        )

    def set_secret(self, event: RotationEvent, meta: dict[str, Any]) -> StepResult:
        # IAM created the key in createSecret: there is no separate "service" to push the new credentials to.
        return StepResult("setSecret", "skipped", "nothing to set: IAM created the key in createSecret")

    def test_secret(self, event: RotationEvent, meta: dict[str, Any]) -> StepResult:
        pending = self._aws.get_secret(event.secret_id, stage=PENDING, version_id=event.token)
        if not pending or not pending.get("AccessKeyId") or not pending.get("SecretAccessKey"):
            raise RotationError(f"AWSPENDING version {event.token} of {event.secret_id} holds no access key")
        user = str(pending.get("UserName", ""))
        key_id = str(pending["AccessKeyId"])
        last = "no attempt"
        for attempt in range(1, self._attempts + 1):
            try:
                identity = self._aws.caller_identity(key_id, str(pending["SecretAccessKey"]))
            except RotationError as exc:  # the adapter maps "invalid key" answers to RotationError
                last = str(exc)
            else:
                if user_matches(identity.arn, user):
                    return StepResult(
                        "testSecret", "tested", f"key {key_id} signs in as {identity.arn} (attempt {attempt})",
                        new_key_id=key_id,
                    )
                last = f"key {key_id} signs in as {identity.arn}, not as user {user}"
            if attempt < self._attempts:
                self._sleep(self._delay)
        raise RotationError(f"pending key {key_id} of {user} does not work after {self._attempts} attempts: {last}")

    def finish_secret(self, event: RotationEvent, meta: dict[str, Any]) -> StepResult:
        versions: dict[str, list[str]] = meta.get("VersionIdsToStages", {})
        current_version = next((v for v, stages in versions.items() if CURRENT in stages), None)
        pending = self._aws.get_secret(event.secret_id, stage=PENDING, version_id=event.token) or {}
        current = self._aws.get_secret(event.secret_id, stage=CURRENT) or {}
        new_key_id = pending.get("AccessKeyId")
        old_key_id = current.get("AccessKeyId")
        if not new_key_id:
            raise RotationError(f"AWSPENDING version {event.token} of {event.secret_id} holds no access key")
        self._aws.move_current(event.secret_id, event.token, current_version)
        since = self._clock()
        tags = {TAG_CURRENT_KEY: str(new_key_id), TAG_CURRENT_SINCE: precise(since)}
        if old_key_id:
            tags[TAG_PREVIOUS_KEY] = str(old_key_id)
        self._aws.tag_secret(event.secret_id, tags)
        return StepResult(
            "finishSecret", "finished",
            f"AWSCURRENT moved to {event.token} (key {new_key_id}); previous key {old_key_id or '(none)'} stays "
            "active for the grace period",
            new_key_id=new_key_id, old_key_id=old_key_id,
        )

    # -- helpers

    def _record_if_missing(self, event: RotationEvent, meta: dict[str, Any]) -> StepResult:
        """finishSecret on a token already current (a retry after the stage moved): make sure the record exists."""
        current = self._aws.get_secret(event.secret_id, stage=CURRENT, version_id=event.token) or {}
        key_id = current.get("AccessKeyId")
        tags = {tag["Key"]: tag["Value"] for tag in meta.get("Tags", [])}
        if key_id and tags.get(TAG_CURRENT_KEY) != key_id:
            record = {TAG_CURRENT_KEY: str(key_id), TAG_CURRENT_SINCE: precise(self._clock())}
            self._aws.tag_secret(event.secret_id, record)
            detail = f"version already AWSCURRENT; recorded key {key_id} as current"
            return StepResult("finishSecret", "current", detail, new_key_id=key_id)
        return StepResult("finishSecret", "current", "version already AWSCURRENT: nothing to do", new_key_id=key_id)

    def _user_of(self, secret_id: str, meta: dict[str, Any], current: Mapping[str, Any]) -> str:
        expected = self._expected.get(str(meta.get("ARN", ""))) or self._expected.get(str(meta.get("Name", "")))
        expected = expected or self._expected.get(secret_id)
        if self._expected and expected is None:
            raise RotationError(f"secret {secret_id} is not one of this function's managed secrets: refusing to rotate")
        in_secret = current.get("UserName")
        if in_secret and expected and in_secret != expected:
            raise RotationError(
                f"secret {secret_id} names user {in_secret!r} but is configured for {expected!r}: refusing to rotate"
            )
        user = in_secret or expected
        if not isinstance(user, str) or not user:
            raise RotationError(f"secret {secret_id} holds no UserName and is not a configured managed secret")
        return user


def current_since(tags: Mapping[str, str]) -> tuple[str | None, datetime | None]:
    """The (current key id, since when) the rotation recorded in the secret's tags."""
    key_id = tags.get(TAG_CURRENT_KEY) or None
    raw = tags.get(TAG_CURRENT_SINCE)
    try:
        since = parse_time(raw) if raw else None
    except ValueError:
        since = None
    return key_id, since
