"""Action reports of this automation (pure: builds ActionReport objects, publishes nothing).

Two shapes: a report about one group (what was revoked from it, or left open in it, after an event) and a
digest over several groups (a sweep's findings left open, the MAX_CHANGES guard, the groups a run could not
change). Each public builder only says what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sg_remediation.events import Change
from sg_remediation.policy import Failure, Finding, Group, GroupPlan, Rule
from shared.fanout import Result as TargetResult
from shared.fanout import RunSummary, summary_report
from shared.reports import ActionReport

AUTOMATION = "sg_remediation"
EVENT_REVOKED = "SecurityGroupIngressRevoked"
EVENT_FINDING = "SecurityGroupIngressFinding"
EVENT_GUARD = "SecurityGroupRemediationGuard"
EVENT_FAILED = "SecurityGroupRemediationFailed"

NEXT_STEPS_LEFT_OPEN = "Review the rules above and revoke them, or narrow their source."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _noun(plan: GroupPlan) -> str:
    return "world-open egress rule" if plan.egress else "world-open ingress rule"


def _rules(findings: Sequence[Finding]) -> str:
    return ", ".join(finding.rule.summary() for finding in findings)


def _finding_line(finding: Finding, change: Change | None) -> str:
    line = f"- `{finding.rule.summary()}` (`{finding.rule.rule_id}`): {finding.reason}"
    if change is not None and change.rule_ids and finding.rule.rule_id not in change.rule_ids:
        line += " — existed before this change"
    return line


def _rule_line(rule: Rule, prefix: str = "") -> str:
    return f"- {prefix}`{rule.summary()}` (`{rule.rule_id}`)"


def _change_lines(change: Change | None) -> list[str]:
    if change is None:
        return ["Found by the periodic sweep."]
    where = f" from {change.source_ip}" if change.source_ip else ""
    when = f" at {change.event_time}" if change.event_time else ""
    return [f"Change: **{change.event_name}** by `{change.actor}`{where}{when} (CloudTrail event {change.event_id})."]


def _trigger(change: Change | None) -> str:
    return change.event_name if change else "sweep"


def _finding_dicts(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    return [{**finding.rule.as_report(), "reason": finding.reason} for finding in findings]


@dataclass(frozen=True)
class _Shape:
    """What one report says beyond the common frame."""

    event_type: str
    title: str
    summary: str  # "" = the title
    body: list[str]
    next_steps: list[str]
    related: list[str]
    context: dict[str, Any]
    keywords: list[str] = field(default_factory=list)
    severity: str = "warning"


def _build(shape: _Shape, change: Change | None, mode: str) -> ActionReport:
    return ActionReport(
        automation=AUTOMATION,
        mode=mode,
        title=shape.title,
        description="\n".join([*shape.body, "", *_change_lines(change)]),
        event_type=shape.event_type,
        summary=shape.summary,
        severity=shape.severity,
        next_steps=shape.next_steps,
        keywords=["security-group", *shape.keywords, _trigger(change)],
        related_resources=shape.related,
        context={"trigger": _trigger(change), **shape.context},
    )


# --------------------------------------------------------------------------- one group


def _group_context(group: Group, change: Change | None) -> dict[str, Any]:
    context: dict[str, Any] = {"groupId": group.group_id, "groupName": group.name, "vpcId": group.vpc_id or "",
                               "region": group.region}
    if change is not None:
        context.update(actor=change.actor, sourceIPAddress=change.source_ip or "", eventTime=change.event_time or "",
                       eventId=change.event_id)
    return context


def _group_body(plan: GroupPlan, heading: str, lines: list[str]) -> list[str]:
    group = plan.group
    vpc = f" in `{group.vpc_id}`" if group.vpc_id else ""
    body = [f"Security group `{group.group_id}` **{group.name}**{vpc}, region {group.region}.", "", heading, *lines]
    if plan.allowed_open:
        body += ["", "Left open (allowed public ports):", *(_rule_line(rule) for rule in plan.allowed_open)]
    return body


def revoked_report(
    plan: GroupPlan, revoked: Sequence[str], already_gone: Sequence[str], change: Change | None, mode: str
) -> ActionReport:
    """The rules this run revoked from one group."""
    done = [finding for finding in plan.findings if finding.rule.rule_id in set(revoked)]
    gone = [finding for finding in plan.findings if finding.rule.rule_id in set(already_gone)]
    lines = [_finding_line(finding, change) for finding in done]
    if gone:
        lines += ["", "Already removed before this run could revoke them:", *(_rule_line(f.rule) for f in gone)]
    what = _plural(len(done), _noun(plan))
    return _build(_Shape(
        event_type=EVENT_REVOKED,
        title=f"Closed {what} on {plan.group.label()}",
        summary=f"Revoked {_rules(done)} on {plan.group.label()}",
        body=_group_body(plan, f"Revoked {what}:", lines),
        next_steps=[
            "If a port must be reachable from the internet, add it to allowed_public_ports "
            "(cdk.json automations.sg_remediation) or tag the group to exempt it.",
            "Prefer a narrower source: a known CIDR, a managed prefix list, or a load balancer's security group.",
        ],
        related=[plan.group.arn()],
        keywords=[plan.group.group_id],
        context={**_group_context(plan.group, change), "revokedRules": [f.rule.as_report() for f in done],
                 "alreadyRemoved": list(already_gone)},
    ), change, mode)


def finding_report(plan: GroupPlan, change: Change | None, mode: str, exempt_tag: str) -> ActionReport:
    """World-open rules of one group left in place after an event: report mode or an exempt group."""
    verb = "Would revoke" if mode == "report" and plan.why == "report mode" else "Left open"
    what = _plural(len(plan.findings), _noun(plan))
    return _build(_Shape(
        event_type=EVENT_FINDING,
        title=f"{what} on {plan.group.label()} not revoked: {plan.why}",
        summary=f"{verb}: {_rules(plan.findings)} on {plan.group.label()}",
        body=_group_body(plan, f"{verb} {what} ({plan.why}):", [_finding_line(f, change) for f in plan.findings]),
        next_steps=[NEXT_STEPS_LEFT_OPEN, f"Groups tagged {exempt_tag} are never changed, only reported."],
        related=[plan.group.arn()],
        keywords=[plan.group.group_id],
        context={**_group_context(plan.group, change), "reason": plan.why, "findings": _finding_dicts(plan.findings)},
    ), change, mode)


# --------------------------------------------------------------------------- digests over several groups


def _digest_lines(plans: Sequence[GroupPlan], *, reasons: bool) -> list[str]:
    lines: list[str] = []
    for plan in plans:
        vpc = f", {plan.group.vpc_id}" if plan.group.vpc_id else ""
        lines.append(f"**{plan.group.label()}** ({plan.group.region}{vpc}; {plan.why}):")
        lines += [_finding_line(f, None) if reasons else _rule_line(f.rule) for f in plan.findings]
    return lines


def guard_report(plans: Sequence[GroupPlan], total: int, max_changes: int, change: Change | None,
                 mode: str) -> ActionReport:
    """One summary instead of a report per group when the MAX_CHANGES guard stopped the run."""
    what = _plural(total, "world-open rule")
    return _build(_Shape(
        event_type=EVENT_GUARD,
        title=f"{what} found, above MAX_CHANGES={max_changes}: nothing revoked",
        summary="",
        body=[f"This run found {what} to revoke, more than MAX_CHANGES={max_changes}; it revoked nothing. Check that "
              "allowed_public_ports is what you mean, then raise max_changes or fix the groups.", "",
              *_digest_lines(plans, reasons=False)],
        next_steps=["Check allowed_public_ports and the exempt tag, then raise max_changes or fix the groups by hand."],
        related=[plan.group.arn() for plan in plans],
        keywords=["max-changes"],
        severity="critical",
        context={"maxChanges": str(max_changes), "findings": str(total),
                 "groups": [plan.group.group_id for plan in plans]},
    ), change, mode)


def sweep_findings_report(plans: Sequence[GroupPlan], mode: str, exempt_tag: str) -> ActionReport:
    """One digest per sweep of the world-open rules left in place (report mode, exempt groups).

    A sweep repeats every interval; a report per group each time would flood the chat channel.
    """
    total = sum(len(plan.findings) for plan in plans)
    where = f"{_plural(total, 'world-open rule')} in {_plural(len(plans), 'group')}"
    verb = "would revoke" if mode == "report" else "left open"
    return _build(_Shape(
        event_type=EVENT_FINDING,
        title=f"Sweep: {where} not revoked",
        summary="",
        body=[f"The sweep found {where} that it {verb}:", "", *_digest_lines(plans, reasons=True)],
        next_steps=[NEXT_STEPS_LEFT_OPEN, f"Groups tagged {exempt_tag} are never changed, only reported."],
        related=[plan.group.arn() for plan in plans],
        context={"findings": [
            {"groupId": plan.group.group_id, "groupName": plan.group.name, "vpcId": plan.group.vpc_id or "",
             "region": plan.group.region, "direction": "egress" if plan.egress else "ingress", "reason": plan.why,
             "rules": _finding_dicts(plan.findings)}
            for plan in plans]},
    ), None, mode)


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
    codes = sorted({failure.error_code or "error" for failure in failures})
    groups = _plural(len(failures), "security group")
    body = [f"This run could not remediate {groups} (or region); "
            f"{_plural(left, 'world-open rule')} stay open:", ""]
    for failure in failures:
        body += _failure_lines(failure)
    return _build(_Shape(
        event_type=EVENT_FAILED,
        title=f"Could not remediate {groups}: {', '.join(codes)}",
        summary=f"{left} world-open rules left open; "
                f"{', '.join(failure.group_id or failure.region for failure in failures)} failed",
        body=body,
        next_steps=[
            "Access denied: check the function role's policy, permission boundaries and SCPs for "
            "ec2:RevokeSecurityGroupIngress and the describe calls on these groups.",
            "Until then, revoke the listed rules by hand or narrow their source.",
        ],
        related=[failure.group.arn() for failure in failures if failure.group is not None],
        keywords=["remediation-failed", *codes],
        severity="critical",
        context={"failures": [failure.as_dict() for failure in failures]},
    ), change, mode)


# --------------------------------------------------------------------------- organization-wide

EVENT_SWEEP = "SecurityGroupSweep"
EVENT_REFUSED = "SecurityGroupChangeRefused"
TARGET_REPORTS_MAX = 10  # report titles one target keeps for the run's summary


def target_result(result: Any, mode: str) -> TargetResult:
    """What one (account, region) of an organization-wide sweep keeps for the run's summary: the titles of the
    reports it would have published alone (``runner.Result``)."""
    titles = [held.title for held in result.held]
    changes = len(result.reported) if mode == "report" else len(result.revoked)
    data: dict[str, Any] = {"reports": titles[:TARGET_REPORTS_MAX],
                            "warning": bool(result.failed or result.guard_tripped or result.reported)}
    if len(titles) > TARGET_REPORTS_MAX:
        data["reportsCount"] = len(titles)
    parts = [f"{len(result.revoked)} revoked" if result.revoked else "",
             f"{len(result.reported)} left open" if result.reported else "",
             f"{len(result.failed)} failed" if result.failed else ""]
    detail = ", ".join(part for part in parts if part)
    return TargetResult(changes=changes, detail=f"{result.groups_checked} groups" + (f": {detail}" if detail else ""),
                        data=data)


def sweep_summary_report(summary: RunSummary, mode: str) -> ActionReport | None:
    """The one report of an organization-wide sweep (None when every target was clean)."""
    warned = any(o.data.get("warning") for o in summary.succeeded)
    if not (summary.reportable or warned):
        return None
    lines: list[str] = []
    for outcome in sorted(summary.succeeded, key=lambda o: o.target):
        titles = list(outcome.data.get("reports", []))
        if not titles:
            continue
        more = int(outcome.data.get("reportsCount", len(titles))) - len(titles)
        lines.append(f"- {summary.label(outcome.target.account)} {outcome.target.region}: " + "; ".join(titles)
                     + (f"; and {more} more" if more > 0 else ""))
    accounts = len({t.account for t in summary.targets})
    extra = [f"Sweep at {summary.time:%Y-%m-%d %H:%M} UTC over {accounts} accounts, {len(summary.targets)} targets "
             f"(account and region; mode `{mode}`).", ""]
    if lines:
        extra += ["**Findings**", *lines, ""]
    built = summary_report(summary, mode=mode, event_type=EVENT_SWEEP,
                           what="world-open rules " + ("to revoke" if mode == "report" else "revoked"),
                           extra_lines=extra, next_steps=[NEXT_STEPS_LEFT_OPEN] if warned else [])
    critical = any("Could not remediate" in title or "MAX_CHANGES" in title
                   for o in summary.succeeded for title in o.data.get("reports", []))
    severity = "critical" if critical else ("warning" if warned or summary.changes or built.severity == "warning"
                                            else "info")
    return replace(built, severity=severity, keywords=["security-group", "sweep", "organization"])


def refused_report(change: Change, account: str, why: str, mode: str, *, severity: str) -> ActionReport:
    """A security-group change the function did not act on: its account or region is not a target, or the
    account's member role cannot be assumed."""
    groups = ", ".join(f"`{group_id}`" for group_id in change.group_ids)
    return _build(_Shape(
        event_type=EVENT_REFUSED,
        title=f"Not remediated: {change.event_name} on {', '.join(change.group_ids)} in account {account} "
              f"({change.region})",
        summary="",
        body=[f"A security-group change in account {account}, region {change.region} ({groups}) was not "
              f"checked: {why}."],
        next_steps=["If this account should be covered: add it (or its OU) to project.organization and deploy "
                    "the member stack there; otherwise stop forwarding its events to this bus.",
                    "Check the groups by hand in that account."],
        related=[f"arn:aws:ec2:{change.region}:{account}:security-group/{group_id}" for group_id in change.group_ids],
        keywords=["refused", account],
        severity=severity,
        context={"account": account, "region": change.region, "reason": why, "groupIds": list(change.group_ids),
                 **change.as_report()},
    ), change, mode)
