"""key_rotation stack: secrets, their encryption and rotation schedules, the sweep rule, the role's scope."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.settings import SettingsError, load_settings
from tests.stacks.helpers import build_with, nag_errors
from tests.stacks.helpers import policy_statements as statements
from tests.stacks.helpers import statement_actions as actions_of

MANAGED = [
    {"user_name": "ci-deployer"},
    {"user_name": "reporting", "rotation_days": 60, "path": "/apps/", "secret_name": "apps/reporting-key"},
]


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """Three builds in one process (after the first they are quick): enforce with exemptions, report (the
    default) with one managed user, and the defaults (no managed user: the sweep alone)."""
    enforce = build_with("key_rotation", {"managed_users": MANAGED, "mode": "enforce", "exempt_group": "break-glass",
                                          "exempt_tag": "key-rotation=exempt", "grace_days": 5})
    report = build_with("key_rotation", {"managed_users": MANAGED[:1]})
    sweep_only = build_with("key_rotation", {})
    stacks = {"enforce": enforce.stacks["key_rotation"], "report": report.stacks["key_rotation"],
              "sweep_only": sweep_only.stacks["key_rotation"]}
    return {"stacks": stacks, "templates": {k: Template.from_stack(v) for k, v in stacks.items()}}


def resource_text(statement: dict[str, Any]) -> str:
    return str(statement["Resource"])


def test_secret_per_managed_user_encrypted_with_the_stacks_key(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    template.resource_count_is("AWS::SecretsManager::Secret", 2)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    (key_id,) = template.find_resources("AWS::KMS::Key")
    for name, user in (("opsauto/key-rotation/ci-deployer", "ci-deployer"), ("apps/reporting-key", "reporting")):
        template.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {"Name": name, "KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]}, "SecretString": f'{{"UserName":"{user}"}}'},
        )


def test_rotation_schedules_use_the_function(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    (function_id,) = template.find_resources("AWS::Lambda::Function")
    schedules = template.find_resources("AWS::SecretsManager::RotationSchedule")
    expressions = sorted(s["Properties"]["RotationRules"]["ScheduleExpression"] for s in schedules.values())
    assert expressions == ["rate(30 days)", "rate(60 days)"]
    for schedule in schedules.values():
        assert schedule["Properties"]["RotationLambdaARN"] == {"Fn::GetAtt": [function_id, "Arn"]}
        assert schedule["Properties"].get("RotateImmediatelyOnUpdate", True) is True  # the first key, at once
    template.has_resource_properties(
        "AWS::Lambda::Permission", {"Principal": "secretsmanager.amazonaws.com", "Action": "lambda:InvokeFunction"}
    )


def test_sweep_rule_and_environment(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"ScheduleExpression": "rate(1 day)", "Targets": [Match.object_like(
            {"RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600},
             "DeadLetterConfig": Match.any_value()})]},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Timeout": 300, "Environment": {"Variables": Match.object_like({
            "MODE": "enforce", "WARN_AFTER_DAYS": "80", "DEACTIVATE_AFTER_DAYS": "90", "DELETE_AFTER_DAYS": "120",
            "GRACE_DAYS": "5", "EXEMPT_GROUP": "break-glass", "EXEMPT_TAG": "key-rotation=exempt",
            "MAX_CHANGES": "20", "NOTIFY_TOPIC_ARN": Match.any_value(), "MANAGED_SECRETS": Match.any_value()})}},
    )
    built["templates"]["report"].has_resource_properties(
        "AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({"MODE": "report"})}}
    )


def test_rotation_key_actions_only_on_the_managed_users(built: dict[str, Any]) -> None:
    for mode in ("enforce", "report"):
        for statement in statements(built["templates"][mode]):
            acts = actions_of(statement)
            if "iam:CreateAccessKey" in acts:
                text = resource_text(statement)
                assert ":user/ci-deployer" in text and "user/*" not in text and statement["Resource"] != "*"
                if mode == "enforce":
                    assert ":user/apps/reporting" in text
    rotation = [s for s in statements(built["templates"]["enforce"]) if s.get("Sid") == "RotateManagedUsersKeys"]
    assert len(rotation) == 1 and len(rotation[0]["Resource"]) == 2


def test_report_mode_cannot_change_keys_outside_the_managed_users(built: dict[str, Any]) -> None:
    def changers(mode: str) -> list[str]:
        return [resource_text(s) for s in statements(built["templates"][mode])
                if {"iam:UpdateAccessKey", "iam:DeleteAccessKey"} & set(actions_of(s))]

    assert all("user/*" not in text for text in changers("report"))
    assert any("user/*" in text for text in changers("enforce"))


def test_wildcards_are_only_the_expected_ones(built: dict[str, Any]) -> None:
    star = sorted(a for s in statements(built["templates"]["enforce"]) if s["Resource"] == "*" for a in actions_of(s))
    assert star == ["iam:ListUsers", "secretsmanager:GetRandomPassword",
                    "xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_secrets_manager_actions_only_on_managed_secrets(built: dict[str, Any]) -> None:
    for statement in statements(built["templates"]["enforce"]):
        acts = [a for a in actions_of(statement)
                if a.startswith("secretsmanager:") and a != "secretsmanager:GetRandomPassword"]
        if acts:
            assert "Secret" in resource_text(statement) and statement["Resource"] != "*"


def test_cdk_nag_clean(built: dict[str, Any]) -> None:
    for stack in built["stacks"].values():
        assert nag_errors(stack) == []


def test_without_managed_users_only_the_sweep_is_deployed(built: dict[str, Any]) -> None:
    template = built["templates"]["sweep_only"]
    for absent in ("AWS::KMS::Key", "AWS::SecretsManager::Secret", "AWS::SecretsManager::RotationSchedule"):
        template.resource_count_is(absent, 0)
    template.resource_count_is("AWS::Events::Rule", 1)
    assert not [s for s in statements(template) if "iam:CreateAccessKey" in actions_of(s)]
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({"MANAGED_SECRETS": "{}"})}}
    )


# --------------------------------------------------------------------------- settings (no synth)


def _load(settings: dict[str, Any]) -> Any:
    return load_settings({"automations": {"key_rotation": settings}}).automations.key_rotation


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"warn_after_days": 90}, "warn_after_days < deactivate_after_days < delete_after_days"),
        ({"delete_after_days": 90}, "warn_after_days < deactivate_after_days < delete_after_days"),
        ({"mode": "fix"}, "automations.key_rotation.mode: got 'fix'; allowed values: 'report' or 'enforce'"),
        ({"exempt_tag": "novalue"}, "automations.key_rotation.exempt_tag: must be 'Key=Value'"),
        ({"sweep_schedule": "daily"}, "automations.key_rotation.sweep_schedule: must be an EventBridge schedule"),
        ({"managed_users": [{"user_name": "a"}, {"user_name": "a"}]}, "listed more than once: a"),
        ({"managed_users": [{"user_name": "bad name"}]}, "automations.key_rotation.managed_users.0.user_name"),
        ({"managed_users": [{"user_name": "a", "rotation_days": 5}]},
         "rotation_days of a (5) must be at least 2 x grace_days + 2 (16)"),
        ({"max_changes": -1}, "automations.key_rotation.max_changes"),
        ({"grace": 3}, "automations.key_rotation.grace: unknown setting"),
    ],
)
def test_bad_settings_fail_with_the_key_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        _load(settings)
    assert message in str(error.value)


def test_defaults() -> None:
    value = _load({})
    assert (value.mode, value.grace_days, value.warn_after_days, value.deactivate_after_days,
            value.delete_after_days, value.max_changes, value.sweep_schedule) == (
        "report", 7, 80, 90, 120, 20, "rate(1 day)")
    assert _load({"sweep_schedule": "cron(0 6 * * ? *)"}).sweep_schedule == "cron(0 6 * * ? *)"


def test_function_uses_the_secrets_key_only_through_secrets_manager(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    (key,) = template.find_resources("AWS::KMS::Key").values()
    (role_id,) = [k for k in template.find_resources("AWS::IAM::Role") if k.startswith("KeyRotationRole")]
    role_statements = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                       if s["Principal"].get("AWS") == {"Fn::GetAtt": [role_id, "Arn"]}]
    assert role_statements
    for statement in role_statements:
        assert statement["Condition"]["StringEquals"]["kms:ViaService"].startswith("secretsmanager.")
    outputs = template.to_json()["Outputs"]
    assert {"SecretArn0", "SecretArn1", "SecretsKeyArn"} <= set(outputs)
