"""Part 1: the four Secrets Manager rotation steps, through the handler, against moto.

About testSecret under moto: moto's STS GetCallerIdentity looks the signing access key up among the
keys moto's IAM created and answers with that user's ARN; an unknown key gets a default identity
(``arn:aws:sts::123456789012:user/moto``) instead of an error. So "a key that does not work" is shown
here by a key moto does not know (a deleted or made-up key): the ARN does not match the user and the
step fails. moto does not refuse inactive keys, and the seconds a new key needs before it works are
not emulated: the retry is tested by counting attempts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from key_rotation import config, handler
from key_rotation.rotation import TAG_CURRENT_KEY, TAG_CURRENT_SINCE, TAG_PREVIOUS_KEY, RotationError
from tests.conftest import load_event

pytestmark = pytest.mark.usefixtures("own_role")  # every invocation under the synthesized role, moto IAM on

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def step_event(step: str, secret_id: str, token: str) -> dict[str, Any]:
    event = load_event("key_rotation/rotation_create_secret.json")
    event.update(Step=step, SecretId=secret_id, ClientRequestToken=token)
    return dict(event)


def run_steps(lambda_context: Any, secret_id: str, token: str, steps: tuple[str, ...] = STEPS) -> list[dict[str, Any]]:
    return [handler.handler(step_event(step, secret_id, token), lambda_context) for step in steps]


def test_first_rotation_creates_the_first_key(aws: Any, lambda_context: Any) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    token = aws.start_rotation(secret)

    results = run_steps(lambda_context, secret, token)

    assert [r["outcome"] for r in results] == ["created", "skipped", "tested", "finished"]
    value = aws.secret_value(secret)
    assert value["UserName"] == "alice"
    assert aws.keys("alice") == {value["AccessKeyId"]: "Active"}
    assert "AWSCURRENT" in aws.stages(secret)[token]  # AWSPENDING may stay on it: Secrets Manager clears it
    tags = aws.secret_tags(secret)
    assert tags[TAG_CURRENT_KEY] == value["AccessKeyId"]
    assert TAG_CURRENT_SINCE in tags
    assert TAG_PREVIOUS_KEY not in tags  # the placeholder held no key
    (report,) = aws.reports()
    assert report["metadata"]["eventType"] == "AccessKeyRotated"
    assert value["SecretAccessKey"] not in json.dumps(report)


def test_second_rotation_keeps_the_previous_key_active(aws: Any, lambda_context: Any) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    run_steps(lambda_context, secret, aws.start_rotation(secret))
    old = aws.secret_value(secret)["AccessKeyId"]

    token = aws.start_rotation(secret)
    run_steps(lambda_context, secret, token)

    new = aws.secret_value(secret)["AccessKeyId"]
    assert new != old
    assert aws.keys("alice") == {old: "Active", new: "Active"}  # the grace period is the sweep's business
    assert aws.secret_value(secret, "AWSPREVIOUS")["AccessKeyId"] == old
    tags = aws.secret_tags(secret)
    assert (tags[TAG_CURRENT_KEY], tags[TAG_PREVIOUS_KEY]) == (new, old)


def test_every_step_repeated_creates_one_key(aws: Any, lambda_context: Any) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    token = aws.start_rotation(secret)

    outcomes = [r["outcome"] for r in run_steps(lambda_context, secret, token, tuple(s for s in STEPS for _ in (1, 2)))]

    assert outcomes == ["created", "exists", "skipped", "skipped", "tested", "tested", "finished", "current"]
    assert len(aws.keys("alice")) == 1
    assert len(aws.reports()) == 1  # one rotation, one report


def test_retry_of_the_whole_rotation_after_finish_is_a_no_op(aws: Any, lambda_context: Any) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    token = aws.start_rotation(secret)
    run_steps(lambda_context, secret, token)
    before = (aws.keys("alice"), aws.stages(secret))

    assert [r["outcome"] for r in run_steps(lambda_context, secret, token)] == ["current"] * 4
    assert (aws.keys("alice"), aws.stages(secret)) == before


# --------------------------------------------------------------------------- two keys already


def _with_current_key(aws: Any, lambda_context: Any) -> tuple[str, str]:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    run_steps(lambda_context, secret, aws.start_rotation(secret))
    aws.reports()
    return secret, aws.secret_value(secret)["AccessKeyId"]


@pytest.mark.parametrize(
    ("current_status", "other_status", "deleted"),
    [
        ("Active", "Inactive", "other"),
        ("Inactive", "Inactive", "other"),
        ("Active", "Active", None),
        ("Inactive", "Active", None),
    ],
)
def test_user_with_two_keys(aws: Any, lambda_context: Any, current_status: str, other_status: str,
                            deleted: str | None) -> None:
    secret, current = _with_current_key(aws, lambda_context)
    other = aws.iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    aws.iam.update_access_key(UserName="alice", AccessKeyId=current, Status=current_status)
    aws.iam.update_access_key(UserName="alice", AccessKeyId=other, Status=other_status)
    token = aws.start_rotation(secret)
    stages_before = aws.stages(secret)

    if deleted is None:
        with pytest.raises(RotationError, match="already has two access keys"):
            handler.handler(step_event("createSecret", secret, token), lambda_context)
        assert aws.keys("alice") == {current: current_status, other: other_status}  # nothing changed
        assert aws.stages(secret) == stages_before
        return
    result = handler.handler(step_event("createSecret", secret, token), lambda_context)
    new = aws.secret_value(secret, "AWSPENDING")["AccessKeyId"]
    assert result["outcome"] == "created"
    assert aws.keys("alice") == {current: current_status, new: "Active"}  # the non-current inactive key went
    (report,) = aws.reports()
    assert report["metadata"]["eventType"] == "AccessKeyDeleted"
    assert other in report["content"]["description"]


def test_first_rotation_with_two_inactive_unmanaged_keys_deletes_the_older(aws: Any, lambda_context: Any) -> None:
    from datetime import UTC, datetime

    older, newer = aws.user("alice", keys=2)
    aws.set_key("alice", older, created=datetime(2026, 1, 1, tzinfo=UTC), status="Inactive")
    aws.set_key("alice", newer, created=datetime(2026, 6, 1, tzinfo=UTC), status="Inactive")
    secret = aws.managed_secret("alice")

    handler.handler(step_event("createSecret", secret, aws.start_rotation(secret)), lambda_context)

    assert older not in aws.keys("alice") and newer in aws.keys("alice")


def test_first_rotation_next_to_an_unmanaged_active_key_adds_a_second(aws: Any, lambda_context: Any) -> None:
    (legacy,) = aws.user("alice", keys=1)
    secret = aws.managed_secret("alice")
    run_steps(lambda_context, secret, aws.start_rotation(secret))
    assert legacy in aws.keys("alice") and len(aws.keys("alice")) == 2


# --------------------------------------------------------------------------- testSecret / finishSecret


def test_test_secret_with_a_key_that_does_not_work(aws: Any, lambda_context: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    token = aws.start_rotation(secret)
    handler.handler(step_event("createSecret", secret, token), lambda_context)
    pending = aws.secret_value(secret, "AWSPENDING")
    aws.iam.delete_access_key(UserName="alice", AccessKeyId=pending["AccessKeyId"])  # moto now answers "user/moto"
    waits: list[float] = []
    monkeypatch.setattr(handler, "SLEEP", waits.append)

    with pytest.raises(RotationError, match="does not work after 6 attempts"):
        handler.handler(step_event("testSecret", secret, token), lambda_context)

    assert waits == [config.TEST_DELAY_SECONDS] * (config.TEST_ATTEMPTS - 1)
    assert "AccessKeyId" not in aws.secret_value(secret)  # finishSecret never ran: AWSCURRENT is the placeholder
    assert aws.stages(secret)[token] == ["AWSPENDING"]


def test_test_secret_succeeds_on_a_later_attempt(aws: Any, lambda_context: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A new key that needs a few seconds: the adapter fails twice, then works."""
    from key_rotation import aws as adapter

    aws.user("alice")
    secret = aws.managed_secret("alice")
    token = aws.start_rotation(secret)
    handler.handler(step_event("createSecret", secret, token), lambda_context)
    real = adapter.Aws.caller_identity
    calls: list[str] = []

    def flaky(self: Any, key_id: str, secret_access_key: str) -> Any:
        calls.append(key_id)
        if len(calls) < 3:
            raise RotationError("STS refused key: InvalidClientTokenId")
        return real(self, key_id, secret_access_key)

    monkeypatch.setattr(adapter.Aws, "caller_identity", flaky)
    result = handler.handler(step_event("testSecret", secret, token), lambda_context)
    assert result["outcome"] == "tested" and "attempt 3" in result["detail"]


def test_finish_secret_when_token_already_current_records_once(aws: Any, lambda_context: Any) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    token = aws.start_rotation(secret)
    run_steps(lambda_context, secret, token)
    aws.sm.untag_resource(SecretId=secret, TagKeys=[TAG_CURRENT_KEY, TAG_CURRENT_SINCE])  # the tag call was lost

    first = handler.handler(step_event("finishSecret", secret, token), lambda_context)
    again = handler.handler(step_event("finishSecret", secret, token), lambda_context)

    assert first["outcome"] == again["outcome"] == "current"
    assert "recorded" in first["detail"] and "nothing to do" in again["detail"]
    assert aws.secret_tags(secret)[TAG_CURRENT_KEY] == aws.secret_value(secret)["AccessKeyId"]


# --------------------------------------------------------------------------- protocol checks


def test_secret_without_rotation_enabled_fails(aws: Any, lambda_context: Any) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    token = aws.start_rotation(secret, enable=False)
    with pytest.raises(RotationError, match="not enabled for rotation"):
        handler.handler(step_event("createSecret", secret, token), lambda_context)
    assert aws.keys("alice") == {}


def test_unknown_token_and_token_not_pending_fail(aws: Any, lambda_context: Any) -> None:
    aws.user("alice")
    secret = aws.managed_secret("alice")
    first = aws.start_rotation(secret)
    run_steps(lambda_context, secret, first)
    with pytest.raises(RotationError, match="has no stage"):
        handler.handler(step_event("createSecret", secret, "00000000-0000-4000-8000-000000000000"), lambda_context)
    run_steps(lambda_context, secret, aws.start_rotation(secret))
    assert aws.stages(secret)[first] == ["AWSPREVIOUS"]  # staged, but neither current nor pending
    with pytest.raises(RotationError, match="not set as AWSPENDING"):
        handler.handler(step_event("createSecret", secret, first), lambda_context)


def test_secret_naming_another_user_than_configured_is_refused(aws: Any, lambda_context: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    aws.user("alice")
    aws.user("admin")
    value = json.dumps({"UserName": "admin"})
    secret = aws.sm.create_secret(Name="opsauto/key-rotation/alice", SecretString=value)["ARN"]
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"alice": secret}))
    with pytest.raises(RotationError, match="refusing to rotate"):
        handler.handler(step_event("createSecret", secret, aws.start_rotation(secret)), lambda_context)
    assert aws.keys("admin") == {}


def test_bad_step_and_unknown_events_are_ignored_not_retried(aws: Any, lambda_context: Any) -> None:
    bad = step_event("rotateEverything", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "t")
    assert handler.handler(bad, lambda_context)["ignored"] is True
    assert handler.handler({"hello": "world"}, lambda_context) == {"ignored": True}


# --------------------------------------------------------------------------- unfinished rotations


def test_key_of_an_abandoned_rotation_is_deleted_by_the_next_one(aws: Any, lambda_context: Any) -> None:
    secret, current = _with_current_key(aws, lambda_context)
    abandoned = aws.start_rotation(secret)
    handler.handler(step_event("createSecret", secret, abandoned), lambda_context)
    orphan = aws.secret_value(secret, "AWSPENDING")["AccessKeyId"]
    assert set(aws.keys("alice")) == {current, orphan}  # both active: without cleanup the next rotation fails

    token = aws.start_rotation(secret)  # Secrets Manager moves AWSPENDING to the new token
    result = handler.handler(step_event("createSecret", secret, token), lambda_context)

    new = aws.secret_value(secret, "AWSPENDING")["AccessKeyId"]
    assert result["outcome"] == "created"
    assert aws.keys("alice") == {current: "Active", new: "Active"}
    report = aws.reports()[-1]
    assert report["metadata"]["eventType"] == "AccessKeyDeleted" and orphan in report["content"]["description"]


def test_retry_after_storing_the_new_key_failed_leaves_no_orphan(aws: Any, lambda_context: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from key_rotation import aws as adapter

    secret, current = _with_current_key(aws, lambda_context)
    token = aws.start_rotation(secret)
    real = adapter.Aws.put_pending

    def failing(self: Any, *args: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "try again"}}, "PutSecretValue")

    monkeypatch.setattr(adapter.Aws, "put_pending", failing)
    with pytest.raises(ClientError):
        handler.handler(step_event("createSecret", secret, token), lambda_context)
    assert len(aws.keys("alice")) == 2  # the key was created, its secret part is lost
    monkeypatch.setattr(adapter.Aws, "put_pending", real)

    run_steps(lambda_context, secret, token)  # Secrets Manager retries the rotation with the same token

    new = aws.secret_value(secret)["AccessKeyId"]
    assert aws.keys("alice") == {current: "Active", new: "Active"}


def test_secret_not_configured_as_managed_is_refused(aws: Any, lambda_context: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    aws.user("alice")
    aws.user("bob")
    managed = aws.managed_secret("alice")
    stranger = aws.managed_secret("bob")
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"alice": managed}))
    with pytest.raises(RotationError, match="not one of this function's managed secrets"):
        handler.handler(step_event("createSecret", stranger, aws.start_rotation(stranger)), lambda_context)
    assert aws.keys("bob") == {}
    run_steps(lambda_context, managed, aws.start_rotation(managed))  # the configured one rotates
    assert len(aws.keys("alice")) == 1


def test_a_key_that_was_ever_current_is_never_taken_for_an_orphan(aws: Any, lambda_context: Any) -> None:
    """An admin rolled AWSCURRENT back to the previous version: the newer key was current once, readers may hold it."""
    aws.user("alice")
    secret = aws.managed_secret("alice")
    run_steps(lambda_context, secret, aws.start_rotation(secret))
    older = aws.secret_value(secret)["AccessKeyId"]
    newer_token = aws.start_rotation(secret)
    run_steps(lambda_context, secret, newer_token)
    newer = aws.secret_value(secret)["AccessKeyId"]
    previous_version = next(v for v, s in aws.stages(secret).items() if "AWSPREVIOUS" in s)
    aws.sm.update_secret_version_stage(SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=previous_version,
                                       RemoveFromVersionId=newer_token)
    assert aws.secret_value(secret)["AccessKeyId"] == older

    with pytest.raises(RotationError, match="already has two access keys"):  # both active: refuse, delete nothing
        handler.handler(step_event("createSecret", secret, aws.start_rotation(secret)), lambda_context)
    assert aws.keys("alice") == {older: "Active", newer: "Active"}


def test_record_of_the_new_key_failing_undoes_the_key(aws: Any, lambda_context: Any) -> None:
    """createSecret made the key, then recording its id on the secret failed: the key (stored nowhere, held by
    nobody) is deleted again, so Secrets Manager's retry finds room instead of two active keys."""
    from tests.lifetime.kit import Fault, FaultInjector

    secret, current = _with_current_key(aws, lambda_context)
    token = aws.start_rotation(secret)
    with FaultInjector() as faults:
        faults.add(Fault("secretsmanager.TagResource", "InternalServiceError", status=500, times=1))
        with faults.active(), pytest.raises(Exception, match="InternalServiceError"):
            handler.handler(step_event("createSecret", secret, token), lambda_context)
    assert aws.keys("alice") == {current: "Active"}

    run_steps(lambda_context, secret, token)  # Secrets Manager retries the rotation with the same token

    assert aws.keys("alice") == {current: "Active", aws.secret_value(secret)["AccessKeyId"]: "Active"}
