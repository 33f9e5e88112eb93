"""The fan-out's orchestration: dispatch a run's work items, work on them, publish the run's one summary.

An automation's handler supplies only "run one target" and "summarize"::

    fan = Fanout.build(AUTOMATION, config.targets, config.fanout, context, config.topic_arn)
    if is_work_batch(event):
        return fan.work(event, context, run_one=..., summarize=...)
    return fan.dispatch(event, summarize=...)

See ``shared.fanout`` for how a run goes and why.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from shared.clients import client
from shared.errors import error_code, is_access_denied, is_transient
from shared.fanout import (
    BadWorkItem,
    FanoutConfig,
    RunOne,
    Summarize,
    TargetFailed,
    TargetOutcome,
    TargetWork,
    WorkItem,
    work_items,
)
from shared.fanout_aws import RunTable, WorkQueue
from shared.observability import MetricUnit, logger, metrics
from shared.reports import ReportPublisher
from shared.targets import TargetSpec
from shared.targets_aws import AccountNames, MemberRoleError, Organization, Sessions, own_account_id, resolve_targets
from shared.timeutil import event_time, iso, parse_time


def is_work_batch(event: Any) -> bool:
    """An SQS event source mapping's batch (work items), as opposed to the scheduled invocation."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return False
    return all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)


class GaveUp(Exception):
    """A target failed on its last delivery: recorded as failed, raised so SQS keeps it in the dead-letter queue."""


@dataclass
class Fanout:
    automation: str
    spec: TargetSpec
    config: FanoutConfig
    own_account: str
    queue: WorkQueue
    runs: RunTable
    sessions: Sessions
    publisher: ReportPublisher
    organization: Organization | None = None
    names: AccountNames | None = None

    @classmethod
    def build(cls, automation: str, spec: TargetSpec, config: FanoutConfig, context: Any,
              topic_arn: str | None) -> Fanout:
        """The real adapters (boto3 clients of the function's own account)."""
        own = own_account_id(context)
        organization = Organization() if spec.uses_organization else None
        return cls(
            automation=automation, spec=spec, config=config, own_account=own,
            queue=WorkQueue(client("sqs"), config.queue_url), runs=RunTable(client("dynamodb"), config.table_name),
            sessions=Sessions(spec, own, automation.replace("_", "-")),
            publisher=ReportPublisher(client("sns"), topic_arn), organization=organization,
            names=AccountNames(organization) if organization is not None else None,
        )

    # ------------------------------------------------------------------ the scheduled invocation
    def dispatch(self, event: dict[str, Any], summarize: Summarize) -> dict[str, Any]:
        """List the targets now and send one work item per (account, region); close overdue runs."""
        now = event_time(event)
        run = str(event.get("id") or uuid.uuid4())
        self.close_overdue(now, summarize)
        planned = resolve_targets(self.spec, self.own_account, self.organization)
        for account, status in sorted(planned.skipped.items()):
            logger.warning("account left out: not ACTIVE in the Organization", account=account, status=status)
        if not self.runs.start(self.automation, run, iso(now), planned.targets, planned.skipped, planned.names):
            header = self.runs.header(run) or {}
            if header.get("dispatched", {}).get("BOOL"):
                logger.info("run already dispatched (a retried invocation): nothing sent", run=run)
                return {"run": run, "duplicate": True}
        self.runs.add_open(self.automation, run)
        sent = self.queue.send(work_items(self.automation, run, now, planned.targets))
        self.runs.mark_dispatched(run)
        metrics.add_metric("TargetsDispatched", MetricUnit.Count, sent)
        metrics.add_metric("AccountsLeftOut", MetricUnit.Count, len(planned.skipped))
        if not planned.targets:
            logger.warning("no targets: nothing to work on", run=run)
            self._summarize(run, summarize)
        result: dict[str, Any] = {"run": run, "time": iso(now), "targets": sent, "accounts": len(planned.accounts),
                                  "skipped": planned.skipped}
        logger.info("run dispatched", extra=result)
        return result

    def close_overdue(self, now: Any, summarize: Summarize) -> None:
        """Publish the summary of runs past their deadline; targets without an outcome are named as failed."""
        for run in self.runs.open_runs(self.automation):
            header = self.runs.header(run)
            state = (header or {}).get("summary", {}).get("S", "")
            if header is None or state.startswith("sent"):
                self.runs.remove_open(self.automation, run)
                continue
            age = (now - parse_time(header["time"]["S"])).total_seconds()
            if age < self.config.run_deadline_seconds:
                continue
            if state == "claimed":
                if age < 2 * self.config.run_deadline_seconds:
                    continue  # a worker may still be publishing it
                self.runs.release_summary(run)  # the claimer died before publishing
            logger.warning("closing a run at its deadline", run=run, done=header["done"]["N"],
                           total=header["total"]["N"])
            self._summarize(run, summarize)

    # ------------------------------------------------------------------ the work items
    def work(self, event: dict[str, Any], context: Any, run_one: RunOne, summarize: Summarize) -> dict[str, Any]:
        """Work on a batch of items; failed ones are listed in ``batchItemFailures`` (SQS delivers them again)."""

        def record_handler(record: SQSRecord) -> None:
            self.work_one(record, run_one, summarize)

        processor = BatchProcessor(event_type=EventType.SQS)
        return dict(process_partial_response(event, record_handler, processor, context))

    def work_one(self, record: SQSRecord, run_one: RunOne, summarize: Summarize) -> None:
        try:
            item = WorkItem.from_json(record.body, self.automation)
        except BadWorkItem as exc:
            logger.warning("work item rejected", message_id=record.message_id, reason=str(exc))
            metrics.add_metric("WorkItemsRejected", MetricUnit.Count, 1)
            return
        gave_up: BaseException | None = None
        if self.runs.has_outcome(item.run, item.target):
            logger.info("target already recorded (a redelivered item)", run=item.run, target=item.target.key)
        else:
            outcome, gave_up = self._run(item, int(record.attributes.approximate_receive_count or 1), run_one)
            if self.runs.record(item.run, outcome):
                log = logger.warning if outcome.status == "failed" else logger.info
                log("target done", run=item.run, account=item.target.account, region=item.target.region,
                    status=outcome.status, changes=outcome.changes, detail=outcome.detail)
                metrics.add_metric("TargetsFailed" if outcome.status == "failed" else "TargetsDone",
                                   MetricUnit.Count, 1)
        header = self.runs.header(item.run)
        if header is None:
            logger.warning("run not in the run table (expired, or another stack's queue): outcome not summarized",
                           run=item.run, target=item.target.key)
        elif "summary" not in header and int(header["done"]["N"]) >= int(header["total"]["N"]):
            self._summarize(item.run, summarize)
        if gave_up is not None:
            raise GaveUp(f"{item.target.key}: {gave_up}") from gave_up

    def _run(self, item: WorkItem, receives: int, run_one: RunOne) -> tuple[TargetOutcome, BaseException | None]:
        """The target's outcome; raises a transient failure while deliveries remain (SQS retries it)."""
        try:
            return TargetOutcome.ok(item.target, run_one(TargetWork(item, self.sessions.client))), None
        except (MemberRoleError, TargetFailed) as exc:
            return TargetOutcome.failed(item.target, str(exc)), None
        except ClientError as exc:
            if is_access_denied(exc) and not is_transient(exc):
                message = exc.response.get("Error", {}).get("Message", "")
                return TargetOutcome.failed(item.target, f"{error_code(exc)}: {message}"), None
            if receives < self.config.max_receives:
                raise
            return TargetOutcome.failed(item.target, f"gave up after {receives} attempts: {exc}"), exc
        except Exception as exc:
            if receives < self.config.max_receives:
                raise
            return TargetOutcome.failed(item.target, f"gave up after {receives} attempts: "
                                                     f"{type(exc).__name__}: {exc}"), exc

    # ------------------------------------------------------------------ the summary
    def _summarize(self, run: str, summarize: Summarize) -> None:
        """Claim the run's summary (one claimer per run), build it from every outcome and publish it."""
        if not self.runs.claim_summary(run):
            return
        try:
            header = self.runs.header(run)
            assert header is not None  # claimed: it exists
            summary = self.runs.summary(run, header)
            self._name_accounts(summary.names, [t.account for t in summary.targets])
            report = summarize(summary)
            message_id = self.publisher.publish(report) if report is not None else None
        except Exception:
            self.runs.release_summary(run)  # the next delivery (or a later dispatch) publishes it
            raise
        self.runs.summary_sent(run, message_id)
        self.runs.remove_open(self.automation, run)
        logger.info("run summarized", run=run, targets=len(summary.targets), failed=len(summary.failed),
                    missing=len(summary.missing), published=message_id is not None)

    def account_label(self, account: str) -> str:
        """``"111122223333 (prod)"`` where Organizations can tell the name, else the id (a lookup that fails is
        logged, never raised: a name is nice to have)."""
        if self.names is None:
            return account
        try:
            return self.names.label(account)
        except ClientError as exc:
            logger.warning("account name lookup failed", account=account, reason=str(exc))
            return account

    def _name_accounts(self, names: dict[str, str], accounts: list[str]) -> None:
        if self.names is None:
            return
        self.names.seed(names)
        for account in dict.fromkeys(accounts):
            if account in names:
                continue
            try:
                name = self.names.name(account)
            except ClientError as exc:  # a name is nice to have: never hold the summary back for it
                logger.warning("account name lookup failed", account=account, reason=str(exc))
                continue
            if name:
                names[account] = name
