"""Orchestration: read the groups an event names (or every group, for a sweep) -> policy.plan_run -> revoke
-> action reports and metrics.

A group (or region) whose read or revoke fails is recorded as a Failure and the run goes on with the others.
Permanent failures (access denied, an SCP) are reported once per run; the first transient one (throttling,
5xx after the client's retries) is kept in ``Result.error`` for the handler to raise after everything else is
done, so Lambda retries the event and the retry finishes the job without repeating what was done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from sg_remediation import aws, events, policy, report
from sg_remediation.config import Config
from shared.errors import error_code, is_transient
from shared.fanout import Result as TargetResult
from shared.fanout import RunSummary, TargetFailed, TargetWork
from shared.observability import MetricUnit, logger, metrics
from shared.reports import ActionReport
from shared.targets import Target, TargetSpec
from shared.targets_aws import CachedTargets, MemberRoleError, Organization, Sessions, own_account_id
from shared.timeutil import iso, parse_time, utcnow

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

GroupRules = list[tuple[policy.Group, list[policy.Rule]]]
AUTOMATION_SESSION = "sg-remediation"
Ec2For = Callable[[str], "EC2Client"]  # region -> EC2 client (of the function's account, or a target's)


@dataclass
class Result:
    trigger: str
    groups_checked: int = 0
    revoked: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    groups_gone: list[str] = field(default_factory=list)
    guard_tripped: bool = False
    reports_published: int = 0
    ignored: str | None = None
    failed: list[policy.Failure] = field(default_factory=list)  # groups (or regions) it could not read or change
    error: ClientError | None = None  # the first transient failure: raised after every other group is done
    hold_reports: bool = False  # organization-wide sweep: reports go into the run's summary, not one by one
    held: list[ActionReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "groupsChecked": self.groups_checked,
            "revoked": self.revoked,
            "alreadyGone": self.already_gone,
            "reported": self.reported,
            "groupsGone": self.groups_gone,
            "guardTripped": self.guard_tripped,
            "reportsPublished": self.reports_published,
            "failed": [failure.as_dict() for failure in self.failed],
            **({"ignored": self.ignored} if self.ignored else {}),
        }


def ignored(parsed: events.Ignored) -> Result:
    """Permanently bad input: logged as a warning, counted, not retried."""
    logger.warning("ignored event", extra={"reason": parsed.reason, **dict(parsed.details)})
    metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
    return Result(trigger="ignored", ignored=parsed.reason)


def run(parsed: events.Sweep | events.Change, config: Config, ec2_for: Ec2For = aws.ec2, *,
        hold_reports: bool = False) -> Result:
    """One event or sweep; ``ec2_for(region)`` gives the EC2 client (of a target account, organization-wide)."""
    change = parsed if isinstance(parsed, events.Change) else None
    result = Result(trigger=change.event_name if change else "sweep", hold_reports=hold_reports)
    if change is not None:
        _record_delay(change)
    groups = _read_sweep(config, result, ec2_for) if change is None else _read_change(change, result, ec2_for)
    result.groups_checked = len(groups)
    prefix_lists = _resolve_prefix_lists(groups, config, result, ec2_for)
    plan = policy.plan_run(groups, config.policy, config.mode, config.max_changes, prefix_lists)
    result.guard_tripped = plan.guard_tripped
    for group_plan in plan.to_revoke:
        _revoke(group_plan, change, config, result, ec2_for)
    _report_left_open(plan, change, config, result)
    permanent = [failure for failure in result.failed if not failure.transient]
    # A run that raises is retried by Lambda (then kept in the failure queue): its retry reports, once.
    if permanent and result.error is None:
        _publish(report.failure_report(permanent, change, config.mode), config, result)
    metrics.add_metric(name="RevokeFailures", unit=MetricUnit.Count,
                       value=sum(1 for failure in result.failed if failure.findings))
    metrics.add_metric(name="RulesRevoked", unit=MetricUnit.Count, value=len(result.revoked))
    metrics.add_metric(name="FindingsReported", unit=MetricUnit.Count, value=len(result.reported))
    logger.info("run finished", extra=result.as_dict())
    return result


def _revoke(group_plan: policy.GroupPlan, change: events.Change | None, config: Config, result: Result,
            ec2_for: Ec2For) -> None:
    group = group_plan.group
    outcome = aws.revoke(group.region, group.group_id, [f.rule.rule_id for f in group_plan.findings],
                         egress=group_plan.egress, ec2_client=ec2_for(group.region))
    if outcome.error is not None:
        left = tuple(f for f in group_plan.findings if f.rule.rule_id in set(outcome.failed))
        _failed(result, outcome.error, group.region, group.group_id, group=group, findings=left)
    result.revoked += outcome.revoked
    result.already_gone += outcome.already_gone
    if outcome.group_gone:
        _group_gone(group.group_id, result)
    if outcome.already_gone:
        logger.info("rules already removed", extra={"groupId": group.group_id, "ruleIds": outcome.already_gone})
    if outcome.revoked:
        logger.info("revoked world-open rules", extra={"groupId": group.group_id, "ruleIds": outcome.revoked,
                                                       "direction": "egress" if group_plan.egress else "ingress"})
        _publish(report.revoked_report(group_plan, outcome.revoked, outcome.already_gone, change, config.mode),
                 config, result)


def _report_left_open(plan: policy.RunPlan, change: events.Change | None, config: Config, result: Result) -> None:
    report_only = plan.report_only
    for group_plan in report_only:
        result.reported += [finding.rule.rule_id for finding in group_plan.findings]
    if plan.guard_tripped:
        logger.warning("MAX_CHANGES guard: nothing revoked", extra={"findings": plan.total_findings,
                                                                   "maxChanges": config.max_changes})
        _publish(report.guard_report(report_only, plan.total_findings, config.max_changes, change, config.mode),
                 config, result)
    elif change is None and report_only:
        _publish(report.sweep_findings_report(report_only, config.mode, config.exempt.describe()), config, result)
    else:
        for group_plan in report_only:
            _publish(report.finding_report(group_plan, change, config.mode, config.exempt.describe()), config, result)


def _read_sweep(config: Config, result: Result, ec2_for: Ec2For) -> GroupRules:
    found: GroupRules = []
    for region in config.regions:
        try:
            found += aws.all_groups(region, ec2_client=ec2_for(region))
        except ClientError as exc:  # one region that cannot be read does not stop the others
            _failed(result, exc, region)
    return found


def _read_change(change: events.Change, result: Result, ec2_for: Ec2For) -> GroupRules:
    found: GroupRules = []
    ec2_client = ec2_for(change.region)
    for group_id in change.group_ids:
        try:
            group = aws.describe_group(change.region, group_id, ec2_client=ec2_client)
            found.append((group, aws.group_rules(change.region, group_id, ec2_client=ec2_client)))
        except aws.GroupGone:
            _group_gone(group_id, result)
        except ClientError as exc:
            _failed(result, exc, change.region, group_id)
    return found


def _resolve_prefix_lists(groups: GroupRules, config: Config, result: Result,
                          ec2_for: Ec2For) -> policy.PrefixLists:
    """The CIDRs of every customer-managed prefix list the rules reference: read once per run and region."""
    wanted: dict[str, set[str]] = {}
    for group, rules in groups:
        for rule in rules:
            if rule.prefix_list_id and (not rule.is_egress or config.egress != "off"):
                wanted.setdefault(group.region, set()).add(rule.prefix_list_id)
    resolved: dict[str, tuple[str, ...]] = {}
    for region, ids in wanted.items():
        batches = [sorted(ids)]
        while batches:
            batch = batches.pop()
            try:
                resolved.update(aws.prefix_list_cidrs(region, batch, ec2_client=ec2_for(region)))
            except ClientError as exc:
                if is_transient(exc) or len(batch) == 1:
                    _unresolved(result, exc, region, batch)
                else:  # one bad (deleted, unshared) list must not hide the others
                    batches += [[prefix_list_id] for prefix_list_id in batch]
    return resolved


def _unresolved(result: Result, exc: ClientError, region: str, prefix_list_ids: list[str]) -> None:
    """A prefix list that cannot be read is not taken for world-open; logged and counted (raised if transient)."""
    if is_transient(exc) and result.error is None:
        result.error = exc
    logger.warning("could not read prefix list entries: rules using them are not judged in this run",
                   extra={"region": region, "prefixListIds": prefix_list_ids, "errorCode": error_code(exc)})
    metrics.add_metric(name="PrefixListsUnresolved", unit=MetricUnit.Count, value=len(prefix_list_ids))


def _failed(result: Result, exc: ClientError, region: str, group_id: str = "", *,
            group: policy.Group | None = None, findings: tuple[policy.Finding, ...] = ()) -> None:
    """Record a group (or region) this run could not handle; a transient error is raised at the end."""
    failure = policy.Failure(region=region, error_code=error_code(exc), message=str(exc),
                             transient=is_transient(exc), group_id=group_id, group=group, findings=findings)
    if failure.transient and result.error is None:
        result.error = exc
    result.failed.append(failure)
    logger.warning("could not remediate" if findings else "could not read security groups",
                   extra=failure.as_dict())


def _record_delay(change: events.Change) -> None:
    """EventDelaySeconds: from the API call (CloudTrail eventTime) to this invocation's start."""
    if not change.event_time:
        return
    try:
        delay = (utcnow() - parse_time(change.event_time)).total_seconds()
    except ValueError:
        return
    metrics.add_metric(name="EventDelaySeconds", unit=MetricUnit.Seconds, value=max(delay, 0.0))


def _group_gone(group_id: str, result: Result) -> None:
    logger.warning("security group no longer exists", extra={"groupId": group_id})
    metrics.add_metric(name="GroupsGone", unit=MetricUnit.Count, value=1)
    result.groups_gone.append(group_id)


def _publish(action_report: ActionReport, config: Config, result: Result) -> None:
    if result.hold_reports:
        result.held.append(action_report)
        return
    aws.publish(action_report, config.topic_arn)
    result.reports_published += 1


# --------------------------------------------------------------------------- organization-wide
# The sweep: the scheduled invocation sends one work item per (account, region) (``shared.fanout_run``); each
# is swept by ``run_target`` with the member role's EC2 client, and ``summarize_sweep`` builds the run's one
# report. A CloudTrail change forwarded from a member account: ``run_change`` checks that the event's account
# and region are targets, then remediates there with the member role of that account.


def run_target(config: Config, work: TargetWork) -> TargetResult:
    """Sweep one (account, region); its reports go into the run's summary. A transient failure is raised (SQS
    delivers the item again); a region whose groups cannot be listed fails the target at once."""
    ec2_client = work.client("ec2")
    result = run(events.Sweep(time=iso(work.now)), replace(config, regions=(work.target.region,)),
                 lambda _region: ec2_client, hold_reports=True)
    if result.error is not None:
        raise result.error
    unlisted = [failure for failure in result.failed if not failure.group_id]
    if unlisted:
        raise TargetFailed(f"could not list security groups: {unlisted[0].error_code}: {unlisted[0].message}")
    return report.target_result(result, config.mode)


def summarize_sweep(config: Config, summary: RunSummary) -> ActionReport | None:
    return report.sweep_summary_report(summary, config.mode)


@dataclass
class Reach:
    """The targets (listed at most every few minutes) and the member-role sessions, kept while the function is
    warm."""

    targets: CachedTargets
    sessions: Sessions


_REACH: dict[tuple[TargetSpec, str], Reach] = {}


def reach(spec: TargetSpec, context: Any) -> Reach:
    own = own_account_id(context)
    if (spec, own) not in _REACH:
        organization = Organization() if spec.uses_organization else None
        _REACH[(spec, own)] = Reach(CachedTargets(spec, own, organization),
                                    Sessions(spec, own, AUTOMATION_SESSION))
    return _REACH[(spec, own)]


def run_change(change: events.Change, config: Config, where: Reach) -> Result:
    """A change made in a target account (forwarded to the hub's bus): remediated there with its member role;
    refused (logged, counted, reported) when the account or region is not a target."""
    account = change.account or where.targets.own_account
    why = where.targets.refusal(account, change.region)
    if why is not None:
        return _refuse(change, account, why, config, severity="warning")
    try:
        ec2_client = where.sessions.client("ec2", Target(account, change.region))
    except MemberRoleError as exc:
        return _refuse(change, account, str(exc), config, severity="critical")
    return run(change, config, lambda _region: ec2_client)


def _refuse(change: events.Change, account: str, why: str, config: Config, *, severity: str) -> Result:
    logger.warning("security-group change not remediated", extra={
        "account": account, "region": change.region, "eventId": change.event_id, "reason": why,
        "groupIds": list(change.group_ids)})
    metrics.add_metric(name="EventsRefused", unit=MetricUnit.Count, value=1)
    result = Result(trigger=change.event_name, ignored=why)
    _publish(report.refused_report(change, account, why, config.mode, severity=severity), config, result)
    return result
