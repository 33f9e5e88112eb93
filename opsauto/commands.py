"""The subcommands: each takes the project and the AWS adapter and returns plain data (printed by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsauto.aws import AWS_ERRORS, Aws, Deployed, Queue, dashboard_url
from opsauto.project import OpsautoError, Project

__all__ = ["AWS_ERRORS", "Aws", "Project", "kept", "replay", "status"]
from opsauto.records import Kept, describe_message

LIST_VISIBILITY_SECONDS = 30  # listing hides messages this long at most; they are released right after
REPLAY_VISIBILITY_SECONDS = 120


def status(project: Project, aws: Aws, now: datetime | None = None) -> dict[str, Any]:
    """Every automation: deployed, enabled, mode, activity of the last 24 h, kept messages, firing alarms."""
    rows: list[dict[str, Any]] = []
    for automation in project.automations():
        deployed = aws.deployed(automation.stack_name)
        row: dict[str, Any] = {
            "automation": automation.name, "stack": automation.stack_name, "enabled": automation.enabled,
            "deployed": deployed is not None, "stack_status": deployed.status if deployed else None,
            "mode": automation.mode, "functions": [], "kept": 0, "alarms_firing": [], "dashboards": [],
            "invocations_24h": None, "errors_24h": None, "last_invocation": None, "last_result": None,
        }
        if deployed is not None:
            _fill(row, deployed, aws, now)
        rows.append(row)
    unhealthy = [r["automation"] for r in rows if r["kept"] or r["alarms_firing"]]
    core = aws.deployed(f"{project.prefix}-core")
    overview = [dashboard_url(aws.region, name) for name in core.dashboards] if core else []
    return {"region": aws.region, "prefix": project.prefix, "automations": rows, "unhealthy": unhealthy,
            "overview": overview}


def _fill(row: dict[str, Any], deployed: Deployed, aws: Aws, now: datetime | None) -> None:
    modes = {f.mode for f in deployed.functions if f.mode}
    if modes:
        row["mode"] = ",".join(sorted(modes))
    totals = {"invocations_24h": 0, "errors_24h": 0}
    last: datetime | None = None
    last_result = None
    for function in deployed.functions:
        activity = aws.activity(function.name, now)
        row["functions"].append({"name": function.name, **_public_activity(activity)})
        totals["invocations_24h"] += activity["invocations_24h"]
        totals["errors_24h"] += activity["errors_24h"]
        if activity["last_invocation"] is not None and (last is None or activity["last_invocation"] > last):
            last, last_result = activity["last_invocation"], activity["last_result"]
    row.update(totals)
    row["last_invocation"] = _iso(last)
    row["last_result"] = last_result
    row["kept"] = sum(q.depth + q.in_flight for q in deployed.kept_queues)
    row["kept_queues"] = [{"queue": q.url.rsplit("/", 1)[-1], "kind": q.kind, "messages": q.depth + q.in_flight}
                          for q in deployed.kept_queues]
    row["alarms_firing"] = [a["name"] for a in deployed.alarms if a["state"] == "ALARM"]
    row["dashboards"] = [dashboard_url(aws.region, name) for name in deployed.dashboards]


def _public_activity(activity: dict[str, Any]) -> dict[str, Any]:
    return {**activity, "last_invocation": _iso(activity["last_invocation"])}


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _deployed(project: Project, aws: Aws, name: str) -> Deployed:
    automation = project.automation(name)
    deployed = aws.deployed(automation.stack_name)
    if deployed is None:
        raise OpsautoError(f"{name}: stack {automation.stack_name} is not deployed in {aws.region}")
    return deployed


def kept(project: Project, aws: Aws, name: str, limit: int = 100) -> list[Kept]:
    """What the automation's failure and dead-letter queues hold (read, then released at once)."""
    deployed = _deployed(project, aws, name)
    found: list[Kept] = []
    for queue in deployed.kept_queues:
        messages = aws.receive(queue, max(0, limit - len(found)), LIST_VISIBILITY_SECONDS)
        try:
            found.extend(describe_message(m, queue.url, queue.kind) for m in messages)
        finally:
            aws.release(queue.url, [m["ReceiptHandle"] for m in messages])
        if len(found) >= limit:
            break
    return found


@dataclass
class Replayed:
    kept: Kept
    outcome: str  # "replayed", "would replay", "refused", "failed"
    detail: str


def replay(project: Project, aws: Aws, name: str, *, dry_run: bool = False, limit: int = 10) -> list[Replayed]:
    """Send kept events back, one by one: a failure record is invoked again asynchronously with its original
    payload, a dead-lettered message is sent back to its source queue. Each kept message is deleted only
    after the function (or the queue) accepted it; anything else is released for a later try."""
    deployed = _deployed(project, aws, name)
    ours = {f.arn for f in deployed.functions}
    results: list[Replayed] = []
    for queue in deployed.kept_queues:
        if len(results) >= limit:
            break
        messages = aws.receive(queue, limit - len(results), LIST_VISIBILITY_SECONDS if dry_run
                               else REPLAY_VISIBILITY_SECONDS)
        unreleased: list[str] = []
        for message in messages:
            item = describe_message(message, queue.url, queue.kind)
            outcome = _replay_one(aws, queue, item, ours, dry_run)
            results.append(outcome)
            if outcome.outcome == "replayed":
                aws.delete(queue.url, item.receipt_handle)
            else:
                unreleased.append(item.receipt_handle)
        aws.release(queue.url, unreleased)
    return results


def _replay_one(aws: Aws, queue: Queue, item: Kept, ours: set[str], dry_run: bool) -> Replayed:
    if item.kind in ("failure", "undelivered"):
        target = _unqualified(item.function_arn or queue.function_arn or "")
        if target not in ours:
            return Replayed(item, "refused", f"the record names {item.function_arn!r}, not a function of this stack")
        if dry_run:
            return Replayed(item, "would replay", f"invoke {target} (asynchronous) with the original event")
        try:
            code = aws.invoke_async(target, item.payload)
        except Exception as exc:
            return Replayed(item, "failed", f"invoke: {exc}")
        if code != 202:
            return Replayed(item, "failed", f"invoke returned status {code}; kept")
        return Replayed(item, "replayed", f"invoked {target}")
    if queue.source_url is None:
        return Replayed(item, "refused", "no source queue known for this dead-letter queue")
    if dry_run:
        return Replayed(item, "would replay", f"send back to {queue.source_url.rsplit('/', 1)[-1]}")
    try:
        message_id = aws.send(queue.source_url, str(item.payload), item.message_attributes)
    except Exception as exc:
        return Replayed(item, "failed", f"send: {exc}")
    return Replayed(item, "replayed", f"sent to {queue.source_url.rsplit('/', 1)[-1]} as {message_id}")


def _unqualified(arn: str) -> str:
    parts = arn.split(":")
    return ":".join(parts[:7]) if len(parts) == 8 else arn

