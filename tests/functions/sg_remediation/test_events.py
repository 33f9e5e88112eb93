"""Parsing what EventBridge delivers: CloudTrail API calls, scheduled events, and bad input."""

from __future__ import annotations

import copy
from typing import Any

from sg_remediation import events
from tests.conftest import load_event


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(load_event(f"sg_remediation/{name}"))


def test_authorize_ingress() -> None:
    parsed = events.parse(fixture("authorize_ingress_world.json"))
    assert isinstance(parsed, events.Change)
    assert parsed.event_name == "AuthorizeSecurityGroupIngress"
    assert parsed.group_ids == ("sg-0123456789abcdef0",)
    assert parsed.region == "us-east-1"
    assert parsed.account == "123456789012"
    assert parsed.actor == "arn:aws:sts::123456789012:assumed-role/Developer/alice"
    assert parsed.source_ip == "198.51.100.23"
    assert parsed.event_time == "2026-11-28T09:41:07Z"
    assert parsed.event_id == "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
    assert parsed.rule_ids == {"sgr-0aaaaaaaaaaaaaaa1", "sgr-0aaaaaaaaaaaaaaa2"}


def test_authorize_by_group_name_takes_the_id_from_the_response() -> None:
    event = fixture("authorize_ingress_world.json")
    request = event["detail"]["requestParameters"]
    del request["groupId"]
    request["groupName"] = "default"
    parsed = events.parse(event)
    assert isinstance(parsed, events.Change)
    assert parsed.group_ids == ("sg-0123456789abcdef0",)


def test_modify_rules_single_and_list() -> None:
    parsed = events.parse(fixture("modify_rules_world.json"))
    assert isinstance(parsed, events.Change)
    assert parsed.group_ids == ("sg-0123456789abcdef0",)
    assert parsed.rule_ids == {"sgr-0bbbbbbbbbbbbbbb1"}
    assert parsed.actor.endswith("/dave@example.com")

    event = fixture("modify_rules_world.json")
    request = event["detail"]["requestParameters"]["ModifySecurityGroupRulesRequest"]
    single = request["SecurityGroupRule"]
    request["SecurityGroupRule"] = [single, {**single, "SecurityGroupRuleId": "sgr-0bbbbbbbbbbbbbbb2", "tag": 2}]
    parsed = events.parse(event)
    assert isinstance(parsed, events.Change)
    assert parsed.rule_ids == {"sgr-0bbbbbbbbbbbbbbb1", "sgr-0bbbbbbbbbbbbbbb2"}


def test_create_security_group() -> None:
    parsed = events.parse(fixture("create_security_group.json"))
    assert isinstance(parsed, events.Change)
    assert parsed.group_ids == ("sg-0123456789abcdef0",)
    assert parsed.rule_ids == frozenset()
    assert parsed.source_ip == "cloudformation.amazonaws.com"


def test_failed_calls_are_ignored_with_the_error() -> None:
    for name, code in (("authorize_ingress_failed.json", "Client.InvalidPermission.Duplicate"),
                       ("authorize_ingress_denied.json", "Client.UnauthorizedOperation")):
        parsed = events.parse(fixture(name))
        assert isinstance(parsed, events.Ignored)
        assert parsed.details["errorCode"] == code
        assert parsed.details["actor"].startswith("arn:aws:iam::123456789012:user/")


def test_scheduled_event_is_a_sweep() -> None:
    parsed = events.parse(fixture("scheduled_sweep.json"))
    assert parsed == events.Sweep(time="2026-11-28T10:00:00Z")


def test_actor_falls_back_to_invoked_by_then_type() -> None:
    event = fixture("create_security_group.json")
    del event["detail"]["userIdentity"]["arn"]
    parsed = events.parse(event)
    assert isinstance(parsed, events.Change) and parsed.actor == "cloudformation.amazonaws.com"
    event["detail"]["userIdentity"] = {"type": "AWSService"}
    parsed = events.parse(event)
    assert isinstance(parsed, events.Change) and parsed.actor == "AWSService"


def test_bad_input() -> None:
    base = fixture("authorize_ingress_world.json")
    cases: list[Any] = [None, 42, {}, {"detail-type": "Scheduled Event", "source": "custom"}]
    no_detail = copy.deepcopy(base)
    no_detail["detail"] = "x"
    other_event = copy.deepcopy(base)
    other_event["detail"]["eventName"] = "RevokeSecurityGroupIngress"
    bad_region = copy.deepcopy(base)
    bad_region["detail"]["awsRegion"] = "mars"
    bad_region["region"] = "mars"
    bad_group = copy.deepcopy(base)
    bad_group["detail"]["requestParameters"]["groupId"] = "not-a-group"
    bad_group["detail"]["responseElements"] = None
    cases += [no_detail, other_event, bad_region, bad_group]
    for case in cases:
        parsed = events.parse(case)
        assert isinstance(parsed, events.Ignored), case
        assert parsed.reason


def test_authorize_egress_names_its_group() -> None:
    event = load_event("sg_remediation/authorize_ingress_world.json")
    event["detail"]["eventName"] = "AuthorizeSecurityGroupEgress"
    parsed = events.parse(event)
    assert isinstance(parsed, events.Change)
    assert parsed.event_name == "AuthorizeSecurityGroupEgress" and parsed.group_ids == ("sg-0123456789abcdef0",)
