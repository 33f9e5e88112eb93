"""Orchestration: the rotation steps and the sweep, from decisions to adapter calls to outcomes.

AWS is reached only through the adapter it is given (``aws.Aws`` in Lambda, the same against moto in the
tests); decisions are the pure ``rotation`` and ``policy`` functions; reports are built by ``report``.
``rotate`` and ``sweep`` are what the handler calls: they log, count (metrics) and publish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from key_rotation import policy, report
from key_rotation.config import TEST_ATTEMPTS, TEST_DELAY_SECONDS, Config
from key_rotation.credentials import LastUse, key_slot, parse_credential_report
from key_rotation.policy import Action, Decision, KeyFacts, Managed, Plan, deactivation_tag, deactivations
from key_rotation.rotation import (
    CURRENT,
    PENDING,
    TAG_CURRENT_KEY,
    TAG_CURRENT_SINCE,
    TAG_PENDING_KEY,
    TAG_PREVIOUS_KEY,
    AccessKey,
    BadRotationEvent,
    Identity,
    NewKey,
    RotationError,
    RotationEvent,
    SecretState,
    StepResult,
    current_since,
    key_to_make_room,
    precise,
    user_matches,
)
from shared.fanout import Result, RunSummary, TargetWork, summary_report
from shared.names import is_email
from shared.observability import MetricUnit, logger, metrics
from shared.reports import ActionReport, ReportPublisher
from shared.timeutil import event_time, iso, utcnow

# --------------------------------------------------------------------------- rotation steps


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




class Rotator:
    """Runs one rotation step. ``expected_users`` maps secret ARN or name -> the user it must hold."""

    def __init__(
        self,
        adapter: RotationAdapter,
        *,
        expected_users: Mapping[str, str] | None = None,
        clock: Callable[[], datetime],
        test_attempts: int,
        test_delay_seconds: float,
        sleep: Callable[[float], None],
        grace_days: int,
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
        try:
            self._aws.tag_secret(event.secret_id, {TAG_PENDING_KEY: new.key_id})
        except Exception:
            # Not recorded: the retry could not tell this key from one a person made. It is stored nowhere and
            # nobody holds it, so it goes now (the step still fails and is retried).
            self._undo_new_key(user, new.key_id)
            raise
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

    def _undo_new_key(self, user: str, key_id: str) -> None:
        try:
            self._aws.delete_key(user, key_id)
        except Exception:  # the original failure is what Secrets Manager must see; this one is logged
            logger.exception("could not delete the unrecorded new key", extra={"user": user, "accessKeyId": key_id})

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


# --------------------------------------------------------------------------- the sweep


class SweepAdapter(Protocol):
    def iter_users(self) -> Iterator[Mapping[str, object]]: ...
    def list_keys(self, user_name: str) -> list[AccessKey]: ...
    def last_used(self, key_id: str) -> LastUse: ...
    def credential_report(self) -> str: ...
    def user_tags(self, user_name: str) -> dict[str, str]: ...
    def group_members(self, group_name: str) -> set[str]: ...
    def secret_state(self, secret_id: str) -> SecretState: ...
    def deactivate_key(self, user_name: str, key_id: str) -> None: ...
    def delete_key(self, user_name: str, key_id: str) -> None: ...
    def tag_user(self, user_name: str, tags: dict[str, str]) -> None: ...
    def untag_user(self, user_name: str, keys: list[str]) -> None: ...
    def email_subscribers(self, topic_arn: str) -> set[str]: ...
    def subscribe_owner(self, topic_arn: str, email: str) -> None: ...
    def publish_owner(self, topic_arn: str, owner: str, report: ActionReport) -> str: ...


@dataclass
class SweepResult:
    plan: Plan
    done: list[Decision]
    users: int
    keys: int
    notes: list[str]
    last_use_source: str = "GetAccessKeyLastUsed"

    def counts(self) -> dict[str, int]:
        done_ids = {d.key.key_id for d in self.done}
        return {
            "users": self.users,
            "keys": self.keys,
            "warned": self.plan.count(Action.WARN),
            "held": self.plan.count(Action.HOLD),
            "deactivated": sum(1 for d in self.done if d.action is Action.DEACTIVATE),
            "deleted": sum(1 for d in self.done if d.action is Action.DELETE),
            "would_change": sum(1 for d in self.plan.decisions if d.is_change and d.key.key_id not in done_ids),
        }


def _managed(aws: SweepAdapter, config: Config, notes: list[str]) -> dict[str, Managed]:
    """Each managed user's AWSCURRENT / AWSPENDING key, read from the secret itself (its tags only say since when)."""
    managed: dict[str, Managed] = {}
    for user, secret in config.managed_secrets.items():
        try:
            state = aws.secret_state(secret)
        except LookupError as exc:
            notes.append(f"{exc}: keys of {user} are left alone")
            managed[user] = Managed(secret)
            continue
        recorded_key, since = current_since(state.tags)
        if state.current_key_id and recorded_key != state.current_key_id:
            notes.append(f"the rotation record on {secret} names key {recorded_key or '(none)'}, its AWSCURRENT "
                         f"holds {state.current_key_id}: the other keys of {user} are kept until a rotation step "
                         "records it again")
            since = None
        managed[user] = Managed(secret, state.current_key_id, since, state.pending_key_id)
    return managed


class _LastUse:
    """Last use of each key: from one IAM credential report above ``credential_report_users`` users, else one
    GetAccessKeyLastUsed per key (also for a key the report does not list yet)."""

    def __init__(self, aws: SweepAdapter, users: int, threshold: int) -> None:
        self._aws = aws
        self.report = parse_credential_report(aws.credential_report()) if users > threshold else None

    def __call__(self, user: str, key: AccessKey) -> LastUse:
        found = self.report.get(key_slot(user, key.created)) if self.report is not None else None
        return found if found is not None else self._aws.last_used(key.key_id)


def _exempt_members(aws: SweepAdapter, config: Config, notes: list[str]) -> set[str]:
    if not config.exempt_group:
        return set()
    try:
        return aws.group_members(config.exempt_group)
    except LookupError as exc:
        notes.append(f"{exc}: no user is exempt by group")
        return set()


def run_sweep(aws: SweepAdapter, config: Config, now: datetime) -> SweepResult:
    """Gather every user's keys, decide (``policy``), carry out what the plan allows."""
    notes: list[str] = []
    managed = _managed(aws, config, notes)
    exempt_members = _exempt_members(aws, config, notes)
    users = list(aws.iter_users())
    last_use = _LastUse(aws, len(users), config.credential_report_users)
    decisions: list[Decision] = []
    for iam_user in users:
        name = str(iam_user["UserName"])
        keys = aws.list_keys(name)
        if not keys:
            continue
        tags = aws.user_tags(name)
        records, warned = policy.deactivations(tags), policy.warnings(tags)
        exempt = name in exempt_members or (
            config.exempt_tag is not None and tags.get(config.exempt_tag[0]) == config.exempt_tag[1])
        owner = tags.get(config.owner_tag) if config.owner_tag else None
        for key in keys:
            used = last_use(name, key)
            facts = KeyFacts(name, str(iam_user.get("Arn", name)), key.key_id, key.status, key.created, used.at,
                             records.get(key.key_id), used.service, owner or None, warned.get(key.key_id))
            decisions.append(
                policy.decide(facts, now=now, thresholds=config.thresholds, managed=managed.get(name), exempt=exempt)
            )
    plan = policy.plan(decisions, mode=config.mode, max_changes=config.max_changes)
    if config.mode == "enforce":  # the record that starts the wait before the action (report mode writes nothing)
        for decision in plan.reportable:
            if decision.announce:
                aws.tag_user(decision.key.user_name, {policy.warning_tag(decision.key.key_id): precise(now)})
    done: list[Decision] = []
    for decision in plan.execute:
        _carry_out(aws, decision, now)
        done.append(decision)
    source = "credential report" if last_use.report is not None else "GetAccessKeyLastUsed"
    return SweepResult(plan, done, len(users), len(decisions), notes, source)


def notify_owners(aws: SweepAdapter, config: Config, result: SweepResult, now: datetime, *,
                  account: str = "", account_label: str = "") -> int:
    """One notice per owner (the ``owner_tag`` of the user) whose keys need a word, on the owner topic with the
    message attribute ``owner``; an email owner gets a subscription filtered to it. Returns notices sent.
    ``account`` / ``account_label`` name the users' account in the notice (organization-wide sweeps)."""
    by_owner: dict[str, list[Decision]] = {}
    for decision in result.plan.reportable:
        if decision.key.owner:
            by_owner.setdefault(decision.key.owner, []).append(decision)
    if not by_owner:
        return 0
    subscribed = aws.email_subscribers(config.owner_topic_arn)
    for owner, decisions in sorted(by_owner.items()):
        if is_email(owner) and owner.lower() not in subscribed:
            aws.subscribe_owner(config.owner_topic_arn, owner)
        aws.publish_owner(config.owner_topic_arn, owner,
                          report.owner_report(owner, decisions, result, now, account=account,
                                              account_label=account_label))
    return len(by_owner)


def _carry_out(aws: SweepAdapter, decision: Decision, now: datetime) -> None:
    user, key_id = decision.key.user_name, decision.key.key_id
    if decision.action is Action.DEACTIVATE:
        # The record first: a key switched off without it could be taken for one someone else deactivated.
        aws.tag_user(user, {policy.deactivation_tag(key_id): precise(now)})
        aws.deactivate_key(user, key_id)
    elif decision.action is Action.DELETE:
        aws.delete_key(user, key_id)
        records = [policy.deactivation_tag(key_id)] if decision.key.deactivated_at is not None else []
        records += [policy.warning_tag(key_id)] if decision.key.warned_at is not None else []
        if records:
            aws.untag_user(user, records)


# --------------------------------------------------------------------------- what the handler calls


def ignore(event: Any) -> dict[str, Any]:
    """Neither a rotation step nor a scheduled event: a warning, a count, no retry."""
    logger.warning("ignored event: neither a rotation step nor a scheduled event",
                   extra={"reason": "unknown event shape",
                          "keys": sorted(event)[:20] if isinstance(event, dict) else type(event).__name__})
    metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
    return {"ignored": True}


def rotate(event: Mapping[str, Any], config: Config, adapter: RotationAdapter, publisher: ReportPublisher, *,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """One rotation step; a failing step raises so Secrets Manager marks the rotation failed."""
    try:
        parsed = RotationEvent.parse(event)
    except BadRotationEvent as exc:
        logger.warning("ignored rotation event", extra={"reason": str(exc)})
        metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
        return {"ignored": True, "reason": str(exc)}
    expected = {secret: user for user, secret in config.managed_secrets.items()}
    rotator = Rotator(adapter, expected_users=expected, clock=utcnow, test_attempts=TEST_ATTEMPTS,
                      test_delay_seconds=TEST_DELAY_SECONDS, sleep=sleep, grace_days=config.thresholds.grace_days)
    log = {"step": parsed.step, "secretId": parsed.secret_id, "token": parsed.token}
    try:
        result = rotator.run(parsed)
    except RotationError as exc:
        logger.error("rotation step failed", extra={**log, "reason": str(exc)})
        metrics.add_metric(name="RotationFailures", unit=MetricUnit.Count, value=1)
        raise
    except Exception:  # transient (throttling, 5xx): Secrets Manager retries the rotation
        logger.exception("rotation step failed on an AWS error", extra=log)
        metrics.add_metric(name="RotationFailures", unit=MetricUnit.Count, value=1)
        raise
    logger.info("rotation step done", extra={**log, "outcome": result.outcome, "detail": result.detail})
    metrics.add_metric(name="RotationSteps", unit=MetricUnit.Count, value=1)
    if result.step == "createSecret" and result.deleted_key_ids:
        metrics.add_metric(name="KeysDeleted", unit=MetricUnit.Count, value=len(result.deleted_key_ids))
    if result.step == "finishSecret" and result.outcome == "finished":
        metrics.add_metric(name="KeysRotated", unit=MetricUnit.Count, value=1)
    rotation_report = report.rotation_report(parsed, result, grace_days=config.thresholds.grace_days, now=utcnow())
    if rotation_report is not None:
        publisher.publish(rotation_report)
    return {"step": result.step, "outcome": result.outcome, "detail": result.detail}


def _count(result: SweepResult, config: Config, account: str | None = None) -> dict[str, int]:
    counts = result.counts()
    metrics.add_metric(name="KeysDeactivated", unit=MetricUnit.Count, value=counts["deactivated"])
    metrics.add_metric(name="KeysDeleted", unit=MetricUnit.Count, value=counts["deleted"])
    metrics.add_metric(name="KeysWarned", unit=MetricUnit.Count, value=counts["warned"] + counts["held"])
    if result.plan.guard_tripped:
        metrics.add_metric(name="GuardTripped", unit=MetricUnit.Count, value=1)
        logger.warning("MAX_CHANGES guard tripped: nothing changed",
                       extra={"reason": "too many changes", "maxChanges": config.max_changes, "account": account})
    return counts


def sweep(event: Mapping[str, Any], config: Config, adapter: SweepAdapter,
          publisher: ReportPublisher) -> dict[str, Any]:
    """The scheduled sweep; "now" is the event's ``time``."""
    now = event_time(event)
    result = run_sweep(adapter, config, now)
    counts = _count(result, config)
    sweep_report = report.sweep_report(result, now)
    message_id = publisher.publish(sweep_report) if sweep_report is not None else None
    owners = notify_owners(adapter, config, result, now)
    metrics.add_metric(name="OwnerNotices", unit=MetricUnit.Count, value=owners)
    logger.info("sweep done", extra={"now": iso(now), "mode": config.mode, **counts, "reportId": message_id,
                                     "ownerNotices": owners, "lastUseFrom": result.last_use_source})
    return {"now": iso(now), "mode": config.mode, **counts, "guardTripped": result.plan.guard_tripped,
            "reported": sweep_report is not None, "ownerNotices": owners, "lastUseFrom": result.last_use_source}


# --------------------------------------------------------------------------- organization-wide


class OrgSweep:
    """The stale-key sweep over the target accounts, one account per work item (``shared.fanout_run``).

    Each account is swept with the IAM client of its member role (the function's own account with its own
    credentials). Managed users and their secrets belong to the function's own account: in any other account no
    user is managed (a user of the same name there is swept like any other). Owner notices go to the owner topic
    of the function's account and name the users' account; ``max_changes`` holds per account. The run's one
    report (``summarize``) lists every account's keys that need a word, and every account that failed.
    """

    def __init__(self, config: Config, own_account: str, adapter_for: Callable[[Any], SweepAdapter],
                 account_label: Callable[[str], str] = str) -> None:
        self.config = config
        self.own_account = own_account
        self._adapter_for = adapter_for
        self._label = account_label

    def run_one(self, work: TargetWork) -> Result:
        account = work.target.account
        config = self.config if account == self.own_account else replace(self.config, managed_secrets={})
        adapter = self._adapter_for(work.client("iam"))
        result = run_sweep(adapter, config, work.now)
        counts = _count(result, config, account)
        owners = notify_owners(adapter, config, result, work.now, account=account,
                               account_label=self._label(account))
        metrics.add_metric(name="OwnerNotices", unit=MetricUnit.Count, value=owners)
        changes = counts["deactivated"] + counts["deleted"] + counts["would_change"]
        detail = (f"{counts['users']} users, {counts['keys']} keys: {counts['deactivated']} deactivated, "
                  f"{counts['deleted']} deleted, {counts['would_change']} to change, "
                  f"{counts['held'] + counts['warned']} to review")
        if result.plan.guard_tripped:
            detail += f" (max_changes {config.max_changes} exceeded: nothing changed)"
        logger.info("account swept", extra={"account": account, **counts, "ownerNotices": owners,
                                            "lastUseFrom": result.last_use_source})
        return Result(changes=changes, detail=detail,
                      data={"counts": counts, "guard": result.plan.guard_tripped, **report.sweep_lines(result)})

    def summarize(self, summary: RunSummary) -> ActionReport | None:
        """The run's one report: None when no account has a key that needs a word and nothing failed."""
        lines: list[str] = []
        attention = False
        for outcome in sorted(summary.succeeded, key=lambda o: o.target):
            data = outcome.data
            counts = data.get("counts", {})
            attention = attention or bool(data.get("guard")) or any(
                counts.get(name) for name in ("held", "deactivated", "deleted"))
            if data.get("lines"):
                lines.append(f"**{summary.label(outcome.target.account)}**")
                lines.extend(data["lines"])
                if data.get("more"):
                    lines.append(f"- ... and {data['more']} more (the function's log line 'account swept')")
        if not (summary.reportable or lines):
            return None
        report_mode = self.config.mode == "report"
        steps = ["Set key_rotation.mode to 'enforce' to deactivate and delete these keys automatically."] \
            if report_mode and summary.changes else []
        built = summary_report(summary, mode=self.config.mode, event_type="StaleAccessKeySweep",
                               what="access keys to change" if report_mode else "access keys changed or to change",
                               extra_lines=[*lines, ""] if lines else None, next_steps=steps)
        if attention and built.severity == "info":
            built = replace(built, severity="warning")
        return replace(built, keywords=["iam", "access-keys", *built.keywords])
