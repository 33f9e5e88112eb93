"""The action reports: one per rotation that changed keys, one per sweep that has something to say."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from key_rotation.policy import Action, Decision
from key_rotation.rotation import RotationEvent, StepResult
from shared.reports import ActionReport
from shared.timeutil import iso

if TYPE_CHECKING:
    from key_rotation.runner import SweepResult

AUTOMATION = "key_rotation"
# What one account's lines may take in an organization-wide run's table entry (``shared.fanout.MAX_DATA_BYTES``).
ACCOUNT_LINES_CHARS = 3_000
_ORDER = {Action.DELETE: 0, Action.DEACTIVATE: 1, Action.HOLD: 2, Action.WARN: 3}


def rotation_report(event: RotationEvent, result: StepResult, *, grace_days: int, now: datetime) -> ActionReport | None:
    """``AccessKeyDeleted`` (createSecret made room) or ``AccessKeyRotated`` (finishSecret moved AWSCURRENT)."""
    if result.step == "createSecret" and result.deleted_key_ids:
        deleted = ", ".join(f"`{key_id}`" for key_id in result.deleted_key_ids)
        return ActionReport(
            automation=AUTOMATION, mode="enforce",
            title=f"Deleted {len(result.deleted_key_ids)} never-current or inactive key(s) to rotate",
            description=f"Rotation of `{event.secret_id}`: IAM allows two keys per user. Deleted {deleted} "
            "(inactive and not AWSCURRENT, or created by an earlier rotation that never finished) and created "
            f"key `{result.new_key_id}` as AWSPENDING.",
            event_type="AccessKeyDeleted", related_resources=[event.secret_id], keywords=["iam", "rotation"],
            context={"secretId": event.secret_id, "deletedKeyIds": list(result.deleted_key_ids),
                     "newKeyId": result.new_key_id},
        )
    if result.step == "finishSecret" and result.outcome == "finished":
        return ActionReport(
            automation=AUTOMATION, mode="enforce",
            title=f"Rotated access key: {result.new_key_id} is now current",
            description=f"Secret `{event.secret_id}`: AWSCURRENT now holds key `{result.new_key_id}`. "
            f"The previous key `{result.old_key_id or '(none)'}` stays active for {grace_days} days; the daily "
            "sweep deactivates it after that, unless it is still used.",
            event_type="AccessKeyRotated", related_resources=[event.secret_id], keywords=["iam", "rotation"],
            context={"secretId": event.secret_id, "newKeyId": result.new_key_id, "previousKeyId": result.old_key_id,
                     "at": iso(now)},
        )
    return None


_VERBS = {
    Action.WARN: "old key",
    Action.HOLD: "kept (needs a look)",
    Action.DEACTIVATE: "deactivated",
    Action.DELETE: "deleted",
}
_WOULD = {Action.DEACTIVATE: "would deactivate", Action.DELETE: "would delete"}


def _line(decision: Decision, done_ids: set[str]) -> str:
    verb = _VERBS[decision.action]
    if decision.is_change and decision.key.key_id not in done_ids:
        verb = _WOULD[decision.action]
    tags = "".join([" [managed]" if decision.managed else "", " [exempt]" if decision.exempt else ""])
    return f"- **{verb}** `{decision.key.user_name}` `{decision.key.key_id}`{tags}: {decision.reason}"


def sweep_lines(result: SweepResult) -> dict[str, object]:
    """One account's report lines for an organization-wide run: ``{"lines": [...], "more": n}``, the changes
    first, cut at ``ACCOUNT_LINES_CHARS``; the notes of the sweep (a missing exempt group ...) lead."""
    done_ids = {d.key.key_id for d in result.done}
    ordered = sorted(result.plan.reportable, key=lambda d: (_ORDER[d.action], d.key.user_name))
    every = [*(f"- {note}" for note in result.notes), *(_line(d, done_ids) for d in ordered)]
    lines: list[str] = []
    used = 0
    for line in every:
        if used + len(line) > ACCOUNT_LINES_CHARS:
            break
        lines.append(line)
        used += len(line)
    return {"lines": lines, "more": len(every) - len(lines)}


def sweep_report(result: SweepResult, now: datetime) -> ActionReport | None:
    """One action report per run; None when no key needs a word."""
    plan = result.plan
    reportable = plan.reportable
    if not reportable and not result.notes:
        return None
    counts = result.counts()
    done_ids = {d.key.key_id for d in result.done}
    order = {Action.DELETE: 0, Action.DEACTIVATE: 1, Action.HOLD: 2, Action.WARN: 3}
    lines = [_line(d, done_ids) for d in sorted(reportable, key=lambda d: (order[d.action], d.key.user_name))]
    header = (
        f"Sweep at {iso(now)} over {counts['users']} users and {counts['keys']} keys: "
        f"{counts['deactivated']} deactivated, {counts['deleted']} deleted, {counts['would_change']} "
        f"{'reported instead of changed' if plan.mode == 'enforce' else 'would be changed in enforce mode'}, "
        f"{counts['held']} kept for a look, {counts['warned']} to review (last use from "
        f"{result.last_use_source})."
    )
    if plan.guard_tripped:
        header += (
            f"\n\n**Guard:** {sum(1 for d in plan.decisions if d.is_change and not d.exempt)} changes exceed "
            "MAX_CHANGES; nothing was changed. Review the list, then raise `max_changes` or act by hand."
        )
    description = "\n".join([header, "", *result.notes, *lines])
    severity = "warning" if (plan.guard_tripped or counts["held"] or counts["deactivated"] or counts["deleted"]) \
        else "info"
    next_steps = []
    if counts["held"]:
        next_steps.append("Find the readers of the kept keys (CloudTrail: events by access key id) and move them "
                          "to the secret's AWSCURRENT value.")
    if plan.mode == "report" and counts["would_change"]:
        next_steps.append("Set key_rotation.mode to 'enforce' to deactivate and delete these keys automatically.")
    if plan.guard_tripped:
        next_steps.append("Raise key_rotation.max_changes if this many changes are expected.")
    return ActionReport(
        automation=AUTOMATION,
        mode=plan.mode,
        title=f"Access keys: {counts['deactivated']} deactivated, {counts['deleted']} deleted, "
        f"{counts['would_change']} to change, {counts['held'] + counts['warned']} to review",
        description=description,
        event_type="StaleAccessKeySweep",
        severity=severity,
        next_steps=next_steps,
        keywords=["iam", "access-keys"],
        related_resources=[d.key.user_arn for d in reportable],
        context={
            "counts": counts,
            "guardTripped": plan.guard_tripped,
            "keys": [
                {"user": d.key.user_name, "accessKeyId": d.key.key_id, "action": str(d.action),
                 "done": d.key.key_id in done_ids, "ageDays": d.age_days, "owner": d.key.owner,
                 "due": iso(d.due) if d.due else None, "dueAction": str(d.due_action) if d.due_action else None}
                for d in reportable
            ][:200],
        },
    )


def owner_report(owner: str, decisions: list[Decision], result: SweepResult, now: datetime, *,
                 account: str = "", account_label: str = "") -> ActionReport:
    """The notice to one owner: only their users' keys that need a word, with what happens and when.
    ``account`` (organization-wide sweeps: its id, and ``account_label`` with its name) is the users' account."""
    done_ids = {d.key.key_id for d in result.done}
    order = {Action.DELETE: 0, Action.DEACTIVATE: 1, Action.HOLD: 2, Action.WARN: 3}
    lines = [_line(d, done_ids) for d in sorted(decisions, key=lambda d: (order[d.action], d.key.user_name))]
    users = sorted({d.key.user_name for d in decisions})
    changed = sum(1 for d in decisions if d.key.key_id in done_ids)
    return ActionReport(
        automation=AUTOMATION,
        mode=result.plan.mode,
        title=f"Access keys you own: {len(decisions)} need attention ({', '.join(users)[:80]})",
        description="\n".join([f"Sweep at {iso(now)}: keys of IAM users tagged as yours ({owner})"
                               f"{f' in account {account_label or account}' if account else ''}.", "", *lines]),
        event_type="AccessKeyOwnerNotice",
        severity="warning" if changed or any(d.action is not Action.WARN for d in decisions) else "info",
        next_steps=["Rotate a key in use before it is deactivated; delete keys you no longer need."],
        keywords=["iam", "access-keys", "owner"],
        related_resources=sorted({d.key.user_arn for d in decisions}),
        context={"owner": owner, **({"account": account} if account else {}), "keys": [
            {"user": d.key.user_name, "accessKeyId": d.key.key_id, "action": str(d.action),
             "done": d.key.key_id in done_ids, "ageDays": d.age_days,
             "due": iso(d.due) if d.due else None, "dueAction": str(d.due_action) if d.due_action else None}
            for d in decisions][:200]},
    )
