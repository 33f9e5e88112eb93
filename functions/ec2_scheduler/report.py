"""The run's action report. Pure: builds the message, the handler publishes it."""

from __future__ import annotations

from collections import defaultdict

from ec2_scheduler.plan import KIND_LABEL, Decision
from ec2_scheduler.runner import Outcome, RunResult
from shared.reports import ActionReport
from shared.timeutil import iso

AUTOMATION = "ec2_scheduler"
MAX_LINES = 60  # per section; the rest is counted


def _line(outcome: Outcome) -> str:
    decision = outcome.decision
    text = f"- {KIND_LABEL[decision.resource.kind]} `{decision.resource.label}`: {decision.reason}"
    if decision.hibernate and outcome.status in ("stopped", "would-stop") and not outcome.detail:
        text += " (hibernated)"
    if outcome.detail:
        text += f" — {outcome.detail}"
    return text


def _section(title: str, lines: list[str]) -> list[str]:
    if not lines:
        return []
    shown = lines[:MAX_LINES]
    if len(lines) > MAX_LINES:
        shown.append(f"- … and {len(lines) - MAX_LINES} more")
    return [f"**{title}** ({len(lines)})", *shown, ""]


def _problem_lines(problems: list[Decision]) -> list[str]:
    """One line per distinct problem, naming every resource it affects (reported once per run)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for decision in problems:
        grouped[decision.reason].append(f"`{decision.resource.label}`")
    return [f"- {reason}: {', '.join(labels)}" for reason, labels in sorted(grouped.items())]


def _title(result: RunResult) -> str:
    started = result.with_status("started", "would-start")
    stopped = result.with_status("stopped", "would-stop")
    verb_start, verb_stop = ("would start", "would stop") if result.mode == "report" else ("started", "stopped")
    counted = [
        (started, f"{verb_start} {len(started)}"),
        (stopped, f"{verb_stop} {len(stopped)}"),
        (result.refused, f"refused {len(result.with_status('refused'))} changes (MAX_CHANGES={result.max_changes})"),
        (result.failed, f"{len(result.failed)} failed"),
        (result.problems, f"{len(result.problems)} with schedule problems"),
        (result.bounced, f"{len(result.bounced)} starts did not hold"),
        (result.region_errors, f"{len(result.region_errors)} regions not described"),
        (result.source_problems, f"{len(result.source_problems)} schedule sources not read"),
        (result.aborted, "aborted"),
    ]
    return "EC2/RDS scheduler: " + (", ".join(text for present, text in counted if present) or "no changes")


def _description(result: RunResult) -> str:
    started = result.with_status("started", "would-start")
    stopped = result.with_status("stopped", "would-stop")
    refused = result.with_status("refused")
    lines = [f"Run at {iso(result.now)} in {', '.join(result.regions)} (mode `{result.mode}`).", ""]
    if result.refused:
        lines += [f"This run would change {len(refused)} resources, more than MAX_CHANGES={result.max_changes}: "
                  "it changed nothing.", ""]
    lines += _section("Would start" if result.mode == "report" else "Started", [_line(o) for o in started])
    lines += _section("Would stop" if result.mode == "report" else "Stopped", [_line(o) for o in stopped])
    lines += _section("Refused (MAX_CHANGES)", [_line(o) for o in refused])
    lines += _section("Failed", [_line(o) for o in result.failed])
    lines += _section("Started but went back to stopped", [
        f"- {KIND_LABEL[d.resource.kind]} `{d.resource.label}`: {d.reason}" for d in result.bounced])
    lines += _section("Regions not scheduled in this run (could not be described)", [
        f"- {region}: {why}" for region, why in sorted(result.region_errors.items())])
    lines += _section("Schedule sources not read (the run used what is said)", [
        f"- {source}: {why}" for source, why in sorted(result.source_problems.items())])
    lines += _section("Left alone: schedule problems", _problem_lines(result.problems))
    if result.aborted:
        lines += [f"**Aborted**: {result.aborted}. The function is retried; what was done is recorded.", ""]
    return "\n".join(lines).strip()


def _next_steps(result: RunResult) -> list[str]:
    steps = [
        (result.problems, "Fix the Schedule tag values or the schedules in cdk.json (automations.ec2_scheduler."
                          "schedules); these resources are left alone until then."),
        (result.failed, "Failed resources are retried at the next run; check their state and the error."),
        (result.bounced, "An instance that goes back to stopped after a start usually cannot decrypt an EBS "
                         "volume: add its customer-managed KMS key to kms_key_arns (kms:CreateGrant), or see its "
                         "StateReason. The <tag_key>Error tag on it says what failed."),
        (result.region_errors, "Check that the regions are enabled for the account and that no SCP denies "
                               "ec2:DescribeInstances there; the other regions were scheduled."),
        (result.source_problems, "Fix the schedules parameter's value (`opsauto schedules validate --parameter "
                                 "NAME`) or the calendar named (does it exist, may the function read it?)."),
        (result.refused, "Raise max_changes if this many changes are expected, or check the schedules and tags."),
        (result.mode == "report" and result.with_status("would-start", "would-stop"),
         "Set mode to enforce to act on these."),
    ]
    return [text for present, text in steps if present]


def build_report(result: RunResult) -> ActionReport:
    started = result.with_status("started", "would-start")
    stopped = result.with_status("stopped", "would-stop")
    warning = result.failed or result.problems or result.aborted or result.bounced or result.region_errors \
        or result.refused or result.source_problems
    resources = [o.resource.arn or o.resource.id for o in result.outcomes]
    resources += [d.resource.arn or d.resource.id for d in result.problems + result.bounced]
    title = _title(result)
    return ActionReport(
        automation=AUTOMATION,
        mode=result.mode,
        title=title,
        description=_description(result),
        event_type="ScheduledStartStop",
        summary=title,
        severity="warning" if warning else "info",
        next_steps=_next_steps(result),
        keywords=["ec2", "rds", "schedule"],
        related_resources=resources,
        context={
            "time": iso(result.now),
            "regions": list(result.regions),
            "started": [o.resource.id for o in started],
            "stopped": [o.resource.id for o in stopped],
            "failed": {o.resource.id: o.detail for o in result.failed},
            "problems": {d.resource.id: d.reason for d in result.problems},
            "refused": result.refused,
            "bounced": {d.resource.id: d.bounced for d in result.bounced},
            "regionErrors": dict(result.region_errors),
            "sourceProblems": dict(result.source_problems),
        },
    )
