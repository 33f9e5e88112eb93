"""Periodic runs over many (account, region) targets: one SQS work item per target, one summary per run.

How a run goes (``shared.fanout_run`` drives it; this module is pure):

1. The scheduled invocation lists the targets (``shared.targets_aws.resolve_targets``), writes the run's
   header to the run table (DynamoDB) and sends one work item per target with SendMessageBatch.
2. An SQS event source mapping (maximum concurrency = ``max_concurrency``) invokes the function with work
   items. Each one is worked on for its target alone: the automation's "run one target" gets clients in that
   account and region. A permanent failure (the member role cannot be assumed, access denied) is recorded
   at once; a transient one raises, so SQS delivers the item again, and on its last delivery it is recorded
   as failed and goes on to the dead-letter queue (alarmed).
3. Each outcome is written with the run's count in one DynamoDB transaction (a redelivered item is never
   counted twice). The worker whose outcome completes the count claims the summary (a conditional write:
   exactly one claim per run), reads every outcome and publishes one action report naming every account
   and region worked on and every one that failed.
4. A run whose items never all finish (the function itself kept crashing on one) is closed by a later
   scheduled invocation once its deadline passed: its summary names the targets without an outcome.

Why a table and not per-target reports: one message per run, whatever the number of targets, and the
summary is built from what each target recorded, not from what a single invocation remembers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.config import ConfigError, env_int, env_str
from shared.reports import ActionReport
from shared.targets import Target
from shared.text import truncate
from shared.timeutil import iso, parse_time

ITEM_TYPE = "opsauto.work-item"
ITEM_VERSION = 1
MAX_DATA_BYTES = 4_000  # what one target may keep for the summary (DynamoDB items stay far below 400 KB)
MAX_DETAIL_CHARS = 500
Status = Literal["ok", "failed"]


class BadWorkItem(ValueError):
    """A queue message that is not a work item of this automation: rejected, counted, not retried."""


class TargetFailed(Exception):
    """Raised by "run one target" for a permanent failure of that target (a region it has not opted into, an
    SCP denying the describe): recorded as failed at once with this message, not retried."""


@dataclass(frozen=True)
class FanoutConfig:
    """The fan-out's resources (added by the stack's Fanout construct, not settings)."""

    queue_url: str
    table_name: str
    max_receives: int  # deliveries of one work item before it goes to the dead-letter queue
    run_deadline_seconds: int  # after this, a later scheduled invocation closes an unfinished run

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FanoutConfig | None:
        """``WORK_QUEUE_URL`` / ``RUN_TABLE_NAME`` / ``WORK_MAX_RECEIVES`` / ``RUN_DEADLINE_SECONDS``.

        None without ``WORK_QUEUE_URL`` (no fan-out in this stack: the function works as it did).
        """
        try:
            queue_url = env_str("WORK_QUEUE_URL", env=env)
        except ConfigError:
            return None
        return cls(
            queue_url=queue_url,
            table_name=env_str("RUN_TABLE_NAME", env=env),
            max_receives=env_int("WORK_MAX_RECEIVES", env=env, minimum=1),
            run_deadline_seconds=env_int("RUN_DEADLINE_SECONDS", env=env, minimum=60),
        )


@dataclass(frozen=True)
class WorkItem:
    """One (account, region) of one run."""

    automation: str
    run: str
    time: datetime  # the run's "now" (the scheduled event's time): every target decides at the same moment
    target: Target
    total: int

    def to_json(self) -> str:
        return json.dumps({
            "type": ITEM_TYPE, "version": ITEM_VERSION, "automation": self.automation, "run": self.run,
            "time": iso(self.time), "account": self.target.account, "region": self.target.region,
            "targets": self.total,
        }, sort_keys=True)

    @classmethod
    def from_json(cls, body: str, automation: str) -> WorkItem:
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise BadWorkItem(f"not JSON: {exc.msg}") from None
        if not isinstance(data, dict) or data.get("type") != ITEM_TYPE:
            raise BadWorkItem(f"not a work item (type {data.get('type') if isinstance(data, dict) else None!r})")
        if data.get("version") != ITEM_VERSION:
            raise BadWorkItem(f"work item version {data.get('version')!r}, this function reads {ITEM_VERSION}")
        if data.get("automation") != automation:
            raise BadWorkItem(f"a work item of {data.get('automation')!r}, not of {automation}")
        try:
            target = Target.from_key(f"{data['account']}:{data['region']}")
            return cls(automation, str(data["run"]), parse_time(str(data["time"])), target, int(data["targets"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadWorkItem(f"malformed work item: {exc}") from None


def work_items(automation: str, run: str, now: datetime, targets: list[Target]) -> list[WorkItem]:
    return [WorkItem(automation, run, now, target, len(targets)) for target in targets]


def batches[T](items: list[T], size: int = 10) -> list[list[T]]:
    """SendMessageBatch takes at most 10 entries."""
    return [items[start:start + size] for start in range(0, len(items), size)]


@dataclass(frozen=True)
class Result:
    """What "run one target" returns: how many changes it made (or would make, in report mode), a line for the
    summary, and a small JSON-able ``data`` the automation's own summary may use."""

    changes: int = 0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetOutcome:
    target: Target
    status: Status
    changes: int = 0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, target: Target, result: Result) -> TargetOutcome:
        data = result.data
        if len(json.dumps(data, default=str)) > MAX_DATA_BYTES:
            data = {"omitted": "too large for the run table"}
        return cls(target, "ok", result.changes, truncate(result.detail, MAX_DETAIL_CHARS), data)

    @classmethod
    def failed(cls, target: Target, why: str) -> TargetOutcome:
        return cls(target, "failed", 0, truncate(why, MAX_DETAIL_CHARS))


@dataclass
class RunSummary:
    """Every outcome of one run, for its single action report."""

    automation: str
    run: str
    time: datetime
    targets: list[Target]
    outcomes: list[TargetOutcome]
    skipped: dict[str, str] = field(default_factory=dict)  # accounts not ACTIVE -> status
    names: dict[str, str] = field(default_factory=dict)  # account id -> name

    @property
    def failed(self) -> list[TargetOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def succeeded(self) -> list[TargetOutcome]:
        return [o for o in self.outcomes if o.status == "ok"]

    @property
    def missing(self) -> list[Target]:
        """Targets without an outcome (a run closed at its deadline)."""
        done = {o.target for o in self.outcomes}
        return [t for t in self.targets if t not in done]

    @property
    def changes(self) -> int:
        return sum(o.changes for o in self.outcomes)

    @property
    def reportable(self) -> bool:
        """Worth a message: something changed (or would), or a target failed or never finished."""
        return bool(self.changes or self.failed or self.missing)

    def label(self, account: str) -> str:
        name = self.names.get(account)
        return f"{account} ({name})" if name else account


def _by_account(outcomes: list[TargetOutcome]) -> dict[str, list[TargetOutcome]]:
    grouped: dict[str, list[TargetOutcome]] = defaultdict(list)
    for outcome in sorted(outcomes, key=lambda o: o.target):
        grouped[outcome.target.account].append(outcome)
    return grouped


def summary_lines(summary: RunSummary) -> list[str]:
    """Markdown lines: failed targets first, then every account worked on with its regions."""
    lines: list[str] = []
    if summary.failed or summary.missing:
        lines.append("**Failed**")
        for outcome in sorted(summary.failed, key=lambda o: o.target):
            lines.append(f"- {summary.label(outcome.target.account)} {outcome.target.region}: {outcome.detail}")
        for target in summary.missing:
            lines.append(f"- {summary.label(target.account)} {target.region}: no outcome by the run's deadline "
                         "(see the work queue's dead-letter queue)")
    if summary.succeeded:
        lines.append("**Worked on**")
        for account, outcomes in _by_account(summary.succeeded).items():
            regions = ", ".join(
                f"{o.target.region} ({o.detail or (f'{o.changes} changes' if o.changes else 'no change')})"
                for o in outcomes)
            lines.append(f"- {summary.label(account)}: {regions}")
    if summary.skipped:
        skipped = ", ".join(f"{summary.label(a)} {status}" for a, status in sorted(summary.skipped.items()))
        lines.append(f"**Left out** (not ACTIVE in the Organization): {skipped}")
    return lines


def summary_report(summary: RunSummary, *, mode: str, event_type: str, what: str = "changes",
                   extra_lines: list[str] | None = None, next_steps: list[str] | None = None) -> ActionReport:
    """The run's one action report; automations pass their own wording (``what``: "instances started or
    stopped") and lines, or build their own from ``summary``."""
    accounts = {t.account for t in summary.targets}
    failed = len(summary.failed) + len(summary.missing)
    title = (f"{summary.automation}: {summary.changes} {what} across {len(accounts)} accounts, "
             f"{len(summary.targets)} targets" + (f", {failed} failed" if failed else ""))
    steps = list(next_steps or [])
    if failed:
        steps.append("For a target that cannot be assumed: deploy the member stack there (StackSet instance) "
                     "or check its trust policy; others: see the function's logs for the run id.")
    return ActionReport(
        automation=summary.automation,
        mode=mode,
        title=title,
        description="\n".join([*(extra_lines or []), *summary_lines(summary)]),
        event_type=event_type,
        severity="warning" if failed else "info",
        next_steps=steps,
        keywords=["organization"],
        related_resources=[f"{t.account}:{t.region}" for t in sorted(summary.targets)],
        context={
            "run": summary.run,
            "time": iso(summary.time),
            "targets": len(summary.targets),
            "failed": [f"{o.target.key}" for o in summary.failed] + [t.key for t in summary.missing],
            "skippedAccounts": summary.skipped,
        },
    )


RunOne = Callable[["TargetWork"], Result]
Summarize = Callable[[RunSummary], ActionReport | None]


@dataclass
class TargetWork:
    """What "run one target" gets: the work item and clients bound to its account and region."""

    item: WorkItem
    client_for: Callable[[str, Target], Any]

    @property
    def target(self) -> Target:
        return self.item.target

    @property
    def now(self) -> datetime:
        return self.item.time

    def client(self, service: str) -> Any:
        return self.client_for(service, self.item.target)
