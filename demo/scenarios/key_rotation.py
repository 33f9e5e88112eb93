"""key_rotation: a managed user's key rotated through the four Secrets Manager steps, then a report-mode sweep.

moto's RotateSecret would run the rotation Lambda inside moto's Lambda (Docker) or finish the rotation by
itself, so the scenario plays Secrets Manager: it stages an empty ``AWSPENDING`` version under a new token
and enables rotation (what RotateSecret does before it calls the function), then invokes the function
with createSecret, setSecret, testSecret and finishSecret. testSecret really signs STS GetCallerIdentity
with the new key: moto answers with the IAM user that owns it.

For the sweep, "now" is the scheduled event's ``time`` (8 days after the rotation, past the grace
period). moto stamps every key's CreateDate with the real clock, so the other users' keys are backdated
in moto's IAM backend to give them their ages.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from demo.harness import ACCOUNT, DemoContext, DemoFailure

TITLE = "Rotate a managed user's key through the four steps; report-mode sweep over keys of various ages"

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _stage_pending(ctx: DemoContext, secret_arn: str) -> str:
    from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

    token = str(uuid.uuid4())
    secret = secretsmanager_backends[ACCOUNT][ctx.region].secrets[secret_arn]
    assert isinstance(secret, FakeSecret)
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    secret.rotation_requested = True
    secret.rotation_enabled = True
    secret.auto_rotate_after_days = 30
    secret.rotation_lambda_arn = f"arn:aws:lambda:{ctx.region}:{ACCOUNT}:function:opsauto-key_rotation"
    return token


def _backdate(user: str, key_id: str, *, created: datetime, status: str | None = None) -> None:
    from moto.iam.models import iam_backends

    for key in iam_backends[ACCOUNT]["aws"].users[user].access_keys:
        if key.access_key_id == key_id:
            key.create_date = created
            if status:
                key.status = status


def _stages(sm: Any, arn: str) -> str:
    versions = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return ", ".join(f"{v[:8]}…={'+'.join(sorted(s))}" for v, s in versions.items() if s)


def _current(sm: Any, arn: str) -> dict[str, Any]:
    # VersionStage given explicitly: moto 5.2.5's UpdateSecretVersionStage does not move the version that
    # GetSecretValue without a stage returns (real Secrets Manager returns AWSCURRENT).
    return dict(json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]))


def _rotate(ctx: DemoContext, env: dict[str, str], sm: Any, arn: str) -> tuple[str | None, str]:
    before = _current(sm, arn).get("AccessKeyId")
    token = _stage_pending(ctx, arn)
    outcomes = []
    for step in STEPS:
        event = {"Step": step, "SecretId": arn, "ClientRequestToken": token}
        outcomes.append(ctx.invoke("key_rotation", event, env)["outcome"])
    after = str(_current(sm, arn)["AccessKeyId"])
    ctx.say(f"rotation {token[:8]}…: steps {' → '.join(outcomes)}; AWSCURRENT key {before or '(none)'} → {after}")
    ctx.say(f"  version stages: {_stages(sm, arn)}")
    if outcomes != ["created", "skipped", "tested", "finished"]:
        raise DemoFailure(f"unexpected step outcomes {outcomes}")
    return before, after


def run(ctx: DemoContext) -> str:
    iam, sm = ctx.client("iam"), ctx.client("secretsmanager")
    iam.create_user(UserName="ci-deployer")
    arn = sm.create_secret(Name="opsauto/key-rotation/ci-deployer",
                           SecretString=json.dumps({"UserName": "ci-deployer"}))["ARN"]
    owners = ctx.client("sns").create_topic(Name="opsauto-key-rotation-owners")["TopicArn"]
    env = ctx.function_env("key_rotation", MANAGED_SECRETS=json.dumps({"ci-deployer": arn}), MODE="report",
                           OWNER_TOPIC_ARN=owners)
    ctx.say("secret opsauto/key-rotation/ci-deployer starts as {\"UserName\": \"ci-deployer\"} (as the stack makes it)")

    _, first = _rotate(ctx, env, sm, arn)  # the first rotation creates the first key
    previous, current = _rotate(ctx, env, sm, arn)
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]}
    ctx.say(f"ci-deployer keys after two rotations: {keys} (the previous key stays active for the grace period)")
    if previous != first or keys != {previous: "Active", current: "Active"}:
        raise DemoFailure(f"unexpected keys after rotation: {keys}")

    # Other users, keys of various ages (relative to the sweep's time).
    now = (datetime.now(UTC) + timedelta(days=8)).replace(microsecond=0)
    ages = {"fresh-app": (10, "Active"), "legacy-app": (85, "Active"), "old-batch": (95, "Active"),
            "retired-tool": (130, "Inactive"), "break-glass": (200, "Active")}
    for user, (days, status) in ages.items():
        tags = [{"Key": "key-rotation", "Value": "exempt"}] if user == "break-glass" else []
        iam.create_user(UserName=user, Tags=tags)
        key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
        _backdate(user, key_id, created=now - timedelta(days=days), status=status)
    ctx.say("users: " + ", ".join(f"{u} ({d} days, {s.lower()})" for u, (d, s) in ages.items())
            + "; break-glass carries key-rotation=exempt")

    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": ACCOUNT, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": ctx.region,
             "resources": [f"arn:aws:events:{ctx.region}:{ACCOUNT}:rule/opsauto-key-rotation-sweep"], "detail": {}}
    result = ctx.invoke("key_rotation", event, {**env, "EXEMPT_TAG": "key-rotation=exempt"})
    ctx.say(f"sweep at {event['time']} (report mode): {result['users']} users, {result['keys']} keys, "
            f"{result['would_change']} would change, {result['warned']} old, {result['held']} kept")
    sweep_reports = [r for r in ctx.reports() if r["metadata"]["eventType"] == "StaleAccessKeySweep"]
    if len(sweep_reports) != 1:
        raise DemoFailure(f"expected one sweep report, got {len(sweep_reports)}")
    for line in sweep_reports[0]["content"]["description"].splitlines():
        if line.startswith("- "):
            ctx.say("  " + line)
    (ctx.out_dir / "sweep-report.json").write_text(json.dumps(sweep_reports[0], indent=2))
    entries = {e["user"]: e["action"] for e in json.loads(sweep_reports[0]["metadata"]["additionalContext"]["keys"])}
    # ci-deployer: the previous key, grace period over and unused since: retired (part of the rotation).
    # old-batch and retired-tool are due the first time a sweep sees them: announced now, acted on
    # warn_days_before (7) later. break-glass is exempt: reported as what would be done, never announced.
    expected = {"ci-deployer": "deactivate", "legacy-app": "warn", "old-batch": "warn",
                "retired-tool": "warn", "break-glass": "deactivate"}
    if entries != expected:
        raise DemoFailure(f"sweep decisions {entries} != {expected}")
    due = {e["user"]: e.get("dueAction") for e in json.loads(
        sweep_reports[0]["metadata"]["additionalContext"]["keys"]) if e["user"] in ("old-batch", "retired-tool")}
    if due != {"old-batch": "deactivate", "retired-tool": "delete"}:
        raise DemoFailure(f"first-sight keys not announced with their action: {due}")
    untouched = all(k["Status"] == ("Inactive" if u == "retired-tool" else "Active")
                    for u in ages for k in iam.list_access_keys(UserName=u)["AccessKeyMetadata"])
    if not untouched or result["deleted"] or result["deactivated"] != 1:
        raise DemoFailure("report mode changed a key outside the rotation")
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]}
    if keys != {previous: "Inactive", current: "Active"}:
        raise DemoFailure(f"the previous key of ci-deployer was not retired: {keys}")
    ctx.say(f"ci-deployer's previous key {previous} is retired in both modes (it belongs to the rotation)")
    return (f"rotated ci-deployer twice ({previous} → {current}); sweep retired the previous key; report mode "
            "otherwise: 2 keys announced for deactivation/deletion in 7 days, 1 old key warned, exempt 1 reported, "
            "no other key changed")
