"""key_rotation over simulated years: rotation every ``rotation_days``, a daily sweep, people, faults.

The function runs through its real triggers: Secrets Manager's four rotation steps (``rotation_event``;
moto's RotateSecret would need Lambda in Docker, so ``SecretsManagerStandIn`` stages ``AWSPENDING`` under a
token and calls the steps as Secrets Manager does, retrying a failed rotation with the same token) and the
daily EventBridge scheduled event (``LambdaRuntime.invoke_async``: two retries, then an on-failure record).
``SimClock(freeze=True)`` makes moto's IAM timestamps follow the simulation: ``CreateDate`` of a key is
when the simulation created it, and a key's last use (moto's ``AccessKeyLastUsed``, stamped on every
request signed with the key) is when a simulated reader used it.

People between runs: the application reads ``AWSCURRENT`` and signs a call with it most days, one reader
keeps the previous key cached for up to a day after a rotation; ``ci-deployer`` had a key made by hand
before its secret existed (a script uses it for the first days); ``alice`` (not managed, owner tag her email)
works with one key most days and makes a second one by hand that she stops using; ``old-batch`` (owner tag a
chat destination) has a key from long before the automation was deployed, never used; ``svc-report`` has a
100-day-old key a nightly job uses every day (old and in daily use: never deactivated by default).
Halfway through, the operator lowers ``credential_report_users`` below the user count: from then on the sweep
takes last use from the IAM credential report (GenerateCredentialReport / GetCredentialReport), which IAM is
sometimes still generating (``ReportInProgress``).
Faults: on random days one call of a rotation step or of the sweep fails (throttling, 5xx, a new key not yet
valid at STS, the record on the secret not written, the credential report in progress), always inside the
function's invocations.

Short run (``make test``): 75 days per mode (three rotations). Long run (``make lifetime``): 2 years per mode.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from demo.harness import OpsTopicTap
from tests.lifetime.kit import (
    Fault,
    FaultInjector,
    LambdaRuntime,
    SimClock,
    Simulation,
    is_long,
    rotation_event,
    scheduled_event,
)

REGION = "us-east-1"
START = dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC)
ROTATION_DAYS = 30
GRACE_DAYS = 7
UNUSED_DAYS = 30  # deactivate_if_unused_days as shipped
WARN_DAYS_BEFORE = 7  # warn_days_before as shipped
OWNERS = {"alice": "alice@example.com", "old-batch": "batch-team", "svc-report": "reporting-team"}
IN_DAILY_USE = "svc-report"
CREDENTIAL_REPORT_USERS = 3  # what the operator sets halfway: below the simulation's 6 users
MANAGED = ("ci-deployer", "app-reader")
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Faults a rotation step or the sweep may meet (one call, on a random day).
ROTATION_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("iam.CreateAccessKey", {"code": "Throttling", "status": 400, "message": "Rate exceeded"}),
    ("iam.DeleteAccessKey", {"code": "ServiceFailure", "status": 500, "message": "internal"}),
    ("iam.ListAccessKeys", {"code": "Throttling", "status": 400, "message": "Rate exceeded"}),
    ("secretsmanager.PutSecretValue", {"code": "InternalServiceError", "status": 500, "message": "internal"}),
    ("secretsmanager.UpdateSecretVersionStage", {"code": "InternalServiceError", "status": 500,
                                                 "message": "internal"}),
    ("secretsmanager.TagResource", {"code": "InternalServiceError", "status": 500, "message": "internal"}),
    ("secretsmanager.GetSecretValue", {"code": "ThrottlingException", "status": 400, "message": "Rate exceeded"}),
    # A new key not yet valid everywhere: testSecret tries again.
    ("sts.GetCallerIdentity", {"code": "InvalidClientTokenId", "status": 403, "message": "not yet valid"}),
]
SWEEP_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("iam.ListUsers", {"code": "Throttling", "status": 400, "message": "Rate exceeded"}),
    ("iam.UpdateAccessKey", {"code": "ServiceFailure", "status": 500, "message": "internal"}),
    ("iam.TagUser", {"code": "ServiceFailure", "status": 500, "message": "internal"}),
    ("iam.GetAccessKeyLastUsed", {"code": "Throttling", "status": 400, "message": "Rate exceeded"}),
    ("iam.ListUserTags", {"code": "Throttling", "status": 400, "message": "Rate exceeded"}),
]
# Once the sweep reads the credential report: IAM is still generating it (the sweep polls again), or throttles.
REPORT_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("iam.GetCredentialReport", {"code": "ReportInProgress", "status": 404,
                                 "message": "Report generation in progress"}),
    ("iam.GenerateCredentialReport", {"code": "Throttling", "status": 400, "message": "Rate exceeded"}),
]


def _iam_key(user: str, key_id: str) -> Any:
    for key in iam_backends[DEFAULT_ACCOUNT_ID]["aws"].users[user].access_keys:
        if key.access_key_id == key_id:
            return key
    return None


@dataclass
class Rotation:
    """Secrets Manager's state of one secret's rotation schedule."""

    user: str
    secret_arn: str
    due: dt.datetime
    token: str | None = None  # a rotation in progress (AWSPENDING staged under it)
    last_success: dt.datetime | None = None
    attempts: int = 0
    failures: list[str] = field(default_factory=list)


class SecretsManagerStandIn:
    """What Secrets Manager does around a rotation function: stage AWSPENDING, call the four steps, retry."""

    def __init__(self, runtime: LambdaRuntime, faults: FaultInjector, clock: SimClock, sim: Simulation) -> None:
        self.runtime, self.faults, self.clock, self.sim = runtime, faults, clock, sim
        self.rotations: dict[str, Rotation] = {}

    def add(self, user: str, secret_arn: str) -> None:
        # CloudFormation's rotation schedule rotates right after the secret is created.
        self.rotations[user] = Rotation(user, secret_arn, due=self.clock.now)

    def _secret(self, arn: str) -> Any:
        return secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[arn]

    def _stage_pending(self, rotation: Rotation) -> str:
        if rotation.token is not None:
            return rotation.token  # the same token again: Secrets Manager retries the rotation in progress
        token = str(uuid.uuid4())
        secret = self._secret(rotation.secret_arn)
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {"createdate": int(time.time()), "version_id": token,
                                  "version_stages": ["AWSPENDING"]}
        secret.rotation_requested = True
        secret.rotation_enabled = True
        secret.auto_rotate_after_days = ROTATION_DAYS
        secret.rotation_lambda_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:opsauto-key-rotation"
        rotation.token = token
        return token

    def rotate_due(self) -> None:
        for rotation in self.rotations.values():
            if self.clock.now >= rotation.due:
                self._rotate(rotation)

    def _rotate(self, rotation: Rotation) -> None:
        token = self._stage_pending(rotation)
        rotation.attempts += 1
        with self.faults.active():
            for step in STEPS:
                try:
                    self.runtime.invoke(rotation_event(rotation.secret_arn, token, step))
                except Exception as exc:  # the rotation failed: AWSCURRENT stays; retried (same token)
                    rotation.failures.append(f"{self.clock.iso()} {step}: {exc}")
                    self.sim.note(f"rotation of {rotation.user} failed at {step}: {exc}")
                    rotation.due = self.clock.now + dt.timedelta(hours=6)
                    return
        secret = self._secret(rotation.secret_arn)
        stages = secret.versions[token]["version_stages"]
        if "AWSPENDING" in stages:
            stages.remove("AWSPENDING")
        rotation.token = None
        rotation.last_success = self.clock.now
        rotation.due = self.clock.now + dt.timedelta(days=ROTATION_DAYS)
        self.sim.note(f"rotated {rotation.user}")


@dataclass
class People:
    """The readers of the keys and the people who make keys by hand."""

    iam: Any
    sm: Any
    sim: Simulation
    secrets: dict[str, str]
    outages: list[str] = field(default_factory=list)
    hand_keys: dict[str, str] = field(default_factory=dict)  # key id -> user (made by a person)
    secret_keys: dict[str, str] = field(default_factory=dict)  # key id -> secret access key, for signing
    alice_second_from: int = 0
    alice_second_until: int = 0
    cached_previous: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)  # user -> (key, until)
    deleted: set[str] = field(default_factory=set)  # keys a person deleted

    def use(self, user: str, key_id: str, who: str) -> None:
        """Sign a call with the key, as a reader would; an inactive or deleted key is an outage."""
        key = _iam_key(user, key_id)
        if key is None or key.status != "Active":
            self.outages.append(f"{self.sim.clock.iso()} {who} could not use {user}'s key {key_id} "
                                f"({'deleted' if key is None else key.status})")
            return
        sts = boto3.client("sts", region_name=REGION, aws_access_key_id=key_id,
                           aws_secret_access_key=self.secret_keys.get(key_id, key.secret_access_key))
        sts.get_caller_identity()  # moto stamps the key's last use with the (frozen) clock

    def make_key(self, user: str) -> str:
        created = self.iam.create_access_key(UserName=user)["AccessKey"]
        self.hand_keys[created["AccessKeyId"]] = user
        self.secret_keys[created["AccessKeyId"]] = created["SecretAccessKey"]
        self.sim.note(f"a person made key {created['AccessKeyId']} for {user} by hand")
        return str(created["AccessKeyId"])

    def current(self, user: str) -> dict[str, Any]:
        """What a reader gets: GetSecretValue of AWSCURRENT."""
        response = self.sm.get_secret_value(SecretId=self.secrets[user], VersionStage="AWSCURRENT")
        return dict(json.loads(response["SecretString"]))

    def act(self, day: int) -> None:
        rng = self.sim.rng
        for user in MANAGED:
            value = self.current(user)
            if "AccessKeyId" in value and rng.random() < 0.8:  # the application reads AWSCURRENT and calls
                self.use(user, value["AccessKeyId"], "the application")
            cached = self.cached_previous.get(user)
            if cached and self.sim.clock.now < cached[1] and rng.random() < 0.7:
                self.use(user, cached[0], "a reader with a cached key")
        if day < 3:
            legacy = next(k for k, u in self.hand_keys.items() if u == "ci-deployer")
            self.use("ci-deployer", legacy, "the old deploy script")
        nightly = next(k for k, u in self.hand_keys.items() if u == IN_DAILY_USE)
        self.use(IN_DAILY_USE, nightly, "the nightly report job")
        self._alice(day)

    def _alice(self, day: int) -> None:
        keys = {k["AccessKeyId"]: k["Status"] for k in self.iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]}
        active = [k for k, status in keys.items() if status == "Active"]
        if not active:  # her key was switched off: she makes a new one (deleting an inactive one for room)
            if len(keys) >= 2:
                doomed = sorted(keys)[0]
                self.iam.delete_access_key(UserName="alice", AccessKeyId=doomed)
                self.deleted.add(doomed)
                self.sim.note(f"alice deleted her inactive key {doomed} by hand")
            self.make_key("alice")
            return
        first = min(active, key=lambda k: _iam_key("alice", k).create_date)
        if self.sim.rng.random() < 0.9:
            self.use("alice", first, "alice")
        if day == self.alice_second_from and len(keys) < 2:
            self.make_key("alice")
        second = [k for k in active if k != first]
        if second and self.alice_second_from <= day < self.alice_second_until and self.sim.rng.random() < 0.5:
            self.use("alice", second[0], "alice (second key)")


def _backend_keys() -> dict[str, tuple[str, str]]:
    """Every access key (id -> (user, status)), read from moto's IAM backend (the invariants' view, no API calls)."""
    users = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].users
    return {key.access_key_id: (name, key.status) for name, user in users.items() for key in user.access_keys}


def _secret_values(arn: str) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Every version of a secret: id -> (stages, value), from moto's Secrets Manager backend."""
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[arn]
    return {vid: (list(v.get("version_stages", [])), json.loads(v["secret_string"]) if v.get("secret_string")
                  else {}) for vid, v in secret.versions.items()}


def _current_value(arn: str) -> dict[str, Any]:
    return next((value for stages, value in _secret_values(arn).values() if "AWSCURRENT" in stages), {})


class Observer:
    """What the invariants compare between checks: every key seen, its status, since when it is inactive."""

    def __init__(self, secrets: dict[str, str], people: People) -> None:
        self.secrets, self.people = secrets, people
        self.seen: dict[str, tuple[str, str]] = {}  # key id -> (user, status at the last check)
        self.inactive_since: dict[str, dt.datetime] = {}
        self.exposed: set[str] = set()  # keys someone could hold: stored in a secret version, or made by hand
        self.violations: list[str] = []

    def observe(self, now: dt.datetime, grace: dt.timedelta) -> None:
        for arn in self.secrets.values():
            self.exposed.update(str(value["AccessKeyId"]) for _, value in _secret_values(arn).values()
                                if value.get("AccessKeyId"))
        self.exposed.update(self.people.hand_keys)
        now_keys = _backend_keys()
        for key_id, (_, status) in now_keys.items():
            if status == "Inactive":
                self.inactive_since.setdefault(key_id, now)
            else:
                self.inactive_since.pop(key_id, None)
        for key_id, (user, status) in self.seen.items():
            if key_id in now_keys or key_id in self.people.deleted:
                continue
            if key_id in self.exposed and status == "Active":
                self.violations.append(f"active key {key_id} of {user} was deleted")
            since = self.inactive_since.get(key_id)
            if since is not None and now - since < grace:
                self.violations.append(f"key {key_id} of {user} deleted {now - since} after it was deactivated "
                                       f"(grace {grace})")
        self.seen = now_keys


def _entries(messages: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    """The per-key entries (``additionalContext.keys``) of the messages of one event type."""
    return [entry for message in messages if message["metadata"].get("eventType") == event_type
            for entry in json.loads(message["metadata"]["additionalContext"]["keys"])]


# A warning's last use, with the service that used the key. The credential report carries the service too on
# AWS (access_key_1_last_used_service); moto writes "not_supported" there, so on that path only the time is checked.
LAST_USE = {"GetAccessKeyLastUsed": re.compile(r"in use, last used \d{4}-\d\d-\d\d \d\d:\d\dZ \(\w+\)"),
            "credential report": re.compile(r"in use, last used \d{4}-\d\d-\d\d \d\d:\d\dZ")}


class Announcements:
    """What the sweep said ahead of each change it made, read from its reports and from the owner notices.

    For every (where, key, action) - where is the ops report or the owner's notice - since when consecutive
    sweeps have announced that the key will be deactivated or deleted (an entry's ``dueAction``); at each change
    a sweep carried out, how long before it was announced there. A key first seen by a sweep already past its
    due date (``old-batch``: 200 days old and never used when the automation arrives) is no exception: it is
    announced by that sweep and acted on ``warn_days_before`` later (``acted_at_first_sight`` stays empty).
    """

    def __init__(self) -> None:
        self.since: dict[tuple[str, str, str], dt.datetime] = {}
        self.swept: set[str] = set()  # keys that existed at an earlier sweep
        self.changes = 0
        self.acted_at_first_sight: list[str] = []
        self.owner_notices = 0
        self.in_use_warnings = 0
        self.violations: list[str] = []

    def sweep(self, now: dt.datetime, ops: list[dict[str, Any]], owners: list[dict[str, Any]], source: str) -> None:
        report = _entries(ops, "StaleAccessKeySweep")
        notices = _entries(owners, "AccessKeyOwnerNotice")
        self.owner_notices += sum(1 for m in owners if m["metadata"].get("eventType") == "AccessKeyOwnerNotice")
        for entry in report:
            if entry["done"] and entry["action"] in ("deactivate", "delete") and entry["user"] not in MANAGED:
                self._change(now, entry)
        for where, entries in (("report", report), ("owner", notices)):
            announced = {(where, e["accessKeyId"], e["dueAction"]) for e in entries if e.get("dueAction")}
            self.since = {k: v for k, v in self.since.items() if k[0] != where or k in announced}
            for item in announced:
                self.since.setdefault(item, now)
        self._in_use(report, ops, LAST_USE[source])
        self.swept.update(_backend_keys())

    def _change(self, now: dt.datetime, entry: dict[str, Any]) -> None:
        self.changes += 1
        key_id, action, user = entry["accessKeyId"], entry["action"], entry["user"]
        if key_id not in self.swept:
            self.acted_at_first_sight.append(f"{now:%Y-%m-%d} {action} {user} {key_id}")
            self.violations.append(f"{action} of {user}'s key {key_id} by the first sweep that saw it, unannounced")
            return
        ahead = dt.timedelta(days=WARN_DAYS_BEFORE) - dt.timedelta(hours=1)
        for where in ("report", "owner") if user in OWNERS else ("report",):
            since = self.since.get((where, key_id, action))
            if since is None or now - since < ahead:
                self.violations.append(
                    f"{action} of {user}'s key {key_id} announced in the {where} "
                    f"{'never' if since is None else f'only since {since:%Y-%m-%d %H:%M}'} "
                    f"(warn_days_before {WARN_DAYS_BEFORE})")
        if action == "deactivate":  # the default policy: never a key used within deactivate_if_unused_days
            key = _iam_key(user, key_id)
            last = key.last_used.timestamp if key is not None and key.last_used is not None else None
            if last is not None and now.replace(tzinfo=None) - last.replace(tzinfo=None) < dt.timedelta(
                    days=UNUSED_DAYS):
                self.violations.append(f"{user}'s key {key_id} deactivated though used {last:%Y-%m-%d %H:%M}")

    def _in_use(self, report: list[dict[str, Any]], ops: list[dict[str, Any]], last_use: re.Pattern[str]) -> None:
        """The old key in daily use: warned about in every sweep report, with its last use and service."""
        key_id = next(k for k, (u, _) in _backend_keys().items() if u == IN_DAILY_USE)
        lines = [line for m in ops if m["metadata"].get("eventType") == "StaleAccessKeySweep"
                 for line in m["content"]["description"].splitlines() if key_id in line]
        if not any(e["accessKeyId"] == key_id and e["action"] == "warn" for e in report) or not any(
                last_use.search(line) for line in lines):
            self.violations.append(f"the sweep report does not warn about {IN_DAILY_USE}'s key {key_id} in daily use "
                                   f"with its last use: {lines}")
        else:
            self.in_use_warnings += 1


@pytest.mark.parametrize("mode", ["report", "enforce"])
def test_key_rotation_lifetime(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    days = 730 if is_long() else 75
    seed = 12 if mode == "report" else 21
    started = time.perf_counter()
    from shared.observability import logger

    level = logger.log_level
    logger.setLevel("CRITICAL")  # simulated years of log lines nobody reads; failures are in the step log
    clock = SimClock(START, freeze=True)
    try:
        with mock_aws(), FaultInjector(clock) as faults:
            summary = _run(mode, days, seed, clock, faults, monkeypatch)
    finally:
        clock.stop()
        logger.setLevel(level)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nkey_rotation lifetime ({mode}): {json.dumps(summary)}")


def _env(monkeypatch: pytest.MonkeyPatch, mode: str, topic_arn: str, secrets: dict[str, str]) -> OpsTopicTap:
    """The function's environment as the stack sets it: the shipped settings (but ``mode``) + the stack's.
    Returns the owner topic (read back like the ops topic)."""
    from stacks.settings.key_rotation import KeyRotationSettings

    settings = KeyRotationSettings(mode=mode, managed_users=[{"user_name": u} for u in MANAGED])
    assert settings.grace_days == GRACE_DAYS and all(u.rotation_days == ROTATION_DAYS for u in settings.managed_users)
    assert (settings.deactivate_if_unused_days, settings.deactivate_in_use, settings.warn_days_before,
            settings.owner_tag) == (UNUSED_DAYS, False, WARN_DAYS_BEFORE, "Owner")
    assert settings.credential_report_users > len(OWNERS) + len(MANAGED)  # as shipped: per-key last use at first
    for name, value in settings.function_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps(secrets))
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic_arn)
    owners = OpsTopicTap(REGION, name="opsauto-key-owners")
    monkeypatch.setenv("OWNER_TOPIC_ARN", owners.topic_arn)
    return owners


def _note_sweep(sim: Simulation, run: Any, messages: list[dict[str, Any]]) -> None:
    """The sweep's outcome and its decisions on managed users' keys, in the step log (read on a failure)."""
    if run.error is not None:
        sim.note(f"sweep failed after Lambda's retries: {run.error}")
        return
    counts = {k: v for k, v in run.result.items() if k in ("deactivated", "deleted", "held", "would_change",
                                                            "lastUseFrom")}
    lines = [line for message in messages for line in message["content"]["description"].splitlines()
             if "[managed]" in line and "**" in line]
    sim.note(f"sweep: {counts}" + "".join(f"\n    {line[:220]}" for line in lines))


def _run(  # noqa: C901  the step loop of one lifetime: each branch is one kind of daily event, kept in order
    mode: str, days: int, seed: int, clock: SimClock, faults: FaultInjector,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    tap = OpsTopicTap(REGION)
    iam = boto3.client("iam", region_name=REGION)
    sm = boto3.client("secretsmanager", region_name=REGION)
    for user in (*MANAGED, *OWNERS):
        iam.create_user(UserName=user, Tags=[{"Key": "Owner", "Value": OWNERS[user]}] if user in OWNERS else [])
    secrets = {user: str(sm.create_secret(Name=f"opsauto/key-rotation/{user}",
                                          SecretString=json.dumps({"UserName": user}))["ARN"])
               for user in MANAGED}
    owner_tap = _env(monkeypatch, mode, tap.topic_arn, secrets)
    from key_rotation import handler

    monkeypatch.setattr(handler, "SLEEP", lambda seconds: None)
    runtime = LambdaRuntime(handler.handler, function_name="opsauto-key-rotation")
    sim = Simulation(seed=seed, clock=clock)
    people = People(iam, sm, sim, secrets)
    people.alice_second_from = sim.rng.randrange(5, 40)
    people.alice_second_until = people.alice_second_from + sim.rng.randrange(1, 20)
    people.make_key("ci-deployer")  # made by hand before the secret existed; a script uses it for 3 days
    people.make_key("alice")
    old = people.make_key("old-batch")
    _iam_key("old-batch", old).create_date = (START - dt.timedelta(days=200)).replace(tzinfo=None)
    nightly = people.make_key(IN_DAILY_USE)
    _iam_key(IN_DAILY_USE, nightly).create_date = (START - dt.timedelta(days=100)).replace(tzinfo=None)
    people.use(IN_DAILY_USE, nightly, "the nightly report job")
    secrets_manager = SecretsManagerStandIn(runtime, faults, clock, sim)
    for user, arn in secrets.items():
        secrets_manager.add(user, arn)
    observer = Observer(secrets, people)
    verified: set[str] = set()  # AWSCURRENT keys STS already accepted
    grace = dt.timedelta(days=GRACE_DAYS)
    faults_added: list[str] = []
    watch = Announcements()
    report_from = days // 2  # the day the operator lowers credential_report_users
    last_use_from: list[tuple[int, str]] = []  # (day, where the sweep took last use from)

    @sim.invariant("AWSCURRENT always holds a working key")
    def _current_works() -> list[str]:
        problems = []
        for user in MANAGED:
            if secrets_manager.rotations[user].last_success is None:
                continue
            value = _current_value(secrets[user])
            key = _iam_key(user, value.get("AccessKeyId", ""))
            if key is None or key.status != "Active" or key.secret_access_key != value.get("SecretAccessKey"):
                problems.append(f"AWSCURRENT of {user} holds key {value.get('AccessKeyId')}: "
                                f"{'deleted' if key is None else key.status + ' or a wrong secret'}")
                continue
            if key.access_key_id not in verified:  # a new current key: sign a call with it
                sts = boto3.client("sts", region_name=REGION, aws_access_key_id=value["AccessKeyId"],
                                   aws_secret_access_key=value["SecretAccessKey"])
                arn = sts.get_caller_identity()["Arn"]
                if not arn.endswith(f":user/{user}"):
                    problems.append(f"AWSCURRENT of {user} signs in as {arn}")
                verified.add(key.access_key_id)
        return problems + [o for o in people.outages if "application" in o]

    @sim.invariant("rotations keep succeeding with the settings as shipped")
    def _rotations_succeed() -> list[str]:
        late = []
        for rotation in secrets_manager.rotations.values():
            last = rotation.last_success or START
            if clock.now - last > dt.timedelta(days=ROTATION_DAYS + GRACE_DAYS):
                late.append(f"{rotation.user}: no successful rotation since {last:%Y-%m-%d}; last failures: "
                            f"{rotation.failures[-3:]}")
        return late

    @sim.invariant("an active key is never deleted; never deleted within grace_days of being deactivated")
    def _deletions() -> list[str]:
        observer.observe(clock.now, grace)
        found, observer.violations = observer.violations, []
        return found

    @sim.invariant("an old key in daily use is never deactivated by default; every sweep report warns about it "
                   "with its last use and service")
    def _in_daily_use() -> list[str]:
        statuses = {status for key_id, (user, status) in _backend_keys().items() if user == IN_DAILY_USE}
        return [] if statuses == {"Active"} else [f"{IN_DAILY_USE}'s key is {statuses}"]

    @sim.invariant("every deactivation and deletion is announced warn_days_before ahead in the sweep report and in "
                   "the owner's notice; none deactivates a key used within deactivate_if_unused_days")
    def _announced() -> list[str]:
        found, watch.violations = watch.violations, []
        return found

    @sim.invariant("above credential_report_users users last use comes from the credential report, below it from "
                   "GetAccessKeyLastUsed")
    def _last_use_source() -> list[str]:
        return [f"day {d}: last use from {source}" for d, source in last_use_from[-1:]
                if source != ("credential report" if d >= report_from else "GetAccessKeyLastUsed")]

    @sim.invariant("no sweep is lost (every scheduled event succeeds within Lambda's retries)")
    def _nothing_lost() -> list[str]:
        return [f"on-failure record: {f.error_type}: {f.payload['responsePayload']['errorMessage']}"
                for f in runtime.failures]

    if mode == "report":
        baseline: dict[str, str] = {}

        @sim.invariant("report mode changes no key outside the managed users")
        def _report_only() -> list[str]:
            problems = []
            for key_id, (user, status) in _backend_keys().items():
                if user in MANAGED:
                    continue
                before = baseline.setdefault(key_id, status)
                if before != status:
                    problems.append(f"{user}'s key {key_id}: {before} -> {status}")
            return problems

    # Scripted: the record of the second rotation on the secret is not written once (stale tags), and the
    # sweep runs before Secrets Manager retries.
    second = START + dt.timedelta(days=ROTATION_DAYS)
    faults.add(Fault("secretsmanager.TagResource", "InternalServiceError", status=500, times=1,
                     start=second, end=second + dt.timedelta(days=1),
                     when=lambda p: any(t.get("Key") == "KeyRotation:CurrentKeyId" for t in p.get("Tags", []))))
    faults_added.append("secretsmanager.TagResource (finishSecret record, day 30)")

    def sweep(day: int) -> Any:
        run = runtime.invoke_async(scheduled_event(clock.now))
        ops, owners = tap.messages(), owner_tap.messages()
        _note_sweep(sim, run, ops)
        if run.error is None:
            last_use_from.append((day, run.result["lastUseFrom"]))
            watch.sweep(clock.now, ops, owners, run.result["lastUseFrom"])
        return run

    for day in range(days):
        day_start = START + dt.timedelta(days=day)
        if day == report_from:  # the operator lowers the threshold: last use from the credential report
            monkeypatch.setenv("CREDENTIAL_REPORT_USERS", str(CREDENTIAL_REPORT_USERS))
            sim.note(f"the operator sets credential_report_users to {CREDENTIAL_REPORT_USERS}")
        if day > 0 and sim.rng.random() < 0.25:  # a sweep call fails once (Lambda retries the invocation)
            operation, error = sim.rng.choice(SWEEP_FAULTS + (REPORT_FAULTS if day >= report_from else []))
            times = sim.rng.randint(1, 3) if error["code"] == "ReportInProgress" else 1
            faults.add(Fault(operation, times=times, start=day_start, end=day_start + dt.timedelta(hours=4),
                             **error))
            faults_added.append(f"day {day}: {operation} {error['code']} x{times}")
        clock.set(day_start + dt.timedelta(hours=3))
        with faults.active():
            sim.step(f"day {day}: sweep", lambda d=day: sweep(d))
        for hour in (4, 16):  # rotations due, then Secrets Manager's retry of a failed one
            clock.set(day_start + dt.timedelta(hours=hour))
            due = [r for r in secrets_manager.rotations.values() if clock.now >= r.due]
            if not due:
                continue
            if day > 0 and sim.rng.random() < 0.4:  # one call of a rotation step fails
                operation, error = sim.rng.choice(ROTATION_FAULTS)
                faults.add(Fault(operation, times=1, start=clock.now, end=clock.now + dt.timedelta(hours=1),
                                 **error))
                faults_added.append(f"day {day} {hour}:00: {operation} {error['code']}")
            before = {u: _current_value(secrets[u]).get("AccessKeyId") for u in MANAGED}
            sim.step(f"day {day}: rotations due at {hour}:00", secrets_manager.rotate_due)
            for user in MANAGED:
                after = _current_value(secrets[user]).get("AccessKeyId")
                if before[user] and after != before[user] and sim.rng.random() < 0.5:
                    people.cached_previous[user] = (before[user], clock.now + dt.timedelta(days=1))
        clock.set(day_start + dt.timedelta(hours=10))
        sim.step(f"day {day}: people use keys", lambda d=day: people.act(d))

    rotations = {u: r.attempts for u, r in secrets_manager.rotations.items()}
    failed = sum(len(r.failures) for r in secrets_manager.rotations.values())
    assert all(r.last_success for r in secrets_manager.rotations.values())
    assert watch.in_use_warnings == len(last_use_from)  # every successful sweep warned about the key in daily use
    assert sum(1 for d, source in last_use_from if source == "credential report") >= days - report_from - 1
    return {**sim.summary(), "mode": mode, "simulated_days": days, "rotation_attempts": rotations,
            "failed_rotation_attempts": failed, "faults": len(faults_added),
            "faulted_calls": sum(1 for c in faults.calls if c.fault), "invariants": len(sim.invariants),
            "sweep_changes_checked": watch.changes, "acted_at_first_sight": watch.acted_at_first_sight,
            "owner_notices": watch.owner_notices, "in_use_warnings": watch.in_use_warnings,
            "credential_report_sweeps": sum(1 for _, source in last_use_from if source == "credential report"),
            "report_in_progress_faults": sum(1 for c in faults.calls if c.fault and
                                             c.operation == "GetCredentialReport")}
