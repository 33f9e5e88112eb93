"""The run's action report. Pure: builds the message, the handler publishes it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from ec2_scheduler.plan import KIND_LABEL, Decision
from ec2_scheduler.runner import Outcome, RunResult
from shared.fanout import Result as TargetResult
from shared.fanout import RunSummary, TargetOutcome, summary_report
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


# --------------------------------------------------------------------------- organization-wide runs

TARGET_LIST_MAX = 15  # ids per list kept for the run's summary (the run table keeps a few KB per target)


def _short(decision: Decision) -> str:
    """The resource without its region (the target's line names it)."""
    resource = decision.resource
    return resource.id + (f" ({resource.name})" if resource.name else "")


def _ids(outcomes: list[Outcome]) -> list[str]:
    return [_short(o.decision) for o in outcomes]


def target_result(result: RunResult) -> TargetResult:
    """What one (account, region) of an organization-wide run keeps for the run's summary."""
    started = result.with_status("started", "would-start")
    stopped = result.with_status("stopped", "would-stop")
    lists = {
        "started": _ids(started),
        "stopped": _ids(stopped),
        "refused": _ids(result.with_status("refused")),
        "failed": [f"{_short(o.decision)}: {o.detail}" for o in result.failed],
        "bounced": [_short(d) for d in result.bounced],
        "problems": [f"{_short(d)}: {d.reason}" for d in result.problems],
    }
    data: dict[str, object] = {key: values[:TARGET_LIST_MAX] for key, values in lists.items() if values}
    data.update({f"{key}Count": len(values) for key, values in lists.items() if len(values) > TARGET_LIST_MAX})
    data["warning"] = bool(result.failed or result.problems or result.bounced or result.refused)
    detail = _title(result).removeprefix("EC2/RDS scheduler: ")
    return TargetResult(changes=len(started) + len(stopped), detail="" if detail == "no changes" else detail,
                        data=data)


_TARGET_WORDS = {
    "enforce": {"started": "started", "stopped": "stopped"},
    "report": {"started": "would start", "stopped": "would stop"},
}
_LIST_WORDS = {"refused": "refused (MAX_CHANGES)", "failed": "failed", "bounced": "started but went back to stopped",
               "problems": "left alone (schedule problems)"}


def _target_line(summary: RunSummary, outcome: TargetOutcome, mode: str) -> str | None:
    words = {**_TARGET_WORDS[mode], **_LIST_WORDS}
    parts = []
    for key, word in words.items():
        values = outcome.data.get(key)
        if not values:
            continue
        more = int(outcome.data.get(f"{key}Count", len(values))) - len(values)
        listed = ", ".join(f"`{value}`" for value in values) + (f" and {more} more" if more > 0 else "")
        parts.append(f"{word} {listed}")
    if not parts:
        return None
    return f"- {summary.label(outcome.target.account)} {outcome.target.region}: " + "; ".join(parts)


def run_summary_report(summary: RunSummary, mode: str) -> ActionReport | None:
    """The one report of an organization-wide run: every target's changes and problems, every failed target,
    the accounts left out. None when nothing changed (or would), failed or needs a look."""
    warned = any(o.data.get("warning") for o in summary.succeeded)
    if not (summary.reportable or warned):
        return None
    lines = [line for o in sorted(summary.succeeded, key=lambda o: o.target)
             if (line := _target_line(summary, o, mode)) is not None]
    accounts = len({t.account for t in summary.targets})
    extra = [f"Run at {iso(summary.time)} over {accounts} accounts, {len(summary.targets)} targets (account and "
             f"region; mode `{mode}`).", ""]
    if lines:
        extra += ["**Changes and problems**", *lines, ""]
    steps = []
    if warned:
        steps.append("Resources that failed or were left alone are retried at the next run; see each line above "
                     "and the function's logs for the run id.")
    if mode == "report" and summary.changes:
        steps.append("Set mode to enforce to act on these.")
    report = summary_report(summary, mode=mode, event_type="ScheduledStartStop",
                            what="instances and databases " + ("to start or stop" if mode == "report"
                                                               else "started or stopped"),
                            extra_lines=extra, next_steps=steps)
    return replace(report, severity="warning" if warned or report.severity == "warning" else "info",
                   keywords=["ec2", "rds", "schedule", "organization"])
