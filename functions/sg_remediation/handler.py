"""Entry point: CloudTrail security-group changes (via EventBridge) and the periodic sweep.

    event -> events.parse -> adapter reads the groups -> policy.plan_run -> adapter revokes -> action reports
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from sg_remediation import aws, events, messages, policy
from shared.config import ConfigError, env_int, env_mode, env_regions, env_str
from shared.errors import error_code, is_transient
from shared.observability import MetricUnit, logger, metrics, tracer
from shared.reports import ActionReport
from shared.timeutil import parse_time, utcnow


@dataclass(frozen=True)
class Config:
    mode: str
    allowed: policy.AllowedPorts
    exempt: policy.ExemptTag
    regions: tuple[str, ...]
    topic_arn: str | None
    max_changes: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        try:
            allowed = policy.parse_allowed_ports(env_str("ALLOWED_PUBLIC_PORTS", "80,443", env=env))
            exempt = policy.parse_exempt_tag(env_str("EXEMPT_TAG", "AutoRemediate=false", env=env))
        except policy.PolicyError as exc:
            raise ConfigError(str(exc)) from None
        topic = env_str("NOTIFY_TOPIC_ARN", "", env=env) or None
        return cls(
            mode=env_mode(env=env),
            allowed=allowed,
            exempt=exempt,
            regions=tuple(env_regions(env=env)),
            topic_arn=topic,
            max_changes=env_int("MAX_CHANGES", 50, minimum=1, env=env),
        )


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


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    config = Config.from_env()
    parsed = events.parse(event)
    if isinstance(parsed, events.Ignored):
        logger.warning("ignored event", extra={"reason": parsed.reason, **dict(parsed.details)})
        metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
        return Result(trigger="ignored", ignored=parsed.reason).as_dict()
    result = run(parsed, config)
    if result.error is not None:
        raise result.error
    return result.as_dict()


def run(parsed: events.Sweep | events.Change, config: Config) -> Result:
    change = parsed if isinstance(parsed, events.Change) else None
    result = Result(trigger=change.event_name if change else "sweep")
    if change is not None:
        _record_delay(change)
    groups = _read_groups(change, config, result)
    result.groups_checked = len(groups)
    plan = policy.plan_run(groups, config.allowed, config.exempt, config.mode, config.max_changes)
    result.guard_tripped = plan.guard_tripped

    for group_plan in plan.to_revoke:
        rule_ids = [finding.rule.rule_id for finding in group_plan.findings]
        outcome = aws.revoke_ingress(group_plan.group.region, group_plan.group.group_id, rule_ids)
        if outcome.error is not None:
            left = tuple(f for f in group_plan.findings if f.rule.rule_id in set(outcome.failed))
            _failed(result, outcome.error, group_plan.group.region, group_plan.group.group_id,
                    group=group_plan.group, findings=left)
        result.revoked += outcome.revoked
        result.already_gone += outcome.already_gone
        if outcome.group_gone:
            _group_gone(group_plan.group.group_id, result)
        if outcome.already_gone:
            logger.info("rules already removed", extra={"groupId": group_plan.group.group_id,
                                                          "ruleIds": outcome.already_gone})
        if outcome.revoked:
            logger.info("revoked world-open ingress", extra={"groupId": group_plan.group.group_id,
                                                             "ruleIds": outcome.revoked})
            _publish(messages.revoked_report(group_plan, outcome.revoked, outcome.already_gone, change,
                                             config.mode), config, result)

    report_only = plan.report_only
    for group_plan in report_only:
        result.reported += [finding.rule.rule_id for finding in group_plan.findings]
    if plan.guard_tripped:
        logger.warning("MAX_CHANGES guard: nothing revoked", extra={"findings": plan.total_findings,
                                                                   "maxChanges": config.max_changes})
        _publish(messages.guard_report(report_only, plan.total_findings, config.max_changes, change, config.mode),
                 config, result)
    elif change is None and report_only:
        _publish(messages.sweep_findings_report(report_only, config.mode, config.exempt.describe()), config, result)
    else:
        for group_plan in report_only:
            _publish(messages.finding_report(group_plan, change, config.mode, config.exempt.describe()),
                     config, result)

    permanent = [failure for failure in result.failed if not failure.transient]
    # A run that raises is retried by Lambda (then kept in the failure queue): its retry reports, once.
    if permanent and result.error is None:
        _publish(messages.failure_report(permanent, change, config.mode), config, result)
    metrics.add_metric(name="RevokeFailures", unit=MetricUnit.Count,
                       value=sum(1 for failure in result.failed if failure.findings))
    metrics.add_metric(name="RulesRevoked", unit=MetricUnit.Count, value=len(result.revoked))
    metrics.add_metric(name="FindingsReported", unit=MetricUnit.Count, value=len(result.reported))
    logger.info("run finished", extra=result.as_dict())
    return result


def _read_groups(
    change: events.Change | None, config: Config, result: Result
) -> list[tuple[policy.Group, list[policy.Rule]]]:
    found: list[tuple[policy.Group, list[policy.Rule]]] = []
    if change is None:
        for region in config.regions:
            try:
                found += aws.all_groups(region)
            except ClientError as exc:  # one region that cannot be read does not stop the others
                _failed(result, exc, region)
        return found
    for group_id in change.group_ids:
        try:
            group = aws.describe_group(change.region, group_id)
            found.append((group, aws.group_rules(change.region, group_id)))
        except aws.GroupGone:
            _group_gone(group_id, result)
        except ClientError as exc:
            _failed(result, exc, change.region, group_id)
    return found


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


def _publish(report: ActionReport, config: Config, result: Result) -> None:
    aws.publish(report, config.topic_arn)
    result.reports_published += 1
