"""Part 2: the stale-key sweep through the handler, against moto. "Now" is the scheduled event's ``time``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from key_rotation import handler
from key_rotation.rotation import TAG_CURRENT_KEY, TAG_CURRENT_SINCE
from shared.timeutil import iso
from tests.conftest import load_event

pytestmark = pytest.mark.usefixtures("own_role")  # every invocation under the synthesized role, moto IAM on

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def sweep_event(now: datetime, name: str = "scheduled_event.json") -> dict[str, Any]:
    event = load_event(f"key_rotation/{name}")
    event["time"] = iso(now)
    return dict(event)


def sweep(lambda_context: Any, now: datetime) -> dict[str, Any]:
    return dict(handler.handler(sweep_event(now), lambda_context))


def one_report(aws: Any) -> dict[str, Any]:
    reports = aws.reports()
    assert len(reports) == 1, reports
    return reports[0]


# (days after creation, status before) -> (expected action, status after in enforce mode; None: deleted)
AGES = [
    (79, "Active", "none", "Active"),
    (85, "Active", "warn", "Active"),
    (95, "Active", "deactivate", "Inactive"),
    (130, "Active", "deactivate", "Inactive"),  # an active key is never deleted, whatever its age
    (79, "Inactive", "none", "Inactive"),
    (85, "Inactive", "warn", "Inactive"),
    (95, "Inactive", "warn", "Inactive"),
    (130, "Inactive", "delete", None),
]


@pytest.mark.parametrize("mode", ["report", "enforce"])
@pytest.mark.parametrize(("days", "status", "action", "after"), AGES)
def test_sweep_by_age(aws: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, mode: str, days: int,
                      status: str, action: str, after: str | None) -> None:
    monkeypatch.setenv("MODE", mode)
    (key,) = aws.user("bob", keys=1)
    aws.set_key("bob", key, created=T0, status=status)

    result = sweep(lambda_context, T0 + timedelta(days=days, hours=1))

    expected_after = after if mode == "enforce" else status
    assert aws.keys("bob") == ({} if expected_after is None else {key: expected_after})
    reports = aws.reports()
    if action == "none":
        assert reports == [] and not result["reported"]
        return
    (report,) = reports
    (entry,) = json.loads(report["metadata"]["additionalContext"]["keys"])
    assert entry["accessKeyId"] == key and entry["action"] == action
    assert entry["done"] is (mode == "enforce" and action in ("deactivate", "delete"))
    assert report["metadata"]["additionalContext"]["mode"] == mode
    assert "never used" in report["content"]["description"]
    if mode == "report" and action in ("deactivate", "delete"):
        assert f"would {action}" in report["content"]["description"]
        assert report["content"]["title"].startswith("[report mode]")


def test_inactive_old_key_used_recently_is_kept(aws: Any, lambda_context: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "enforce")
    (key,) = aws.user("bob", keys=1)
    now = T0 + timedelta(days=130)
    aws.set_key("bob", key, created=T0, status="Inactive", last_used=now - timedelta(days=3))

    result = sweep(lambda_context, now)

    assert aws.keys("bob") == {key: "Inactive"}
    assert result["held"] == 1 and result["deleted"] == 0
    assert "not deleted" in one_report(aws)["content"]["description"]


def test_last_use_is_reported(aws: Any, lambda_context: Any) -> None:
    (key,) = aws.user("bob", keys=1)
    aws.set_key("bob", key, created=T0, last_used=T0 + timedelta(days=80))
    sweep(lambda_context, T0 + timedelta(days=85))
    assert "last used 2026-08-20" in one_report(aws)["content"]["description"]


@pytest.mark.parametrize("how", ["group", "tag"])
@pytest.mark.own_role_settings(exempt_group="break-glass", exempt_tag="key-rotation=exempt")
def test_exempt_users_are_reported_never_changed(aws: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch,
                                                 how: str) -> None:
    monkeypatch.setenv("MODE", "enforce")
    monkeypatch.setenv("EXEMPT_GROUP", "break-glass")
    monkeypatch.setenv("EXEMPT_TAG", "key-rotation=exempt")
    aws.iam.create_group(GroupName="break-glass")
    (exempt_key,) = aws.user("root-ops", keys=1, tags={"key-rotation": "exempt"} if how == "tag" else None)
    if how == "group":
        aws.iam.add_user_to_group(GroupName="break-glass", UserName="root-ops")
    (other_key,) = aws.user("bob", keys=1)
    for user, key in (("root-ops", exempt_key), ("bob", other_key)):
        aws.set_key(user, key, created=T0)

    result = sweep(lambda_context, T0 + timedelta(days=100))

    assert aws.keys("root-ops") == {exempt_key: "Active"}
    assert aws.keys("bob") == {other_key: "Inactive"}
    assert result["deactivated"] == 1 and result["would_change"] == 1
    description = one_report(aws)["content"]["description"]
    assert "[exempt]" in description and "user is exempt: reported only" in description


@pytest.mark.own_role_settings(exempt_group="no-such-group")
def test_missing_exempt_group_is_noted_not_fatal(aws: Any, lambda_context: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEMPT_GROUP", "no-such-group")
    aws.user("bob", keys=1)
    sweep(lambda_context, T0)
    assert "exempt group no-such-group does not exist" in one_report(aws)["content"]["description"]


def test_max_changes_guard_reports_instead_of_acting(aws: Any, lambda_context: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "enforce")
    monkeypatch.setenv("MAX_CHANGES", "2")
    keys = {}
    for name in ("u1", "u2", "u3"):
        (keys[name],) = aws.user(name, keys=1)
        aws.set_key(name, keys[name], created=T0)

    result = sweep(lambda_context, T0 + timedelta(days=100))

    assert result["guardTripped"] is True and result["deactivated"] == 0 and result["would_change"] == 3
    assert all(aws.keys(name) == {key: "Active"} for name, key in keys.items())
    report = one_report(aws)
    assert "exceed MAX_CHANGES; nothing was changed" in report["content"]["description"]
    assert report["metadata"]["additionalContext"]["severity"] == "warning"


def test_at_max_changes_the_sweep_acts(aws: Any, lambda_context: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "enforce")
    monkeypatch.setenv("MAX_CHANGES", "2")
    for name in ("u1", "u2"):
        (key,) = aws.user(name, keys=1)
        aws.set_key(name, key, created=T0)
    assert sweep(lambda_context, T0 + timedelta(days=100))["deactivated"] == 2


def test_pagination_over_250_users(aws: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MAX_CHANGES", "1000")
    old = {}
    for i in range(250):
        keys = aws.user(f"user-{i:03d}", keys=1)
        if i % 50 == 0:
            aws.set_key(f"user-{i:03d}", keys[0], created=T0)
            old[f"user-{i:03d}"] = keys[0]

    started = time.perf_counter()
    result = sweep(lambda_context, T0 + timedelta(days=95))
    elapsed = time.perf_counter() - started

    assert result["users"] == 250 and result["keys"] == 250  # ListUsers pages at 100: three pages
    assert result["would_change"] == len(old) == 5
    entries = json.loads(one_report(aws)["metadata"]["additionalContext"]["keys"])
    assert {e["user"]: e["accessKeyId"] for e in entries} == old
    with capsys.disabled():
        print(f"\n  sweep over 250 users / 250 keys in moto: {elapsed:.2f} s")


def test_scheduler_event_runs_the_sweep_too(aws: Any, lambda_context: Any) -> None:
    (key,) = aws.user("bob", keys=1)
    aws.set_key("bob", key, created=T0)
    event = sweep_event(T0 + timedelta(days=85), "scheduler_event.json")
    assert handler.handler(event, lambda_context)["warned"] == 1


def test_clean_account_sends_no_report(aws: Any, lambda_context: Any) -> None:
    aws.user("bob", keys=1)
    aws.user("no-keys")
    result = sweep(lambda_context, datetime.now(UTC))
    assert result["users"] == 2 and not result["reported"]
    assert aws.reports() == []


def test_metrics_are_emitted(aws: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MODE", "enforce")
    (key,) = aws.user("bob", keys=1)
    aws.set_key("bob", key, created=T0)
    sweep(lambda_context, T0 + timedelta(days=95))
    out = capsys.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    (blob,) = emf
    assert blob["KeysDeactivated"] == [1.0] and blob["KeysDeleted"] == [0.0]


# --------------------------------------------------------------------------- managed keys: the grace rule


def _rotated(aws: Any, monkeypatch: pytest.MonkeyPatch, since: datetime) -> tuple[str, str, str]:
    """alice: a previous key and a current one, with the rotation record on her secret."""
    previous, current = aws.user("alice", keys=2)
    aws.set_key("alice", previous, created=since - timedelta(days=30))
    aws.set_key("alice", current, created=since)
    value = {"UserName": "alice", "AccessKeyId": current, "SecretAccessKey": "not-read-by-the-sweep"}
    secret = aws.sm.create_secret(Name="opsauto/key-rotation/alice", SecretString=json.dumps(value),
                                  Tags=[{"Key": TAG_CURRENT_KEY, "Value": current},
                                        {"Key": TAG_CURRENT_SINCE, "Value": iso(since)}])["ARN"]
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"alice": secret}))
    monkeypatch.setenv("MODE", "enforce")
    return secret, previous, current


def test_previous_key_kept_during_grace_period(aws: Any, lambda_context: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, previous, current = _rotated(aws, monkeypatch, T0)
    sweep(lambda_context, T0 + timedelta(days=6))
    assert aws.keys("alice") == {previous: "Active", current: "Active"}
    assert aws.reports() == []


def test_previous_key_unused_since_rotation_deactivated_after_grace(aws: Any, lambda_context: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, previous, current = _rotated(aws, monkeypatch, T0)
    aws.set_key("alice", previous, last_used=T0 - timedelta(hours=2))
    result = sweep(lambda_context, T0 + timedelta(days=8))
    assert aws.keys("alice") == {previous: "Inactive", current: "Active"}
    assert result["deactivated"] == 1
    assert "[managed]" in one_report(aws)["content"]["description"]


def test_previous_key_still_in_use_is_reported_not_deactivated(aws: Any, lambda_context: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, previous, current = _rotated(aws, monkeypatch, T0)
    aws.set_key("alice", previous, last_used=T0 + timedelta(days=5))
    result = sweep(lambda_context, T0 + timedelta(days=8))
    assert aws.keys("alice") == {previous: "Active", current: "Active"}
    assert result["held"] == 1
    assert "still in use within the last 7 days" in one_report(aws)["content"]["description"]


def test_current_managed_key_never_deactivated_by_age(aws: Any, lambda_context: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, previous, current = _rotated(aws, monkeypatch, T0)
    aws.iam.delete_access_key(UserName="alice", AccessKeyId=previous)
    result = sweep(lambda_context, T0 + timedelta(days=200))
    assert aws.keys("alice") == {current: "Active"}
    assert result["warned"] == 1
    assert "is the rotation schedule running" in one_report(aws)["content"]["description"]


def test_managed_user_without_rotation_record_is_left_alone(aws: Any, lambda_context: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (key,) = aws.user("alice", keys=1)
    aws.set_key("alice", key, created=T0)
    secret = aws.managed_secret("alice")
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"alice": secret}))
    monkeypatch.setenv("MODE", "enforce")
    result = sweep(lambda_context, T0 + timedelta(days=100))
    assert aws.keys("alice") == {key: "Active"} and result["held"] == 1


def test_rotation_then_sweep_end_to_end(aws: Any, lambda_context: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotate twice through the handler, then sweep past the grace period: the previous key goes inactive."""
    from tests.functions.key_rotation.test_rotation import run_steps

    aws.user("alice")
    secret = aws.managed_secret("alice")
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"alice": secret}))
    run_steps(lambda_context, secret, aws.start_rotation(secret))
    previous = aws.secret_value(secret)["AccessKeyId"]
    run_steps(lambda_context, secret, aws.start_rotation(secret))
    current = aws.secret_value(secret)["AccessKeyId"]
    aws.set_key("alice", previous, last_used=datetime.now(UTC) - timedelta(minutes=5))  # before the switch
    aws.reports()
    monkeypatch.setenv("MODE", "enforce")

    sweep(lambda_context, datetime.now(UTC) + timedelta(days=8))

    assert aws.keys("alice") == {previous: "Inactive", current: "Active"}


def test_missing_managed_secret_is_noted_and_its_user_left_alone(aws: Any, lambda_context: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (key,) = aws.user("alice", keys=1)
    aws.set_key("alice", key, created=T0)
    gone = "arn:aws:secretsmanager:us-east-1:123456789012:secret:opsauto/key-rotation/alice-AbCdEf"
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"alice": gone}))
    monkeypatch.setenv("MODE", "enforce")
    sweep(lambda_context, T0 + timedelta(days=100))
    assert aws.keys("alice") == {key: "Active"}
    assert f"managed secret {gone} does not exist" in one_report(aws)["content"]["description"]


# --------------------------------------------------------------------------- owners and the credential report


def test_owner_gets_a_notice_of_their_keys_only(aws: Any, lambda_context: Any) -> None:
    """The Owner tag's address is subscribed to the owner topic with a filter on the message attribute
    ``owner``; each owner's notice lists only the keys of the users they own."""
    (mine,) = aws.user("alice-app", keys=1, tags={"Owner": "alice@example.com"})
    (theirs,) = aws.user("bob-app", keys=1, tags={"Owner": "team-payments"})
    aws.set_key("alice-app", mine, created=T0)
    aws.set_key("bob-app", theirs, created=T0)
    result = sweep(lambda_context, T0 + timedelta(days=85))
    assert result["ownerNotices"] == 2
    notices = {n["metadata"]["additionalContext"]["owner"]: n for n in aws.owners.messages()}
    assert set(notices) == {"alice@example.com", "team-payments"}
    assert mine in notices["alice@example.com"]["content"]["description"]
    assert theirs not in notices["alice@example.com"]["content"]["description"]
    import boto3

    sns = boto3.client("sns", region_name="us-east-1")
    emails = [s for s in sns.list_subscriptions()["Subscriptions"] if s["Protocol"] == "email"]
    assert [s["Endpoint"] for s in emails] == ["alice@example.com"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=emails[0]["SubscriptionArn"])["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == {"owner": ["alice@example.com"]}
    sweep(lambda_context, T0 + timedelta(days=86))  # a second sweep subscribes no one again
    assert len([s for s in sns.list_subscriptions()["Subscriptions"] if s["Protocol"] == "email"]) == 1


@pytest.mark.parametrize("in_progress", [0, 2])
def test_above_the_threshold_last_use_comes_from_the_credential_report(
        aws: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, in_progress: int) -> None:
    from tests.lifetime.kit import Fault, FaultInjector

    monkeypatch.setenv("CREDENTIAL_REPORT_USERS", "2")
    keys = {name: aws.user(name, keys=1)[0] for name in ("u1", "u2", "u3")}
    for name, key_id in keys.items():
        aws.set_key(name, key_id, created=T0, last_used=T0 + timedelta(days=80))
    with FaultInjector() as faults:
        faults.add(Fault("iam.GetCredentialReport", "ReportInProgress", status=404, times=in_progress))
        with faults.active():
            result = sweep(lambda_context, T0 + timedelta(days=95))
    assert result["lastUseFrom"] == "credential report"
    assert faults.count("iam.GetAccessKeyLastUsed") == 0
    assert faults.count("iam.GetCredentialReport") == 1 + in_progress
    # Used 15 days ago: in use, so not deactivated by default (the same decision as the per-key path).
    assert result["deactivated"] == 0 and result["warned"] == 3
    assert "last used 2026-08-20 12:00Z" in one_report(aws)["content"]["description"]


def test_a_key_first_found_due_is_announced_and_deactivated_warn_days_before_later(
        aws: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep that first finds an old idle key due announces it and records when (a tag on the user); the
    key is deactivated by the first sweep warn_days_before later, and its deletion clears both records."""
    import boto3

    monkeypatch.setenv("MODE", "enforce")
    monkeypatch.setenv("WARN_DAYS_BEFORE", "7")
    (key,) = aws.user("bob", keys=1)
    aws.set_key("bob", key, created=T0)
    first = T0 + timedelta(days=200)
    iam = boto3.client("iam")

    def records() -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="bob")["Tags"]
                if t["Key"].startswith("KeyRotation:")}

    sweep(lambda_context, first)
    assert aws.keys("bob") == {key: "Active"}
    (entry,) = json.loads(aws.reports()[-1]["metadata"]["additionalContext"]["keys"])
    assert (entry["action"], entry["dueAction"], entry["done"]) == ("warn", "deactivate", False)
    assert list(records()) == [f"KeyRotation:Warned:{key}"]
    sweep(lambda_context, first + timedelta(days=6))
    assert aws.keys("bob") == {key: "Active"}
    sweep(lambda_context, first + timedelta(days=7))
    assert aws.keys("bob") == {key: "Inactive"}
    sweep(lambda_context, first + timedelta(days=14))  # grace_days after the deactivation, past delete_after_days
    assert aws.keys("bob") == {} and records() == {}
