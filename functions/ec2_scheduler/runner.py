"""One scheduler run: describe every tagged resource, decide, guard, act, record. Calls AWS only
through the adapters it is given (``aws.Ec2`` / ``aws.Rds`` / ``aws.Asg`` or test doubles); the schedules
of the run come from ``sources.resolve`` (the parameter, the calendars)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ec2_scheduler import aws, sources
from ec2_scheduler.aws import BATCH_SIZE, Asg, BatchResult, Ec2, Rds, describe_error
from ec2_scheduler.config import Config
from ec2_scheduler.plan import Decision, Plan, Resource, TagKeys, chunks, format_state_tag, plan
from shared.clients import client
from shared.errors import is_transient
from shared.fanout import Result as TargetResult
from shared.fanout import RunSummary, TargetFailed, TargetWork
from shared.observability import MetricUnit, logger, metrics
from shared.reports import ActionReport, ReportPublisher

Status = Literal["started", "stopped", "would-start", "would-stop", "failed", "refused"]


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    status: Status
    detail: str = ""

    @property
    def resource(self) -> Resource:
        return self.decision.resource


@dataclass
class RunResult:
    now: datetime
    mode: str
    regions: tuple[str, ...]
    plan: Plan = field(default_factory=Plan)
    outcomes: list[Outcome] = field(default_factory=list)
    refused: bool = False
    max_changes: int = 0
    aborted: str | None = None
    error: BaseException | None = None  # the transient error that aborted the run; the handler re-raises it
    recorded: int = 0  # state tags written (acted or acknowledged)
    region_errors: dict[str, str] = field(default_factory=dict)  # region -> why it could not be described
    source_problems: dict[str, str] = field(default_factory=dict)  # parameter/calendar -> what was used instead

    def with_status(self, *statuses: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def started(self) -> list[Outcome]:
        return self.with_status("started")

    @property
    def stopped(self) -> list[Outcome]:
        return self.with_status("stopped")

    @property
    def failed(self) -> list[Outcome]:
        return self.with_status("failed")

    @property
    def problems(self) -> list[Decision]:
        return self.plan.problems

    @property
    def bounced(self) -> list[Decision]:
        """Starts of this scheduler that went back to stopped by themselves (retried or given up)."""
        return [d for d in self.plan.decisions if d.bounced]

    @property
    def reportable(self) -> bool:
        return bool(self.outcomes or self.problems or self.aborted or self.region_errors or self.bounced
                    or self.source_problems)


Ec2Factory = Callable[[str], Ec2]
RdsFactory = Callable[[str], Rds]
AsgFactory = Callable[[str], Asg]
Adapters = tuple[Ec2, Rds | None, Asg | None]


def run(config: Config, now: datetime, ec2_for: Ec2Factory = Ec2, rds_for: RdsFactory = Rds,
        asg_for: AsgFactory = Asg) -> RunResult:
    keys = TagKeys(config.tag_key)
    result = RunResult(now=now, mode=config.mode, regions=config.regions, max_changes=config.max_changes)
    adapters: dict[str, Adapters] = {}
    resources: list[Resource] = []
    for region in config.regions:
        ec2 = ec2_for(region)
        rds = rds_for(region) if config.include_rds else None
        asg = asg_for(region) if config.include_asg else None
        found = _describe(region, (ec2, rds, asg), config.tag_key, result)
        if found is not None:
            adapters[region] = (ec2, rds, asg)
            resources.extend(found)
    result.plan = plan(resources, config.schedules, config.bad_schedules, keys, now)
    changes = result.plan.changes

    if config.mode == "report":
        result.outcomes = [Outcome(d, "would-start" if d.action == "start" else "would-stop") for d in changes]
        return result
    if len(changes) > config.max_changes:
        result.refused = True
        result.outcomes = [Outcome(d, "refused", f"more than MAX_CHANGES={config.max_changes}") for d in changes]
        return result

    _act(adapters, keys, now, result)
    return result


def _act(adapters: dict[str, Adapters], keys: TagKeys, now: datetime, result: RunResult) -> None:
    """Every change and record of the plan, region by region; a transient error stops the run (raised by
    the handler after the report)."""
    by_region: dict[str, list[Decision]] = defaultdict(list)
    for decision in result.plan.decisions:
        if decision.changes_state or decision.record is not None or decision.error_tag or decision.clear_error:
            by_region[decision.resource.region].append(decision)
    for region, decisions in by_region.items():
        ec2, rds, asg = adapters[region]
        try:
            _act_ec2(ec2, [d for d in decisions if d.resource.kind == "ec2"], keys, now, result)
            if rds is not None:
                _act_rds(rds, [d for d in decisions if d.resource.kind.startswith("rds")], keys, now, result)
            if asg is not None:
                _act_asg(asg, [d for d in decisions if d.resource.kind == "asg"], keys, now, result)
        except Exception as exc:  # transient (throttling, 5xx): report what was done, then raise
            result.aborted = f"{region}: {type(exc).__name__}: {exc}"
            result.error = exc
            logger.exception("run aborted; what was done so far is recorded", region=region)
            break


def _describe(region: str, adapters: Adapters, tag_key: str, result: RunResult) -> list[Resource] | None:
    """Every tagged resource of ``region``; None when the region cannot be described (an opt-in region that
    is not enabled, an SCP, an outage): reported, and the other regions are scheduled all the same. A
    transient failure is raised at the end of the run, so the invocation is retried."""
    ec2, rds, asg = adapters
    try:
        found = list(ec2.describe(tag_key))
        if rds is not None:
            found.extend(rds.describe(tag_key))
        if asg is not None:
            found.extend(asg.describe(tag_key))
    except (ClientError, BotoCoreError) as exc:
        why = describe_error(exc) if isinstance(exc, ClientError) else f"{type(exc).__name__}: {exc}"
        result.region_errors[region] = why
        logger.warning("region could not be described: its resources are not scheduled in this run",
                       region=region, reason=why)
        if not isinstance(exc, ClientError) or is_transient(exc):
            result.error = result.error or exc
        return None
    return found


def _act_ec2(ec2: Ec2, decisions: list[Decision], keys: TagKeys, now: datetime, result: RunResult) -> None:
    by_id = {d.resource.id: d for d in decisions}
    done: dict[str, list[str]] = defaultdict(list)  # state tag value -> ids to write it on
    for decision in decisions:
        if decision.action == "none" and decision.record:
            done[_state_value(decision, now)].append(decision.resource.id)
    groups: list[tuple[str, bool, list[str]]] = [
        ("start", False, [d.resource.id for d in decisions if d.action == "start"]),
        ("stop", True, [d.resource.id for d in decisions if d.action == "stop" and d.hibernate]),
        ("stop", False, [d.resource.id for d in decisions if d.action == "stop" and not d.hibernate]),
    ]
    try:
        for action, hibernate, ids in groups:
            for batch in chunks(ids, BATCH_SIZE):
                outcome = ec2.start(batch) if action == "start" else ec2.stop(batch, hibernate=hibernate)
                _collect(outcome, by_id, action, done, result, now)
    finally:
        _record_ec2(ec2, done, keys, now, result)
        _note_errors(ec2, decisions, keys)


def _note_errors(ec2: Ec2, decisions: list[Decision], keys: TagKeys) -> None:
    """``<TAG_KEY>Error`` on starts that did not hold; removed once the resource runs as it should."""
    for decision in decisions:
        if decision.error_tag:
            logger.warning("a start went back to stopped", resource=decision.resource.id,
                           region=decision.resource.region, reason=decision.reason)
            tagged = ec2.tag([decision.resource.id], keys.error, decision.error_tag)
            for resource_id, why in tagged.failed.items():
                logger.warning("could not write the error tag", resource=resource_id, reason=why)
    cleared = [d.resource.id for d in decisions if d.clear_error]
    if cleared:
        for resource_id, why in ec2.untag(cleared, keys.error).failed.items():
            logger.warning("could not remove the error tag", resource=resource_id, reason=why)


def _state_value(decision: Decision, now: datetime) -> str:
    assert decision.record is not None
    return format_state_tag(decision.record, now, decision.retained)


def _collect(outcome: BatchResult, by_id: dict[str, Decision], action: str, done: dict[str, list[str]],
             result: RunResult, now: datetime) -> None:
    for resource_id in outcome.succeeded:
        decision = by_id[resource_id]
        detail = ""
        if resource_id in outcome.fell_back:
            detail = f"hibernation failed ({outcome.fell_back[resource_id]}): stopped normally"
        result.outcomes.append(Outcome(decision, "started" if action == "start" else "stopped", detail))
        if decision.record:
            done[_state_value(decision, now)].append(resource_id)
    for resource_id, why in outcome.failed.items():
        result.outcomes.append(Outcome(by_id[resource_id], "failed", f"{action}: {why}"))


def _record_ec2(ec2: Ec2, done: dict[str, list[str]], keys: TagKeys, now: datetime, result: RunResult) -> None:
    for value, ids in done.items():
        if not ids:
            continue
        tagged = ec2.tag(ids, keys.state, value)
        result.recorded += len(tagged.succeeded)
        for resource_id, why in tagged.failed.items():
            logger.warning("could not record the state tag", resource=resource_id, reason=why)


def _act_rds(rds: Rds, decisions: list[Decision], keys: TagKeys, now: datetime, result: RunResult) -> None:
    for decision in decisions:
        resource = decision.resource
        record = decision.record
        if decision.changes_state:
            outcome = rds.start(resource) if decision.action == "start" else rds.stop(resource)
            if outcome.failed:
                result.outcomes.append(Outcome(decision, "failed", f"{decision.action}: {outcome.failed[resource.id]}"))
                continue
            result.outcomes.append(Outcome(decision, "started" if decision.action == "start" else "stopped"))
        if record:
            tagged = rds.tag(resource, keys.state, _state_value(decision, now))
            result.recorded += len(tagged.succeeded)
            for why in tagged.failed.values():
                logger.warning("could not record the state tag", resource=resource.id, reason=why)


def _act_asg(asg: Asg, decisions: list[Decision], keys: TagKeys, now: datetime, result: RunResult) -> None:
    """Auto Scaling groups: the sizes are recorded on the group before it is scaled in to 0, and restored
    from that record at the start."""
    for decision in decisions:
        resource = decision.resource
        if decision.changes_state and decision.sizes is not None:
            if decision.action == "stop" and resource.sizes is not None and not resource.sizes.zero:
                kept = asg.tag(resource, keys.sizes, resource.sizes.tag())
                if kept.failed:
                    result.outcomes.append(Outcome(decision, "failed", f"record sizes: {kept.failed[resource.id]}"))
                    continue
            outcome = asg.resize(resource, decision.sizes)
            if outcome.failed:
                result.outcomes.append(Outcome(decision, "failed", f"{decision.action}: {outcome.failed[resource.id]}"))
                continue
            result.outcomes.append(Outcome(decision, "started" if decision.action == "start" else "stopped"))
        if decision.record:
            tagged = asg.tag(resource, keys.state, _state_value(decision, now))
            result.recorded += len(tagged.succeeded)
            for why in tagged.failed.values():
                logger.warning("could not record the state tag", resource=resource.id, reason=why)


def handle(config: Config, now: datetime) -> dict[str, Any]:
    """One invocation: run, emit the metrics, log, publish the action report; re-raise a transient error
    (after the report) so that Lambda retries."""
    from ec2_scheduler.report import build_report

    config, source_problems = _resolve(config, now)
    result = run(config, now)
    result.source_problems.update(source_problems)
    outcome = _observe(config, result)
    if result.reportable:
        outcome["reportMessageId"] = ReportPublisher(client("sns"), config.topic_arn).publish(build_report(result))
    if result.error is not None:
        raise result.error
    return outcome


def _resolve(config: Config, now: datetime) -> tuple[Config, dict[str, str]]:
    """The schedules of this run: the parameter's (when set) and the calendars' skip dates applied; the
    sources that could not be read, by name (the run goes on with the last known ones)."""
    resolved = sources.resolve(config, now, aws.schedules_parameter, aws.Calendars)
    for source, problem in resolved.problems.items():
        logger.warning("schedule source not read", source=source, reason=problem)
    return resolved.config, dict(resolved.problems)


def _observe(config: Config, result: RunResult) -> dict[str, Any]:
    """The run's metrics and logs; returns its summary."""
    for name, error in config.bad_schedules.items():
        logger.warning("malformed schedule: resources using it are left alone", schedule=name, reason=error)
    metrics.add_metric("InstancesStarted", MetricUnit.Count, len(result.started))
    metrics.add_metric("InstancesStopped", MetricUnit.Count, len(result.stopped))
    metrics.add_metric("ScheduleErrors", MetricUnit.Count, len(result.problems))
    metrics.add_metric("ActionFailures", MetricUnit.Count, len(result.failed) + len(result.bounced))
    metrics.add_metric("ChangesRefused", MetricUnit.Count, len(result.with_status("refused")))
    metrics.add_metric("RegionErrors", MetricUnit.Count, len(result.region_errors))
    metrics.add_metric("ScheduleSourceErrors", MetricUnit.Count, len(result.source_problems))
    for decision in result.problems:
        logger.warning("resource left alone", resource=decision.resource.id, region=decision.resource.region,
                       schedule=decision.schedule, reason=decision.reason)
    outcome = summary(result)
    logger.info("run finished", extra={"summary": {k: v for k, v in outcome.items() if k != "decisions"},
                                       "decisions": outcome["decisions"]})
    return outcome


def summary(result: RunResult) -> dict[str, Any]:
    """What the handler returns and logs."""
    counts: dict[str, int] = defaultdict(int)
    for decision in result.plan.decisions:
        counts[decision.action] += 1
    return {
        "time": result.now.isoformat(),
        "mode": result.mode,
        "regions": list(result.regions),
        "resources": len(result.plan.decisions),
        "started": sorted(o.resource.id for o in result.started),
        "stopped": sorted(o.resource.id for o in result.stopped),
        "wouldStart": sorted(o.resource.id for o in result.with_status("would-start")),
        "wouldStop": sorted(o.resource.id for o in result.with_status("would-stop")),
        "failed": {o.resource.id: o.detail for o in result.failed},
        "problems": {d.resource.id: d.reason for d in result.problems},
        "refused": result.refused,
        "recorded": result.recorded,
        "bounced": {d.resource.id: d.reason for d in result.bounced},
        "regionErrors": dict(result.region_errors),
        "sourceProblems": dict(result.source_problems),
        "decisions": dict(counts),
    }


# --------------------------------------------------------------------------- organization-wide runs
# The scheduled invocation sends one work item per (account, region) (``shared.fanout_run``); each is worked
# on by ``run_target`` with clients in that account, and the run's one report is built by ``summarize_run``.


def run_target(config: Config, work: TargetWork) -> TargetResult:
    """One (account, region) of an organization-wide run, at the run's moment, with the target's clients.

    A transient failure is raised (SQS delivers the item again); a region that cannot be described (not
    enabled in that account, an SCP) fails the target at once; MAX_CHANGES holds per target.
    """
    region = work.target.region
    config, source_problems = _resolve(config, work.now)
    result = run(replace(config, regions=(region,)), work.now,
                 ec2_for=lambda name: Ec2(name, work.client("ec2")),
                 rds_for=lambda name: Rds(name, work.client("rds")),
                 asg_for=lambda name: Asg(name, work.client("autoscaling")))
    result.source_problems.update(source_problems)
    _observe(config, result)
    if result.error is not None:
        raise result.error
    if region in result.region_errors:
        raise TargetFailed(f"could not describe: {result.region_errors[region]}")
    from ec2_scheduler.report import target_result

    return target_result(result)


def summarize_run(config: Config, summary: RunSummary) -> ActionReport | None:
    """The organization-wide run's one report (None when no target changed, failed or had a problem)."""
    from ec2_scheduler.report import run_summary_report

    return run_summary_report(summary, config.mode)
