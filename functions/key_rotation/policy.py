"""Pure decisions of the stale-key sweep: what to do with each access key, and why.

No boto3, no environment. Everything the decision needs comes in as arguments, time included.

Rules (``Thresholds``):

- unmanaged keys, by age from ``CreateDate``:
  ``warn`` (report) at ``warn_after_days``; an active key at ``deactivate_after_days`` is deactivated;
  an inactive key at ``delete_after_days`` is deleted. A key this automation deactivated carries a record
  (a tag on its user, ``KeyRotation:Deactivated:<key id>``) and is deleted only ``grace_days`` after that
  record; a key someone else deactivated (no record: IAM does not say when) is deleted only when it has
  not been used for ``delete_after_days - deactivate_after_days`` days (a recent last use means it was
  switched off recently and someone may still need it back). An active key is never deleted.
- keys of managed users belong to the rotation, and are retired in both modes: the ``AWSCURRENT`` key
  (read from the secret itself) and the ``AWSPENDING`` key of a rotation in progress are never touched
  (the current one is reported when older than ``warn_after_days``: the rotation schedule is not
  running); another active key is deactivated once ``grace_days`` have passed since the current key
  became current (and since the key was made), and only if it was not used in the last ``grace_days``;
  else it is reported and kept. Without a rotation record (the secret was never rotated) the user's keys
  are only reported; when the record on the secret names another key than the secret's ``AWSCURRENT``
  (stale tags), the other keys are kept and reported until a rotation step writes the record again.
- exempt users: the decision is made, then reported instead of carried out (except the retirement of a
  managed user's previous key, which is part of its rotation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.timeutil import parse_time

ACTIVE = "Active"
INACTIVE = "Inactive"
# The record of a deactivation by this automation: a tag on the key's IAM user (keys have no tags).
DEACTIVATED_TAG_PREFIX = "KeyRotation:Deactivated:"


# The record of the first announcement of a deactivation or deletion: the action waits warn_days_before.
WARNED_TAG_PREFIX = "KeyRotation:Warned:"


def deactivation_tag(key_id: str) -> str:
    return f"{DEACTIVATED_TAG_PREFIX}{key_id}"


def warning_tag(key_id: str) -> str:
    return f"{WARNED_TAG_PREFIX}{key_id}"


def _records(tags: Mapping[str, str], prefix: str) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for name, value in tags.items():
        if name.startswith(prefix):
            try:
                found[name[len(prefix):]] = parse_time(value)
            except ValueError:
                continue
    return found


def deactivations(tags: Mapping[str, str]) -> dict[str, datetime]:
    """Key id -> when this automation deactivated it, from a user's tags (unreadable values are ignored)."""
    return _records(tags, DEACTIVATED_TAG_PREFIX)


def warnings(tags: Mapping[str, str]) -> dict[str, datetime]:
    """Key id -> when a sweep first announced its deactivation or deletion (unreadable values are ignored)."""
    return _records(tags, WARNED_TAG_PREFIX)


class Action(StrEnum):
    NONE = "none"  # nothing to say
    WARN = "warn"  # old enough to report
    HOLD = "hold"  # would act, but must not (in use, no rotation record): reported
    DEACTIVATE = "deactivate"
    DELETE = "delete"


CHANGES = (Action.DEACTIVATE, Action.DELETE)


@dataclass(frozen=True)
class Thresholds:
    """The sweep's policy (the settings model's defaults are the only defaults)."""

    warn_after_days: int
    deactivate_after_days: int
    delete_after_days: int
    grace_days: int
    deactivate_if_unused_days: int
    deactivate_in_use: bool
    warn_days_before: int

    def __post_init__(self) -> None:
        if not (0 < self.warn_after_days < self.deactivate_after_days < self.delete_after_days):
            raise ValueError(
                "warn_after_days < deactivate_after_days < delete_after_days is required (got "
                f"{self.warn_after_days}, {self.deactivate_after_days}, {self.delete_after_days})"
            )
        if self.grace_days < 0:
            raise ValueError(f"grace_days must not be negative (got {self.grace_days})")
        if self.deactivate_if_unused_days < 1 or self.warn_days_before < 0:
            raise ValueError("deactivate_if_unused_days must be at least 1 and warn_days_before not negative (got "
                             f"{self.deactivate_if_unused_days}, {self.warn_days_before})")

    @property
    def unused_before_delete_days(self) -> int:
        return self.delete_after_days - self.deactivate_after_days


@dataclass(frozen=True)
class KeyFacts:
    user_name: str
    user_arn: str
    key_id: str
    status: str  # Active | Inactive
    created: datetime
    last_used: datetime | None
    deactivated_at: datetime | None = None  # when this automation deactivated it (its record), if it did
    last_used_service: str | None = None
    owner: str | None = None  # the user's owner tag: an email address or a chat destination name
    warned_at: datetime | None = None  # when a sweep first announced its deactivation or deletion (its record)


@dataclass(frozen=True)
class Managed:
    """A managed user's secret: its ``AWSCURRENT`` key (``None``: never rotated), since when (``None``: the
    record on the secret does not match), and the ``AWSPENDING`` key of a rotation in progress."""

    secret_id: str
    current_key_id: str | None = None
    current_since: datetime | None = None
    pending_key_id: str | None = None


@dataclass(frozen=True)
class Decision:
    key: KeyFacts
    action: Action
    reason: str
    age_days: int
    managed: bool = False
    exempt: bool = False
    rotation: bool = False  # retiring a managed user's key: part of its rotation, carried out in both modes
    due: datetime | None = None  # when ``due_action`` happens if nothing changes (for a warning ahead of it)
    due_action: Action | None = None
    announce: bool = False  # the first announcement of ``due_action``: its record is written (enforce mode)

    @property
    def is_change(self) -> bool:
        return self.action in CHANGES


def age_days(created: datetime, now: datetime) -> int:
    """Whole days from ``created`` to ``now`` (0 for a key from the future: clock skew)."""
    return max(0, (now - created) // timedelta(days=1))


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def _used(key: KeyFacts) -> str:
    if key.last_used is None:
        return "never used"
    service = f" ({key.last_used_service})" if key.last_used_service else ""
    return f"last used {key.last_used:%Y-%m-%d %H:%M}Z{service}"


_DUE_VERBS = {Action.DEACTIVATE: "deactivated", Action.DELETE: "deleted"}


def decide(
    key: KeyFacts,
    *,
    now: datetime,
    thresholds: Thresholds,
    managed: Managed | None = None,
    exempt: bool = False,
) -> Decision:
    """The action for one key, with the reason a reader of the report needs."""
    if managed is not None:
        decision = _decide_managed(key, now, thresholds, managed)
    else:
        decision = _decide_unmanaged(key, now, thresholds)
    if exempt and decision.action in CHANGES and not decision.rotation:
        return replace(decision, exempt=True, reason=f"{decision.reason}; user is exempt: reported only")
    return _announced_first(_warn_ahead(replace(decision, exempt=exempt), now, thresholds), now, thresholds)


def _announced_first(decision: Decision, now: datetime, t: Thresholds) -> Decision:
    """A deactivation or deletion is carried out only ``warn_days_before`` after its first announcement: a key
    found already past its due date (the automation is new, or the thresholds were lowered) is announced now,
    its record written, and acted on that many days later. A record older than four times that (the key was
    used again meanwhile) no longer counts. A deletion after this automation's own deactivation was announced
    by the deactivation's report."""
    if decision.action not in (Action.DEACTIVATE, Action.DELETE) or decision.rotation or decision.managed \
            or decision.exempt or t.warn_days_before == 0:
        return decision
    if decision.action is Action.DELETE and decision.key.deactivated_at is not None:
        return decision
    window, warned = _days(t.warn_days_before), decision.key.warned_at
    if warned is not None and window <= now - warned <= 4 * window:
        return decision
    since = warned if warned is not None and now - warned < window else now
    when = since + window
    why = decision.reason.split("; will be deleted on")[0]
    return replace(decision, action=Action.WARN, due=when, due_action=decision.action, announce=since == now,
                   reason=f"{why}; {_will_be(_DUE_VERBS[decision.action], when, now)}, {t.warn_days_before} days "
                   "after it was first announced")


def _will_be(verb: str, when: datetime, now: datetime) -> str:
    """``will be <verb> on <when> (in N days)``, N in whole days rounded up."""
    days_left = -(-(when - now) // _days(1))
    return f"will be {verb} on {when:%Y-%m-%d %H:%M}Z (in {days_left} day{'s' if days_left != 1 else ''})"


def _warn_ahead(decision: Decision, now: datetime, t: Thresholds) -> Decision:
    """Within ``warn_days_before`` of its next action, a key is reported with what will happen and when."""
    due, verb = decision.due, _DUE_VERBS.get(decision.due_action) if decision.due_action else None
    if decision.managed:  # a managed user's previous key: the rotation's own report announced its retirement
        return decision
    if decision.action not in (Action.NONE, Action.WARN) or due is None or verb is None or due <= now:
        return decision
    if due - now > _days(t.warn_days_before):
        return decision
    note = _will_be(verb, due, now)
    if decision.exempt:
        note += " were the user not exempt"
    return replace(decision, action=Action.WARN, reason=f"{decision.reason}; {note}")


def _decide_unmanaged(key: KeyFacts, now: datetime, t: Thresholds) -> Decision:
    return _unmanaged_active(key, now, t) if key.status == ACTIVE else _unmanaged_inactive(key, now, t)


def _unmanaged_active(key: KeyFacts, now: datetime, t: Thresholds) -> Decision:
    """Deactivated at ``deactivate_after_days``, and (unless ``deactivate_in_use``) only once unused for
    ``deactivate_if_unused_days``: an old key in use is reported in every sweep instead."""
    age, used = age_days(key.created, now), _used(key)
    by_age = key.created + _days(t.deactivate_after_days)
    quiet_from = (key.last_used or key.created) + _days(t.deactivate_if_unused_days)
    due = by_age if t.deactivate_in_use else max(by_age, quiet_from)
    if now >= due:
        rule = "" if t.deactivate_in_use else f" and unused for {t.deactivate_if_unused_days}+ days"
        # Deleted once inactive past delete_after_days and grace_days after this deactivation: said now, so
        # the deactivation's report is the warning ahead of the deletion.
        deleted = max(key.created + _days(t.delete_after_days), now + _days(t.grace_days))
        return Decision(key, Action.DEACTIVATE, f"active key {age} days old (>= {t.deactivate_after_days}){rule}, "
                        f"{used}; {_will_be('deleted', deleted, now)} unless reactivated", age, due=deleted,
                        due_action=Action.DELETE)
    if now >= by_age:
        return Decision(key, Action.WARN, f"active key {age} days old (>= {t.deactivate_after_days}) but in use, "
                        f"{used}: not deactivated while it is used (deactivate_if_unused_days: "
                        f"{t.deactivate_if_unused_days}); rotate it", age, due=due, due_action=Action.DEACTIVATE)
    action = Action.WARN if age >= t.warn_after_days else Action.NONE
    limit = f" (>= {t.warn_after_days})" if action is Action.WARN else ""
    return Decision(key, action, f"active key {age} days old{limit}, {used}", age, due=due,
                    due_action=Action.DEACTIVATE)


def _unmanaged_inactive(key: KeyFacts, now: datetime, t: Thresholds) -> Decision:
    """Deleted at ``delete_after_days``: ``grace_days`` after this automation deactivated it, or, deactivated by
    someone else, once unused for ``delete_after_days - deactivate_after_days`` days."""
    age, used = age_days(key.created, now), _used(key)
    by_age = key.created + _days(t.delete_after_days)
    if key.deactivated_at is not None:
        due = max(by_age, key.deactivated_at + _days(t.grace_days))
        how = f"deactivated by this automation at {key.deactivated_at:%Y-%m-%d %H:%M}Z"
    else:
        due = max(by_age, (key.last_used or key.created) + _days(t.unused_before_delete_days))
        how = "deactivated by someone else"
    if now >= due:
        return Decision(key, Action.DELETE, f"inactive key {age} days old (>= {t.delete_after_days}), {how}, "
                        f"{used}", age)
    if now >= by_age and key.deactivated_at is None:
        return Decision(key, Action.HOLD, f"inactive key {age} days old but {used}, within the last "
                        f"{t.unused_before_delete_days} days: not deleted (it may have been switched off recently)",
                        age, due=due, due_action=Action.DELETE)
    action = Action.WARN if age >= t.warn_after_days or now >= by_age else Action.NONE
    return Decision(key, action, f"inactive key {age} days old, {how}, {used}; deleted from {due:%Y-%m-%d %H:%M}Z",
                    age, due=due, due_action=Action.DELETE)


def _decide_managed(key: KeyFacts, now: datetime, t: Thresholds, managed: Managed) -> Decision:
    age = age_days(key.created, now)
    used = _used(key)
    if managed.current_key_id is None:
        action = Action.HOLD if key.status == ACTIVE and age >= t.deactivate_after_days else Action.NONE
        if action is Action.NONE and age >= t.warn_after_days:
            action = Action.WARN
        return Decision(
            key, action, f"managed user not rotated yet (its secret holds no key): key {age} days old, "
            f"{used}; left alone", age, managed=True,
        )
    if key.key_id == managed.current_key_id:
        if age >= t.warn_after_days:
            return Decision(
                key, Action.WARN, f"AWSCURRENT key of a managed user is {age} days old: is the rotation schedule "
                f"running? ({used})", age, managed=True,
            )
        return Decision(key, Action.NONE, f"AWSCURRENT key, {age} days old", age, managed=True)
    if key.key_id == managed.pending_key_id:
        return Decision(key, Action.NONE, f"AWSPENDING key of a rotation in progress ({used})", age, managed=True)
    if key.status == ACTIVE:
        return _retire(key, now, t, managed, age, used)
    # Inactive, not current: the previous key once retired. The next rotation deletes it; the age rule may too.
    decision = _decide_unmanaged(key, now, t)
    return replace(decision, managed=True, reason=f"previous key of a managed user: {decision.reason}")


def _retire(key: KeyFacts, now: datetime, t: Thresholds, managed: Managed, age: int, used: str) -> Decision:
    """An active key of a managed user that is neither AWSCURRENT nor AWSPENDING (the previous one, or one
    made by hand): deactivated once the grace is over and it has been quiet for ``grace_days``."""
    since = managed.current_since
    if since is None:
        return Decision(
            key, Action.HOLD, f"the rotation record on the secret does not name its AWSCURRENT key "
            f"{managed.current_key_id}: kept until the next rotation step records it ({used})", age, managed=True,
        )
    grace = timedelta(days=t.grace_days)
    grace_end = max(since, key.created) + grace
    due = max(grace_end, key.last_used + grace) if key.last_used else grace_end
    if now < grace_end:
        return Decision(
            key, Action.NONE, f"previous key in its grace period until {grace_end:%Y-%m-%d %H:%M}Z ({used})",
            age, managed=True, due=due, due_action=Action.DEACTIVATE,
        )
    if key.last_used is not None and key.last_used > now - grace:
        return Decision(
            key, Action.HOLD, f"not AWSCURRENT (current since {since:%Y-%m-%d %H:%M}Z) but still in use within the "
            f"last {t.grace_days} days ({used}): not deactivated; find the reader that still uses it and move it "
            "to the secret's AWSCURRENT value", age, managed=True, due=due, due_action=Action.DEACTIVATE,
        )
    return Decision(
        key, Action.DEACTIVATE, f"not AWSCURRENT, {t.grace_days}-day grace period over since "
        f"{grace_end:%Y-%m-%d %H:%M}Z and not used in the last {t.grace_days} days ({used})",
        age, managed=True, rotation=True,
    )


@dataclass(frozen=True)
class Plan:
    """What a sweep carries out (``execute``) and what it only reports."""

    decisions: tuple[Decision, ...]
    execute: tuple[Decision, ...]
    guard_tripped: bool
    mode: str

    @property
    def reportable(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action is not Action.NONE)

    def count(self, action: Action) -> int:
        return sum(1 for d in self.decisions if d.action is action)


def plan(decisions: Sequence[Decision], *, mode: str, max_changes: int) -> Plan:
    """Which changes to carry out: in ``report`` mode only the retirement of managed users' previous keys (part
    of their rotation), none for exempt users, none at all above ``max_changes``."""
    wanted = tuple(d for d in decisions if d.is_change and not d.exempt and (mode == "enforce" or d.rotation))
    guard = len(wanted) > max_changes
    return Plan(tuple(decisions), () if guard else wanted, guard, mode)
