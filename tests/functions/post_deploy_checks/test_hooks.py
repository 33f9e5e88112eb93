"""Every CodeDeploy lifecycle hook of Lambda and ECS deployments, each with its own checks (CHECKS as a map by
hook name, ``default`` for the others), the hook known from the alias CodeDeploy invoked; the test-traffic
URL for AfterAllowTestTraffic. PutLifecycleEventHookExecutionStatus through the Stubber (exact parameters)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from demo.fakes import FakeContext
from post_deploy_checks import handler
from post_deploy_checks.config import HOOK_NAMES
from shared.clients import client
from stacks.settings import SettingsError, load_settings
from tests.conftest import load_event
from tests.functions.post_deploy_checks.conftest import Endpoints, Sleeps, token_key_secret

LAMBDA_HOOKS = ("BeforeAllowTraffic", "AfterAllowTraffic")
ECS_HOOKS = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic")


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"HEADER_SECRETS": "", "SECRETS_MAX_AGE_SECONDS": "300"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", boto3.client("sns", region_name="us-east-1").create_topic(
            Name="opsauto-ops")["TopicArn"])
        monkeypatch.setenv("TOKEN_KEY_SECRET_ARN", token_key_secret())
        yield


@pytest.fixture
def codedeploy() -> Iterator[Stubber]:
    stubber = Stubber(client("codedeploy"))
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def through(alias: str | None) -> FakeContext:
    """The context of an invocation through ``<function>:<alias>`` (as an AppSpec's Hooks name it)."""
    context = FakeContext("opsauto-post-deploy-checks")
    if alias:
        context.invoked_function_arn = f"{context.invoked_function_arn}:{alias}"
    return context


def hook(deployment: str, stubber: Stubber, status: str, alias: str | None) -> dict[str, Any]:
    event = load_event("post_deploy_checks/codedeploy_hook.json") | {"DeploymentId": deployment}
    stubber.add_response("put_lifecycle_event_hook_execution_status",
                         {"lifecycleEventHookExecutionId": event["LifecycleEventHookExecutionId"]},
                         {"deploymentId": deployment,
                          "lifecycleEventHookExecutionId": event["LifecycleEventHookExecutionId"], "status": status})
    return handler.handler(event, through(alias))  # type: ignore[arg-type]


def test_the_hook_names_are_codedeploys() -> None:
    assert set(LAMBDA_HOOKS) <= set(ECS_HOOKS) and tuple(HOOK_NAMES) == ECS_HOOKS


@pytest.mark.parametrize(("platform", "hooks"), [("Lambda", LAMBDA_HOOKS), ("ECS", ECS_HOOKS)])
def test_every_hook_runs_its_own_checks(endpoints: Endpoints, codedeploy: Stubber, no_sleep: Sleeps,
                                        monkeypatch: pytest.MonkeyPatch, platform: str,
                                        hooks: tuple[str, ...]) -> None:
    test_listener = endpoints.url(f"/healthy?listener=test-{platform}")  # the ECS test listener (port 8080 in life)
    checks = {
        "default": {"checks": [{"name": "prod", "url": endpoints.url(f"/healthy?listener=prod-{platform}")}]},
        "AfterAllowTestTraffic": {"checks": [{"name": "green", "url": test_listener,
                                              "json": {"path": "status", "equals": "ok"}}]},
        "BeforeInstall": {"checks": [{"name": "maintenance", "url": endpoints.url("/unavailable"),
                                      "expect_status": 503}]},
    }
    monkeypatch.setenv("CHECKS", json.dumps(checks))
    for index, name in enumerate(hooks):
        before_test = endpoints.hits.get(f"/healthy?listener=test-{platform}", 0)
        result = hook(f"d-{platform.upper()}{index:05d}", codedeploy, "Succeeded", name)
        assert result["result"] == "Succeeded" and result["reason"].startswith(f"{name}: 1 of 1 check(s) passed")
        own = {"AfterAllowTestTraffic": "green", "BeforeInstall": "maintenance"}.get(name, "prod")
        assert f"{own} (" in result["reason"]
        assert endpoints.hits.get(f"/healthy?listener=test-{platform}", 0) == before_test + (
            name == "AfterAllowTestTraffic")


def test_a_failing_hook_fails_with_its_name(endpoints: Endpoints, codedeploy: Stubber, no_sleep: Sleeps,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKS", json.dumps({"AfterAllowTraffic": {"checks": [
        {"name": "api", "url": endpoints.url("/unavailable")}]}}))
    result = hook("d-FAIL00001", codedeploy, "Failed", "AfterAllowTraffic")
    assert result["reason"].startswith("AfterAllowTraffic: 1 of 1 check(s) failed: api (503")


def test_a_hook_without_checks_and_no_default_fails(endpoints: Endpoints, codedeploy: Stubber,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKS", json.dumps({"AfterAllowTraffic": {"alarms": ["a"]}}))
    result = hook("d-NODEF0001", codedeploy, "Failed", "BeforeAllowTraffic")
    assert result["reason"] == ("CHECKS has no checks for the BeforeAllowTraffic hook and no default (it has "
                                "AfterAllowTraffic)")


def test_one_checks_object_serves_every_hook_and_unaliased_invocations(endpoints: Endpoints, codedeploy: Stubber,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKS", json.dumps({"checks": [{"name": "api", "url": endpoints.url("/healthy")}]}))
    assert hook("d-ANY000001", codedeploy, "Succeeded", "AfterInstall")["reason"].startswith("AfterInstall: ")
    assert hook("d-ANY000002", codedeploy, "Succeeded", None)["reason"].startswith("1 of 1 check(s) passed")


@pytest.mark.parametrize(("checks", "message"), [
    ({"AfterAllowTrafic": {"alarms": ["a"]}, "default": {"alarms": ["a"]}},
     "AfterAllowTrafic is not a lifecycle hook"),
    ({"AfterAllowTraffic": {"alarms": ["a"], "bake_seconds": 60}},
     "CHECKS.AfterAllowTraffic: bake_seconds is only for CodePipeline"),
    ({"default": {"checks": [{"name": "a", "url": "https://a/", "headers": {"X": {"secret": "s"}}}]}},
     "checks uses header secret(s) s that are not in header_secrets"),
])
def test_bad_hook_maps_fail_at_synth(checks: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({"automations": {"post_deploy_checks": {"checks": checks}}})
