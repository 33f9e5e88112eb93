"""The stale-key sweep: gather every user's keys, decide (``policy``), act within the guard, report.

AWS calls go through ``SweepAdapter`` (``aws.Aws``); decisions are ``policy.decide`` / ``policy.plan``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from key_rotation import policy
from key_rotation.policy import Action, Decision, KeyFacts, Managed, Plan, Thresholds
from key_rotation.rotation import AccessKey, SecretState, current_since, precise
from shared.reports import ActionReport
from shared.timeutil import iso

AUTOMATION = "key_rotation"


class SweepAdapter(Protocol):
    def iter_users(self) -> Iterator[dict[str, Any]]: ...
    def list_keys(self, user_name: str) -> list[AccessKey]: ...
    def last_used(self, key_id: str) -> datetime | None: ...
    def user_tags(self, user_name: str) -> dict[str, str]: ...
    def group_members(self, group_name: str) -> set[str]: ...
    def secret_state(self, secret_id: str) -> SecretState: ...
    def deactivate_key(self, user_name: str, key_id: str) -> None: ...
    def delete_key(self, user_name: str, key_id: str) -> None: ...
    def tag_user(self, user_name: str, tags: dict[str, str]) -> None: ...
    def untag_user(self, user_name: str, keys: list[str]) -> None: ...


@dataclass(frozen=True)
class SweepSettings:
    mode: str
    thresholds: Thresholds
    max_changes: int
    exempt_group: str = ""
    exempt_tag: tuple[str, str] | None = None
    managed_secrets: Mapping[str, str] = field(default_factory=dict)  # user name -> secret ARN


@dataclass
class SweepResult:
    plan: Plan
    done: list[Decision]
    users: int
    keys: int
    notes: list[str]

    def counts(self) -> dict[str, int]:
        done_ids = {d.key.key_id for d in self.done}
        return {
            "users": self.users,
            "keys": self.keys,
            "warned": self.plan.count(Action.WARN),
            "held": self.plan.count(Action.HOLD),
            "deactivated": sum(1 for d in self.done if d.action is Action.DEACTIVATE),
            "deleted": sum(1 for d in self.done if d.action is Action.DELETE),
            "would_change": sum(1 for d in self.plan.decisions if d.is_change and d.key.key_id not in done_ids),
        }


def _managed(aws: SweepAdapter, settings: SweepSettings, notes: list[str]) -> dict[str, Managed]:
    """Each managed user's AWSCURRENT / AWSPENDING key, read from the secret itself (its tags only say since when)."""
    managed: dict[str, Managed] = {}
    for user, secret in settings.managed_secrets.items():
        try:
            state = aws.secret_state(secret)
        except LookupError as exc:
            notes.append(f"{exc}: keys of {user} are left alone")
            managed[user] = Managed(secret)
            continue
        recorded_key, since = current_since(state.tags)
        if state.current_key_id and recorded_key != state.current_key_id:
            notes.append(f"the rotation record on {secret} names key {recorded_key or '(none)'}, its AWSCURRENT "
                         f"holds {state.current_key_id}: the other keys of {user} are kept until a rotation step "
                         "records it again")
            since = None
        managed[user] = Managed(secret, state.current_key_id, since, state.pending_key_id)
    return managed


def run_sweep(aws: SweepAdapter, settings: SweepSettings, now: datetime) -> SweepResult:
    notes: list[str] = []
    managed = _managed(aws, settings, notes)
    exempt_members: set[str] = set()
    if settings.exempt_group:
        try:
            exempt_members = aws.group_members(settings.exempt_group)
        except LookupError as exc:
            notes.append(f"{exc}: no user is exempt by group")

    decisions: list[Decision] = []
    users = 0
    for iam_user in aws.iter_users():
        users += 1
        name = str(iam_user["UserName"])
        keys = aws.list_keys(name)
        if not keys:
            continue
        tags = aws.user_tags(name)
        records = policy.deactivations(tags)
        exempt = name in exempt_members
        if not exempt and settings.exempt_tag is not None:
            tag_key, tag_value = settings.exempt_tag
            exempt = tags.get(tag_key) == tag_value
        for key in keys:
            facts = KeyFacts(name, str(iam_user.get("Arn", name)), key.key_id, key.status, key.created,
                             aws.last_used(key.key_id), records.get(key.key_id))
            decisions.append(
                policy.decide(facts, now=now, thresholds=settings.thresholds, managed=managed.get(name), exempt=exempt)
            )
    plan = policy.plan(decisions, mode=settings.mode, max_changes=settings.max_changes)
    done: list[Decision] = []
    for decision in plan.execute:
        _carry_out(aws, decision, now)
        done.append(decision)
    return SweepResult(plan, done, users, sum(1 for _ in decisions), notes)


def _carry_out(aws: SweepAdapter, decision: Decision, now: datetime) -> None:
    user, key_id = decision.key.user_name, decision.key.key_id
    if decision.action is Action.DEACTIVATE:
        # The record first: a key switched off without it could be taken for one someone else deactivated.
        aws.tag_user(user, {policy.deactivation_tag(key_id): precise(now)})
        aws.deactivate_key(user, key_id)
    elif decision.action is Action.DELETE:
        aws.delete_key(user, key_id)
        if decision.key.deactivated_at is not None:
            aws.untag_user(user, [policy.deactivation_tag(key_id)])


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


def build_report(result: SweepResult, now: datetime) -> ActionReport | None:
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
        f"{counts['held']} kept for a look, {counts['warned']} old."
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
                 "done": d.key.key_id in done_ids, "ageDays": d.age_days}
                for d in reportable
            ][:200],
        },
    )
