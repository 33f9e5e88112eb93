"""Action reports of this automation (pure: builds ActionReport objects, publishes nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sg_remediation.events import Change
from sg_remediation.policy import Failure, Finding, GroupPlan, Rule
from shared.reports import ActionReport

AUTOMATION = "sg_remediation"
EVENT_REVOKED = "SecurityGroupIngressRevoked"
EVENT_FINDING = "SecurityGroupIngressFinding"
EVENT_GUARD = "SecurityGroupRemediationGuard"
EVENT_FAILED = "SecurityGroupRemediationFailed"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _finding_line(finding: Finding, change: Change | None) -> str:
    line = f"- `{finding.rule.summary()}` (`{finding.rule.rule_id}`): {finding.reason}"
    if change is not None and change.rule_ids and finding.rule.rule_id not in change.rule_ids:
        line += " — existed before this change"
    return line


def _header(plan: GroupPlan) -> str:
    group = plan.group
    vpc = f" in `{group.vpc_id}`" if group.vpc_id else ""
    return f"Security group `{group.group_id}` **{group.name}**{vpc}, region {group.region}."


def _change_lines(change: Change | None) -> list[str]:
    if change is None:
        return ["Found by the periodic sweep."]
    where = f" from {change.source_ip}" if change.source_ip else ""
    when = f" at {change.event_time}" if change.event_time else ""
    return [f"Change: **{change.event_name}** by `{change.actor}`{where}{when} (CloudTrail event {change.event_id})."]


def _kept_lines(rules: Sequence[Rule]) -> list[str]:
    if not rules:
        return []
    return ["", "Left open (allowed public ports):", *[f"- `{rule.summary()}` (`{rule.rule_id}`)" for rule in rules]]


def _context(plan: GroupPlan, change: Change | None, **extra: Any) -> dict[str, Any]:
    group = plan.group
    context: dict[str, Any] = {
        "groupId": group.group_id,
        "groupName": group.name,
        "vpcId": group.vpc_id or "",
        "region": group.region,
        "trigger": change.event_name if change else "sweep",
    }
    if change is not None:
        context.update(
            actor=change.actor,
            sourceIPAddress=change.source_ip or "",
            eventTime=change.event_time or "",
            eventId=change.event_id,
        )
    context.update(extra)
    return context


def revoked_report(
    plan: GroupPlan, revoked: Sequence[str], already_gone: Sequence[str], change: Change | None, mode: str
) -> ActionReport:
    """The rules this run revoked from one group."""
    done = [finding for finding in plan.findings if finding.rule.rule_id in set(revoked)]
    gone = [finding for finding in plan.findings if finding.rule.rule_id in set(already_gone)]
    lines = [_header(plan), "", f"Revoked {_plural(len(done), 'world-open ingress rule')}:"]
    lines += [_finding_line(finding, change) for finding in done]
    if gone:
        lines += ["", "Already removed before this run could revoke them:"]
        lines += [f"- `{finding.rule.summary()}` (`{finding.rule.rule_id}`)" for finding in gone]
    lines += _kept_lines(plan.allowed_open)
    lines += ["", *_change_lines(change)]
    group = plan.group
    return ActionReport(
        automation=AUTOMATION,
        mode=mode,
        title=f"Closed {_plural(len(done), 'world-open ingress rule')} on {group.label()}",
        description="\n".join(lines),
        event_type=EVENT_REVOKED,
        summary=f"Revoked {', '.join(finding.rule.summary() for finding in done)} on {group.label()}",
        severity="warning",
        next_steps=[
            "If a port must be reachable from the internet, add it to allowed_public_ports "
            "(cdk.json automations.sg_remediation) or tag the group to exempt it.",
            "Prefer a narrower source: a known CIDR, a managed prefix list, or a load balancer's security group.",
        ],
        keywords=["security-group", group.group_id, *([change.event_name] if change else ["sweep"])],
        related_resources=[group.arn()],
        context=_context(plan, change, revokedRules=[finding.rule.as_report() for finding in done],
                         alreadyRemoved=list(already_gone)),
    )


def finding_report(plan: GroupPlan, change: Change | None, mode: str, exempt_tag: str) -> ActionReport:
    """World-open rules left in place: report mode, an exempt group, or the MAX_CHANGES guard."""
    group = plan.group
    count = len(plan.findings)
    verb = "Would revoke" if mode == "report" and plan.why == "report mode" else "Left open"
    lines = [_header(plan), "", f"{verb} {_plural(count, 'world-open ingress rule')} ({plan.why}):"]
    lines += [_finding_line(finding, change) for finding in plan.findings]
    lines += _kept_lines(plan.allowed_open)
    lines += ["", *_change_lines(change)]
    return ActionReport(
        automation=AUTOMATION,
        mode=mode,
        title=f"{_plural(count, 'world-open ingress rule')} on {group.label()} not revoked: {plan.why}",
        description="\n".join(lines),
        event_type=EVENT_FINDING,
        summary=f"{verb}: {', '.join(finding.rule.summary() for finding in plan.findings)} on {group.label()}",
        severity="warning",
        next_steps=[
            "Review the rules above and revoke them, or narrow their source.",
            f"Groups tagged {exempt_tag} are never changed, only reported.",
        ],
        keywords=["security-group", group.group_id, *([change.event_name] if change else ["sweep"])],
        related_resources=[group.arn()],
        context=_context(plan, change, reason=plan.why,
                         findings=[{**finding.rule.as_report(), "reason": finding.reason}
                                   for finding in plan.findings]),
    )


def guard_report(plans: Sequence[GroupPlan], total: int, max_changes: int, change: Change | None,
                 mode: str) -> ActionReport:
    """One summary instead of a report per group when the MAX_CHANGES guard stopped the run."""
    lines = [
        f"This run found {_plural(total, 'world-open ingress rule')} to revoke, more than MAX_CHANGES="
        f"{max_changes}; it revoked nothing. Check that allowed_public_ports is what you mean, then raise "
        "max_changes or fix the groups.",
        "",
    ]
    for plan in plans:
        lines.append(f"**{plan.group.label()}** ({plan.group.region}, {plan.why}):")
        lines += [f"- `{finding.rule.summary()}` (`{finding.rule.rule_id}`)" for finding in plan.findings]
    lines += ["", *_change_lines(change)]
    return ActionReport(
        automation=AUTOMATION,
        mode=mode,
        title=f"{_plural(total, 'world-open ingress rule')} found, above MAX_CHANGES={max_changes}: nothing revoked",
        description="\n".join(lines),
        event_type=EVENT_GUARD,
        severity="critical",
        next_steps=[
            "Check allowed_public_ports and the exempt tag, then raise max_changes or fix the groups by hand.",
        ],
        keywords=["security-group", "max-changes"],
        related_resources=[plan.group.arn() for plan in plans],
        context={
            "maxChanges": str(max_changes),
            "findings": str(total),
            "groups": [plan.group.group_id for plan in plans],
            "trigger": change.event_name if change else "sweep",
        },
    )


def sweep_findings_report(plans: Sequence[GroupPlan], mode: str, exempt_tag: str) -> ActionReport:
    """One digest per sweep of the world-open rules left in place (report mode, exempt groups).

    A sweep repeats every interval; a report per group each time would flood the chat channel.
    """
    total = sum(len(plan.findings) for plan in plans)
    verb = "would revoke" if mode == "report" else "left open"
    lines = [f"The sweep found {_plural(total, 'world-open ingress rule')} in {_plural(len(plans), 'group')} "
             f"that it {verb}:", ""]
    for plan in plans:
        vpc = f", {plan.group.vpc_id}" if plan.group.vpc_id else ""
        lines.append(f"**{plan.group.label()}** ({plan.group.region}{vpc}; {plan.why}):")
        lines += [_finding_line(finding, None) for finding in plan.findings]
    return ActionReport(
        automation=AUTOMATION,
        mode=mode,
        title=f"Sweep: {_plural(total, 'world-open ingress rule')} in {_plural(len(plans), 'group')} not revoked",
        description="\n".join(lines),
        event_type=EVENT_FINDING,
        severity="warning",
        next_steps=[
            "Review the rules above and revoke them, or narrow their source.",
            f"Groups tagged {exempt_tag} are never changed, only reported.",
        ],
        keywords=["security-group", "sweep"],
        related_resources=[plan.group.arn() for plan in plans],
        context={
            "trigger": "sweep",
            "findings": [
                {"groupId": plan.group.group_id, "groupName": plan.group.name, "vpcId": plan.group.vpc_id or "",
                 "region": plan.group.region, "reason": plan.why,
                 "rules": [{**finding.rule.as_report(), "reason": finding.reason} for finding in plan.findings]}
                for plan in plans
            ],
        },
    )


def _failure_lines(failure: Failure) -> list[str]:
    error = f"{failure.error_code}: {failure.message}" if failure.error_code else failure.message
    if failure.group is not None:
        head = f"**{failure.group.label()}** ({failure.region}): {error}"
    elif failure.group_id:
        head = f"**{failure.group_id}** ({failure.region}), could not be read: {error}"
    else:
        head = f"Region **{failure.region}**, security groups could not be listed: {error}"
    return [head, *(f"- left open: `{f.rule.summary()}` (`{f.rule.rule_id}`): {f.reason}" for f in failure.findings)]


def failure_report(failures: Sequence[Failure], change: Change | None, mode: str) -> ActionReport:
    """Groups (or regions) this run could not read or change: permanent refusals, reported every run."""
    left = sum(len(failure.findings) for failure in failures)
    lines = [f"This run could not remediate {_plural(len(failures), 'security group')} (or region); "
             f"{_plural(left, 'world-open ingress rule')} stay open:", ""]
    for failure in failures:
        lines += _failure_lines(failure)
    lines += ["", *_change_lines(change)]
    arns = [failure.group.arn() for failure in failures if failure.group is not None]
    return ActionReport(
        automation=AUTOMATION,
        mode=mode,
        title=f"Could not remediate {_plural(len(failures), 'security group')}: "
              f"{', '.join(sorted({failure.error_code or 'error' for failure in failures}))}",
        description="\n".join(lines),
        event_type=EVENT_FAILED,
        summary=f"{left} world-open rules left open; "
                f"{', '.join(failure.group_id or failure.region for failure in failures)} failed",
        severity="critical",
        next_steps=[
            "Access denied: check the function role's policy, permission boundaries and SCPs for "
            "ec2:RevokeSecurityGroupIngress and the describe calls on these groups.",
            "Until then, revoke the listed rules by hand or narrow their source.",
        ],
        keywords=["security-group", "remediation-failed", *sorted({f.error_code for f in failures if f.error_code})],
        related_resources=arns,
        context={
            "trigger": change.event_name if change else "sweep",
            "failures": [failure.as_dict() for failure in failures],
        },
    )
