"""Pure decisions of the sweep and of createSecret: unit and property tests (no AWS)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from key_rotation.policy import Action, Decision, KeyFacts, Managed, Thresholds, age_days, decide, plan
from key_rotation.rotation import (
    TAG_CURRENT_KEY,
    TAG_CURRENT_SINCE,
    AccessKey,
    RotationError,
    current_since,
    key_to_make_room,
    precise,
    user_matches,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TH = Thresholds(80, 90, 120, 7, deactivate_if_unused_days=30, deactivate_in_use=False, warn_days_before=7)


def key(status: str = "Active", created: datetime = T0, last_used: datetime | None = None,
        key_id: str = "AKIAEXAMPLE000000001", deactivated_at: datetime | None = None) -> KeyFacts:
    return KeyFacts("bob", "arn:aws:iam::123456789012:user/bob", key_id, status, created, last_used, deactivated_at)


def announced(k: KeyFacts, now: datetime, th: Thresholds = TH) -> KeyFacts:
    """The key as a sweep sees it ``warn_days_before`` after it first announced the key's action."""
    return replace(k, warned_at=now - timedelta(days=th.warn_days_before))


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="warn_after_days < deactivate_after_days < delete_after_days"):
        Thresholds(warn_after_days=90, deactivate_after_days=90, delete_after_days=120, grace_days=7,
                   deactivate_if_unused_days=30, deactivate_in_use=False, warn_days_before=7)


def test_age_is_whole_days_and_never_negative() -> None:
    assert age_days(T0, T0 + timedelta(days=85, hours=23)) == 85
    assert age_days(T0 + timedelta(days=1), T0) == 0


@pytest.mark.parametrize(
    ("days", "status", "expected"),
    [(79, "Active", Action.NONE), (80, "Active", Action.WARN), (89, "Active", Action.WARN),
     (90, "Active", Action.DEACTIVATE), (400, "Active", Action.DEACTIVATE),
     (85, "Inactive", Action.WARN), (119, "Inactive", Action.WARN), (120, "Inactive", Action.DELETE)],
)
def test_boundaries(days: int, status: str, expected: Action) -> None:
    now = T0 + timedelta(days=days)
    assert decide(announced(key(status), now), now=now, thresholds=TH).action is expected


def test_grace_rule_uses_the_time_the_new_key_became_current() -> None:
    since = T0 + timedelta(days=30)
    managed = Managed("secret", "AKIANEW", since)
    previous = key(created=T0)
    early = since + timedelta(days=6, hours=23)
    assert decide(previous, now=early, thresholds=TH, managed=managed).action is Action.NONE
    assert decide(previous, now=since + timedelta(days=7), thresholds=TH, managed=managed).action is Action.DEACTIVATE
    # A reader that kept the old key cached for a while after the switch: kept until quiet for grace_days.
    cached = key(created=T0, last_used=since + timedelta(days=3))
    assert decide(cached, now=since + timedelta(days=9), thresholds=TH, managed=managed).action is Action.HOLD
    assert decide(cached, now=since + timedelta(days=10), thresholds=TH, managed=managed).action is Action.DEACTIVATE
    # Stale record on the secret (since unknown): the other keys are kept; the AWSPENDING key is never touched.
    stale = Managed("secret", "AKIANEW", None)
    assert decide(previous, now=since + timedelta(days=60), thresholds=TH, managed=stale).action is Action.HOLD
    pending = key(created=T0, key_id="AKIAPENDING")
    in_progress = Managed("secret", "AKIANEW", since, "AKIAPENDING")
    assert decide(pending, now=since + timedelta(days=60), thresholds=TH, managed=in_progress).action is Action.NONE
    current = key(created=since, key_id="AKIANEW")
    assert decide(current, now=since + timedelta(days=500), thresholds=TH, managed=managed).action is Action.WARN


def test_key_to_make_room() -> None:
    a = AccessKey("A", "Active", T0)
    b_inactive = AccessKey("B", "Inactive", T0 + timedelta(days=1))
    assert key_to_make_room([a], "A", "bob") is None
    assert key_to_make_room([a, b_inactive], "A", "bob") == b_inactive
    assert key_to_make_room([AccessKey("A", "Inactive", T0), b_inactive], "B", "bob") == AccessKey("A", "Inactive", T0)
    with pytest.raises(RotationError, match="A Active \\(AWSCURRENT\\), B Active"):
        key_to_make_room([a, AccessKey("B", "Active", T0)], "A", "bob")
    with pytest.raises(RotationError):
        key_to_make_room([AccessKey("A", "Inactive", T0), AccessKey("B", "Active", T0)], "A", "bob")
    # Deactivated by this automation: deleted only grace_days after that.
    records = {"B": T0 + timedelta(days=10)}
    with pytest.raises(RotationError, match="deletable from"):
        key_to_make_room([a, b_inactive], "A", "bob", deactivated=records, now=T0 + timedelta(days=16),
                         grace=timedelta(days=7))
    assert key_to_make_room([a, b_inactive], "A", "bob", deactivated=records, now=T0 + timedelta(days=17),
                            grace=timedelta(days=7)) == b_inactive


def test_user_matches() -> None:
    assert user_matches("arn:aws:iam::123456789012:user/alice", "alice")
    assert user_matches("arn:aws:iam::123456789012:user/team/ops/alice", "alice")
    assert not user_matches("arn:aws:iam::123456789012:user/malice", "alice")
    assert not user_matches("arn:aws:sts::123456789012:user/moto", "moto")
    assert not user_matches("arn:aws:sts::123456789012:assumed-role/alice/session", "alice")


moments = st.integers(min_value=0, max_value=400).map(lambda d: T0 + timedelta(days=d))
maybe_moment = st.none() | moments
facts = st.builds(
    key,
    status=st.sampled_from(["Active", "Inactive"]),
    created=moments,
    last_used=maybe_moment,
    key_id=st.sampled_from(["AKIA1", "AKIA2", "AKIA3"]),
    deactivated_at=maybe_moment,
)
managed_states = st.none() | st.builds(Managed, st.just("secret"), st.none() | st.sampled_from(["AKIA1", "AKIA2"]),
                                       maybe_moment, st.none() | st.sampled_from(["AKIA1", "AKIA3"]))


@settings(max_examples=150, deadline=None)
@given(k=facts, now=moments, managed=managed_states, exempt=st.booleans())
def test_properties_of_decide(k: KeyFacts, now: datetime, managed: Managed | None, exempt: bool) -> None:
    decision = decide(k, now=now, thresholds=TH, managed=managed, exempt=exempt)
    if k.status == "Active":
        assert decision.action is not Action.DELETE  # an active key is never deleted
    else:
        assert decision.action is not Action.DEACTIVATE
    grace = timedelta(days=TH.grace_days)
    if decision.action is Action.DELETE:
        if k.deactivated_at is not None:  # deactivated by this automation: grace_days later at the earliest
            assert now >= k.deactivated_at + grace
        else:  # by someone else: a long quiet period
            assert k.last_used is None or now - k.last_used >= timedelta(days=TH.unused_before_delete_days)
    if managed is not None and k.key_id in (managed.current_key_id, managed.pending_key_id):
        assert not decision.is_change  # AWSCURRENT and AWSPENDING are never touched by the sweep
    if managed is not None and managed.current_key_id is not None and decision.action is Action.DEACTIVATE:
        assert decision.rotation and managed.current_since is not None
        assert now >= max(managed.current_since, k.created) + grace
        assert k.last_used is None or k.last_used <= now - grace  # quiet for grace_days
    assert decision.reason


@settings(max_examples=100, deadline=None)
@given(
    actions=st.lists(st.tuples(st.sampled_from(list(Action)), st.booleans(), st.booleans()), max_size=30),
    mode=st.sampled_from(["report", "enforce"]),
    max_changes=st.integers(min_value=0, max_value=10),
)
def test_properties_of_plan(actions: list[tuple[Action, bool, bool]], mode: str, max_changes: int) -> None:
    decisions = [Decision(key(key_id=f"AKIA{i}"), a, "r", 0, exempt=e, rotation=r)
                 for i, (a, e, r) in enumerate(actions)]
    result = plan(decisions, mode=mode, max_changes=max_changes)
    assert len(result.execute) <= max_changes
    assert all(d.is_change and not d.exempt for d in result.execute)
    if mode == "report":  # only the retirement of managed users' keys (their rotation) is carried out
        assert all(d.rotation for d in result.execute)
    if result.guard_tripped:
        assert result.execute == ()


def test_rotation_record_keeps_sub_second_precision() -> None:
    moment = datetime(2026, 11, 28, 23, 44, 44, 512345, tzinfo=UTC)
    assert precise(moment) == "2026-11-28T23:44:44.512345Z"
    assert current_since({TAG_CURRENT_KEY: "AKIA1", TAG_CURRENT_SINCE: precise(moment)}) == ("AKIA1", moment)
    assert current_since({TAG_CURRENT_KEY: "AKIA1", TAG_CURRENT_SINCE: "garbage"}) == ("AKIA1", None)


# --------------------------------------------------------------------------- the policy for keys in use


@settings(max_examples=200, deadline=None)
@given(created=st.integers(0, 400), used=st.none() | st.integers(0, 400), now=st.integers(0, 500),
       in_use=st.booleans())
def test_a_key_used_within_deactivate_if_unused_days_is_never_deactivated_by_default(
        created: int, used: int | None, now: int, in_use: bool) -> None:
    th = replace(TH, deactivate_in_use=in_use)
    last = None if used is None else T0 + timedelta(days=max(created, used))
    k = key(created=T0 + timedelta(days=created), last_used=last)
    moment = T0 + timedelta(days=max(now, created))
    decision = decide(announced(k, moment), now=moment, thresholds=th)
    age = (moment - k.created).days
    recently_used = last is not None and moment - last < timedelta(days=th.deactivate_if_unused_days)
    if not in_use and recently_used:
        assert decision.action is not Action.DEACTIVATE
        if age >= th.deactivate_after_days:  # old and in use: warned in every sweep, with its last use
            assert decision.action is Action.WARN and "in use" in decision.reason and "last used" in decision.reason
    if in_use:  # age alone
        assert (decision.action is Action.DEACTIVATE) == (age >= th.deactivate_after_days)


def test_warning_before_the_action_says_what_and_when() -> None:
    k = key(created=T0)  # never used: deactivated at 90 days
    assert decide(k, now=T0 + timedelta(days=82), thresholds=TH).reason.find("will be deactivated") == -1
    early = decide(k, now=T0 + timedelta(days=84), thresholds=TH)
    assert early.action is Action.WARN
    assert "will be deactivated on 2026-04-01 00:00Z (in 6 days)" in early.reason
    gone = decide(key(status="Inactive", created=T0, deactivated_at=T0 + timedelta(days=120)),
                  now=T0 + timedelta(days=122), thresholds=TH)
    assert gone.action is Action.WARN and "will be deleted on 2026-05-08 00:00Z (in 5 days)" in gone.reason
    quiet = replace(TH, warn_days_before=0)
    assert decide(k, now=T0 + timedelta(days=84), thresholds=quiet).action is Action.WARN  # by age (>= 80)
    assert "will be" not in decide(k, now=T0 + timedelta(days=84), thresholds=quiet).reason


def test_a_deactivation_says_when_the_key_will_be_deleted() -> None:
    """The deactivation's report is the warning ahead of the deletion: with grace_days <= warn_days_before
    no later sweep could warn a full warn_days_before ahead."""
    at = T0 + timedelta(days=100)
    off = decide(announced(key(created=T0), at), now=at, thresholds=TH)
    assert off.action is Action.DEACTIVATE
    assert (off.due, off.due_action) == (T0 + timedelta(days=120), Action.DELETE)  # by age: 120 > 100 + 7
    assert "will be deleted on 2026-05-01 00:00Z (in 20 days) unless reactivated" in off.reason
    late = decide(announced(key(created=T0), T0 + timedelta(days=200)), now=T0 + timedelta(days=200), thresholds=TH)
    assert late.due == T0 + timedelta(days=207)  # grace_days after this deactivation
    assert "will be deleted on 2026-07-27 00:00Z (in 7 days) unless reactivated" in late.reason


def test_a_key_first_found_past_its_due_date_is_announced_and_acted_on_warn_days_before_later() -> None:
    """No deactivation or deletion without warn_days_before of warnings, also for a key first seen already due."""
    now = T0 + timedelta(days=200)
    first = decide(key(created=T0), now=now, thresholds=TH)
    assert (first.action, first.due_action, first.announce) == (Action.WARN, Action.DEACTIVATE, True)
    assert first.due == now + timedelta(days=7)
    assert "will be deactivated on 2026-07-27 00:00Z (in 7 days), 7 days after it was first announced" in first.reason
    later = now + timedelta(days=3)
    waiting = decide(replace(key(created=T0), warned_at=now), now=later, thresholds=TH)
    assert (waiting.action, waiting.due, waiting.announce) == (Action.WARN, now + timedelta(days=7), False)
    assert decide(replace(key(created=T0), warned_at=now), now=now + timedelta(days=7),
                  thresholds=TH).action is Action.DEACTIVATE
    # An announcement older than four times warn_days_before (the key was used again meanwhile) is made again.
    stale = decide(replace(key(created=T0), warned_at=now - timedelta(days=29)), now=now, thresholds=TH)
    assert (stale.action, stale.announce) == (Action.WARN, True)
    # A key someone else deactivated, first seen past its deletion date: announced too.
    gone = decide(key("Inactive", created=T0), now=now, thresholds=TH)
    assert (gone.action, gone.due_action) == (Action.WARN, Action.DELETE)
    # The deletion after this automation's own deactivation was announced by that deactivation's report.
    own = key("Inactive", created=T0, deactivated_at=now - timedelta(days=7))
    assert decide(own, now=now, thresholds=TH).action is Action.DELETE
    # warn_days_before 0: acted on at once; an exempt user's key is reported, never announced.
    assert decide(key(created=T0), now=now, thresholds=replace(TH, warn_days_before=0)).action is Action.DEACTIVATE
    exempt = decide(key(created=T0), now=now, thresholds=TH, exempt=True)
    assert exempt.exempt and not exempt.announce
