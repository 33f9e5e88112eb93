"""The stale-key sweep organization-wide: one work item per account through the fan-out, against moto.

The Organization (tests/functions/shared/org_world.py): OU prod holds alpha (member role) and gamma (member role,
suspended); OU dev holds beta (no member role: the StackSet has not reached it). The hub (the function's own
account) is listed explicitly and holds the managed user ``ci-deployer`` and its secret. Every account has an old
key of a user named ``ci-deployer``: managed only in the hub, where its secret is; in the members it is an ordinary
user. IAM is global: one target per account, in the function's own region (the stack leaves ``REGIONS`` unset).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.iam.models import iam_backends

from key_rotation import handler
from shared.fanout import WorkItem
from shared.timeutil import iso
from tests.conftest import load_event
from tests.functions.key_rotation.conftest import REGION, Env
from tests.functions.shared.org_world import HUB, OrgWorld, refuse_missing_roles
from tests.functions.shared.test_fanout import create_run_table, drain
from tests.lifetime.kit import Fault, FaultInjector, LambdaRuntime

ROLE = "opsauto-member-key-rotation"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=100)  # every key made at T0 is past deactivate_after_days (90)
OLD_USER = "ci-deployer"


@dataclass
class Org:
    env: Env
    world: OrgWorld
    accounts: dict[str, str]
    prod: str
    dev: str
    queue_url: str
    faults: FaultInjector
    keys: dict[str, str]  # account -> the old key of its ci-deployer user

    def old_key(self, account: str, *, owner: str | None = None) -> str:
        """A ``ci-deployer`` user in ``account`` with one key made at T0 (never used)."""
        iam = self.iam(account)
        iam.create_user(UserName=OLD_USER, Tags=[{"Key": "Owner", "Value": owner}] if owner else [])
        key_id = str(iam.create_access_key(UserName=OLD_USER)["AccessKey"]["AccessKeyId"])
        for key in iam_backends[account]["aws"].users[OLD_USER].access_keys:
            key.create_date = T0
        self.keys[account] = key_id
        return key_id

    def iam(self, account: str) -> Any:
        return boto3.client("iam", region_name=REGION) if account == HUB else self.world.client("iam", account, REGION)

    def status(self, account: str) -> dict[str, str]:
        metadata = self.iam(account).list_access_keys(UserName=OLD_USER)["AccessKeyMetadata"]
        return {k["AccessKeyId"]: k["Status"] for k in metadata}

    def run(self, when: datetime, run_id: str) -> tuple[dict[str, Any], list[WorkItem], LambdaRuntime]:
        """The scheduled invocation, then every work item through the event source mapping."""
        event = load_event("key_rotation/scheduled_event.json")
        event["time"], event["id"] = iso(when), run_id
        runtime = LambdaRuntime(handler.handler, function_name="opsauto-key-rotation", max_receive_count=3)
        with self.faults.active():
            dispatched = runtime.invoke(event)
            bodies = drain(self.queue_url)
            runtime.deliver_sqs(bodies)
        return dispatched, [WorkItem.from_json(b, "key_rotation") for b in bodies], runtime

    def summaries(self) -> list[dict[str, Any]]:
        """The ops topic's messages since the last call: the runs' summaries, and nothing else (no report per
        account)."""
        messages = self.env.reports()
        assert [m["metadata"]["eventType"] for m in messages] == ["StaleAccessKeySweep"] * len(messages)
        return messages


@pytest.fixture
def org(aws: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    with FaultInjector() as faults:
        world = OrgWorld(REGION)
        prod, dev = world.ou("prod"), world.ou("dev")
        accounts = {
            "alpha": world.account("alpha", prod, member_roles=(ROLE,)),
            "beta": world.account("beta", dev),
            "gamma": world.account("gamma", prod, member_roles=(ROLE,)),
        }
        world.suspend(accounts["gamma"])
        refuse_missing_roles(faults)
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(
            QueueName="opsauto-key-rotation-work")["QueueUrl"]
        secret = aws.managed_secret(OLD_USER)
        for name, value in {
            "TARGET_ACCOUNTS": f"organization,{HUB}", "TARGET_OUS": f"{prod},{dev}", "MEMBER_ROLE_NAME": ROLE,
            "WORK_QUEUE_URL": queue_url, "RUN_TABLE_NAME": create_run_table(),
            "WORK_MAX_RECEIVES": "3", "RUN_DEADLINE_SECONDS": "3600", "MODE": "enforce",
            "MANAGED_SECRETS": json.dumps({OLD_USER: secret}),
        }.items():
            monkeypatch.setenv(name, value)
        state = Org(aws, world, accounts, prod, dev, queue_url, faults, {})
        for account in (HUB, accounts["alpha"], accounts["beta"]):
            state.old_key(account, owner="ops@example.com" if account == accounts["alpha"] else None)
        yield state


def test_one_item_per_account_and_one_summary_naming_every_account(org: Org) -> None:
    alpha, beta, gamma = org.accounts["alpha"], org.accounts["beta"], org.accounts["gamma"]

    dispatched, items, runtime = org.run(NOW, "sweep-1")

    # IAM is global: one target per account, in the hub's region; the suspended account is left out.
    assert dispatched["targets"] == 3 and dispatched["skipped"] == {gamma: "SUSPENDED"}
    assert sorted(item.target.key for item in items) == sorted(f"{a}:{REGION}" for a in (HUB, alpha, beta))
    assert {item.time for item in items} == {NOW}
    assert runtime.dead_letters == []  # a missing member role is permanent: named, not retried
    # alpha's ci-deployer is an ordinary user there: its old, unused key is deactivated (enforce).
    assert org.status(alpha) == {org.keys[alpha]: "Inactive"}
    # In the hub it is the managed user: its secret was never rotated, so its keys are only reported.
    assert org.status(HUB) == {org.keys[HUB]: "Active"}
    assert org.status(beta) == {org.keys[beta]: "Active"}  # not reached

    [summary] = org.summaries()
    text = summary["content"]["description"]
    assert summary["content"]["title"] == ("key_rotation: 1 access keys changed or to change across 3 accounts, "
                                           "3 targets, 1 failed")
    assert summary["metadata"]["additionalContext"]["severity"] == "warning"
    assert f"- {beta} (beta) {REGION}: account {beta}: cannot assume arn:aws:iam::{beta}:role/{ROLE}" in text
    assert f"{gamma} (gamma) SUSPENDED" in text
    assert f"**{alpha} (alpha)**" in text and f"- **deactivated** `{OLD_USER}` `{org.keys[alpha]}`" in text
    assert f"`{OLD_USER}` `{org.keys[HUB]}` [managed]" in text
    assert f"- {alpha} (alpha): {REGION} (1 users, 1 keys: 1 deactivated" in text
    assert json.loads(summary["metadata"]["additionalContext"]["failed"]) == [f"{beta}:{REGION}"]


def test_owner_notices_name_the_users_account(org: Org) -> None:
    org.run(NOW, "sweep-1")
    [notice] = org.env.owners.messages()
    alpha = org.accounts["alpha"]
    assert f"keys of IAM users tagged as yours (ops@example.com) in account {alpha} (alpha)." in \
        notice["content"]["description"]
    assert notice["metadata"]["additionalContext"]["account"] == alpha
    assert f"arn:aws:iam::{alpha}:user/{OLD_USER}" in notice["metadata"]["relatedResources"]


def test_an_account_added_between_runs_is_swept_by_the_next(org: Org) -> None:
    org.run(NOW, "sweep-1")
    delta = org.world.account("delta", org.dev, member_roles=(ROLE,))
    org.old_key(delta)

    dispatched, items, _ = org.run(NOW + timedelta(days=1), "sweep-2")

    assert dispatched["targets"] == 4 and delta in {item.target.account for item in items}
    assert org.status(delta) == {org.keys[delta]: "Inactive"}
    first, second = org.summaries()
    assert f"{delta} (delta)" not in first["content"]["description"]
    assert f"**{delta} (delta)**" in second["content"]["description"]
    assert second["content"]["title"].endswith("across 4 accounts, 4 targets, 1 failed")


def test_a_throttled_account_is_retried_alone_and_the_others_go_through(org: Org) -> None:
    alpha = org.accounts["alpha"]
    org.faults.add(Fault("iam.ListUsers", "Throttling", status=400, times=1,
                         when=lambda _params: True))
    _, _, runtime = org.run(NOW, "sweep-1")
    assert runtime.dead_letters == []
    assert org.status(alpha) == {org.keys[alpha]: "Inactive"}
    [summary] = org.summaries()
    assert summary["content"]["title"].endswith("3 targets, 1 failed")  # beta's role only


def test_report_mode_changes_nothing_in_any_account(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "report")
    org.run(NOW, "sweep-1")
    for account in (HUB, org.accounts["alpha"]):
        assert set(org.status(account).values()) == {"Active"}
    [summary] = org.summaries()
    assert summary["content"]["title"].startswith("[report mode] key_rotation: 1 access keys to change")
    assert f"- **would deactivate** `{OLD_USER}` `{org.keys[org.accounts['alpha']]}`" in \
        summary["content"]["description"]


def test_without_the_fanout_the_sweep_stays_in_its_own_account(aws: Env, lambda_context: Any) -> None:
    """No WORK_QUEUE_URL: today's single-account sweep, its own report, no work item."""
    aws.user("bob", keys=1)
    result = handler.handler({**load_event("key_rotation/scheduled_event.json"), "time": iso(NOW)}, lambda_context)
    assert result["users"] == 1 and "run" not in result
