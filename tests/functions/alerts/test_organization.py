"""Alerts from member accounts: every message names the account (id, and its name from Organizations) and region.

The hub (moto's default account) runs the function organization-wide (``TARGET_ACCOUNTS=organization``); alpha
and beta are accounts of its Organization in OU prod. Their events reach the hub's bus as the member template
forwards them (the same event, with the member's ``account`` and ``region``), and arrive at the function through
the alerts stack's rules; Slack and Teams destinations are real HTTPS endpoints on 127.0.0.1.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from alerts import handler
from tests.functions.alerts.aws_env import AlertsAws, alerts_aws
from tests.functions.alerts.conftest import Receiver, load
from tests.functions.shared.org_world import HUB, OrgWorld
from tests.lifetime.kit import Fault, FaultInjector, LambdaRuntime

SLACK = "/slack/T000/B000/ORG"
TEAMS = "/teams/workflow?sig=ORG"


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Iterator[tuple[AlertsAws, OrgWorld, dict[str, str]]]:
    with alerts_aws(monkeypatch) as env:
        world = OrgWorld("us-east-1")
        prod = world.ou("prod")
        accounts = {name: world.account(name, prod) for name in ("alpha", "beta")}
        for name, value in {"TARGET_ACCOUNTS": "organization", "TARGET_OUS": prod,
                            "MEMBER_ROLE_NAME": "opsauto-member-alerts", "REGIONS": "eu-west-1"}.items():
            monkeypatch.setenv(name, value)
        env.put_destinations({"destinations": [{"type": "slack", "url": receiver.url + SLACK},
                                               {"type": "teams", "url": receiver.url + TEAMS}]})
        yield env, world, accounts


def forwarded(name: str, account: str, region: str = "eu-west-1") -> dict[str, Any]:
    """The fixture event as a member account's rule forwards it to the hub's bus."""
    event = copy.deepcopy(load(name))
    event["account"], event["region"] = account, region
    detail = event.get("detail", {})
    for key, value in (("accountId", account), ("region", region), ("awsAccountId", account)):
        if key in detail:  # a finding of the member account itself
            detail[key] = value
    event["id"] = f"{event['id'][:-12]}{account}"  # events of two accounts are two events
    return dict(event)


def _slack_context(body: dict[str, Any]) -> str:
    [context] = [b for b in body["blocks"] if b["type"] == "context"]
    return str(context["elements"][0]["text"])


def _slack_fields(body: dict[str, Any]) -> list[str]:
    return [f["text"] for b in body["blocks"] if b["type"] == "section" for f in b.get("fields", [])]


def _teams(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    card = body["attachments"][0]["content"]
    context = card["body"][1]["text"]
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    return context, facts


@pytest.mark.parametrize("fixture", ["eventbridge_guardduty", "eventbridge_alarm_state_change",
                                     "eventbridge_health", "eventbridge_unknown_source"])
def test_a_member_accounts_event_names_its_account_and_region(
        org: tuple[AlertsAws, OrgWorld, dict[str, str]], receiver: Receiver, fixture: str) -> None:
    _, _, accounts = org
    alpha = accounts["alpha"]
    LambdaRuntime(handler.handler).invoke(forwarded(fixture, alpha))

    [slack] = receiver.bodies(SLACK)
    assert f"{alpha} (alpha) eu-west-1" in _slack_context(slack)
    assert f"({alpha} (alpha) eu-west-1)" in slack["text"]  # the notification text names it too
    fields = _slack_fields(slack)
    assert f"*Account*\n{alpha} (alpha)" in fields
    assert any(f.startswith("*Region*\n") for f in fields)
    [teams] = receiver.bodies(TEAMS)
    context, facts = _teams(teams)
    assert f"{alpha} (alpha) eu-west-1" in context
    assert facts["Account"] == f"{alpha} (alpha)" and "Region" in facts


def test_names_are_asked_once_per_account_and_a_failed_lookup_never_holds_a_message(
        org: tuple[AlertsAws, OrgWorld, dict[str, str]], receiver: Receiver) -> None:
    _, _, accounts = org
    with FaultInjector() as faults:
        faults.add(Fault("organizations.DescribeAccount", "TooManyRequestsException", status=400, times=1,
                         when=lambda params: params.get("AccountId") == accounts["beta"]))
        runtime = LambdaRuntime(handler.handler)
        with faults.active():
            runtime.invoke(forwarded("eventbridge_guardduty", accounts["alpha"]))
            runtime.invoke(forwarded("eventbridge_alarm_state_change", accounts["alpha"], "eu-central-1"))
            runtime.invoke(forwarded("eventbridge_guardduty", accounts["beta"]))
        lookups = [c.params["AccountId"] for c in faults.calls if c.operation == "DescribeAccount"]
    assert lookups == [accounts["alpha"], accounts["beta"]]  # alpha's name is cached for its second message
    contexts = [_slack_context(body) for body in receiver.bodies(SLACK)]
    assert f"{accounts['alpha']} (alpha) eu-west-1" in contexts[0]
    assert f"{accounts['alpha']} (alpha) eu-central-1" in contexts[1]
    assert f"{accounts['beta']} eu-west-1" in contexts[2]  # throttled: the bare id, the message still sent
    assert len(receiver.bodies(TEAMS)) == 3


def test_an_account_outside_the_organization_is_named_by_its_id(
        org: tuple[AlertsAws, OrgWorld, dict[str, str]], receiver: Receiver) -> None:
    LambdaRuntime(handler.handler).invoke(forwarded("eventbridge_ec2_state", "999988887777", "us-east-1"))
    [slack] = receiver.bodies(SLACK)
    assert "999988887777 us-east-1" in _slack_context(slack)
    assert "*Account*\n999988887777" in _slack_fields(slack)


def test_hub_messages_name_the_hub(
        org: tuple[AlertsAws, OrgWorld, dict[str, str]], receiver: Receiver) -> None:
    """An SNS text message names the topic's account and region (the hub's)."""
    LambdaRuntime(handler.handler).invoke(load("sns_plain_text"))  # on arn:aws:sns:eu-central-1:<hub>:backups
    [slack] = receiver.bodies(SLACK)
    assert f"{HUB} (master) eu-central-1" in _slack_context(slack)  # moto names the management account "master"
    assert f"*Account*\n{HUB} (master)" in _slack_fields(slack)


def test_outside_an_organization_no_name_is_asked(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    with alerts_aws(monkeypatch) as env, FaultInjector() as faults:
        env.put_destinations({"destinations": [{"type": "slack", "url": receiver.url + SLACK}]})
        with faults.active():
            LambdaRuntime(handler.handler).invoke(forwarded("eventbridge_guardduty", "111122223333"))
        assert [c for c in faults.calls if c.service == "organizations"] == []
    [slack] = receiver.bodies(SLACK)
    assert "111122223333 eu-west-1" in _slack_context(slack)
