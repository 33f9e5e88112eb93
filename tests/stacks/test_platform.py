"""OpsFunction and the core stack, built for a throwaway function folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aws_cdk import App, Aspects, Stack
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from stacks import platform
from stacks.core_stack import CoreStack
from stacks.settings import ProjectSettings
from tests.stacks.helpers import TEST_ENV, nag_errors


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stack, CoreStack, Template]:
    functions = tmp_path_factory.mktemp("functions")
    shutil.copytree(platform.FUNCTIONS_DIR / "shared", functions / "shared")
    (functions / "probe").mkdir()
    (functions / "probe" / "__init__.py").write_text("")
    (functions / "probe" / "handler.py").write_text("def handler(event, context):\n    return event\n")
    mp = pytest.MonkeyPatch()
    mp.setattr(platform, "FUNCTIONS_DIR", functions)
    try:
        project = ProjectSettings(log_retention_days=14)
        app = App()
        core = CoreStack(app, "core", project=project, env=TEST_ENV)
        stack = Stack(app, "probe", env=TEST_ENV)
        platform.OpsFunction(stack, "Probe", automation="probe", project=project, core=core.core,
                             description="probe", environment={"MODE": "report"})
        Aspects.of(app).add(AwsSolutionsChecks())
        template = Template.from_stack(stack)
    finally:
        mp.undo()
    return stack, core, template


def test_function_runtime_architecture_handler_tracing(built: tuple[Stack, CoreStack, Template]) -> None:
    _, _, template = built
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "Handler": "handler.handler",
            "TracingConfig": {"Mode": "Active"},
            "RecursiveLoop": "Terminate",
            "Layers": Match.any_value(),
            "LoggingConfig": {"LogGroup": Match.any_value()},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "probe",
                        "POWERTOOLS_METRICS_NAMESPACE": "opsauto",
                        "XRAY_SDK": "false",
                        "NOTIFY_TOPIC_ARN": Match.any_value(),
                        "MODE": "report",
                    }
                )
            },
        },
    )


def test_log_group_retention_from_settings(built: tuple[Stack, CoreStack, Template]) -> None:
    built[2].has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 14})


def test_async_retries_bounded_with_encrypted_failure_queue(built: tuple[Stack, CoreStack, Template]) -> None:
    template = built[2]
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 21600,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})


def test_alarms_on_errors_and_failure_queue_go_to_ops_topic(built: tuple[Stack, CoreStack, Template]) -> None:
    template = built[2]
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    assert metrics == ["ApproximateNumberOfMessagesVisible", "Errors"]
    for alarm in alarms.values():
        assert len(alarm["Properties"]["AlarmActions"]) == 1


def test_role_is_its_own_and_scoped(built: tuple[Stack, CoreStack, Template]) -> None:
    template = built[2]
    roles = template.find_resources("AWS::IAM::Role")
    assert len(roles) == 1
    (role,) = roles.values()
    assert "ManagedPolicyArns" not in role["Properties"]
    wildcard = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Resource") == "*":
                wildcard.extend(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    assert sorted(wildcard) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_core_stack_topic_encrypted_ssl_only(built: tuple[Stack, CoreStack, Template]) -> None:
    _, core, _ = built
    template = Template.from_stack(core)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like(
            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}},
    )


def test_cdk_nag_clean(built: tuple[Stack, CoreStack, Template]) -> None:
    stack, core, _ = built
    assert nag_errors(stack) == []
    assert nag_errors(core) == []


def test_code_asset_has_shim_package_and_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    functions = tmp_path / "functions"
    shutil.copytree(platform.FUNCTIONS_DIR / "shared", functions / "shared")
    (functions / "probe").mkdir()
    (functions / "probe" / "handler.py").write_text("def handler(event, context):\n    return {'echo': event}\n")
    (functions / "probe" / "__pycache__").mkdir()
    (functions / "probe" / "__pycache__" / "stale.pyc").write_bytes(b"old")
    monkeypatch.setattr(platform, "FUNCTIONS_DIR", functions)
    monkeypatch.setattr(platform, "BUILD_DIR", tmp_path / "build")
    asset = platform.stage_code("probe")
    assert sorted(p.name for p in asset.iterdir()) == ["__pycache__", "handler.py", "probe", "shared"]
    assert list((asset / "probe" / "__pycache__").glob("handler.cpython-313.pyc")), "bytecode is precompiled"
    assert not (asset / "probe" / "__pycache__" / "stale.pyc").exists()
    assert not (asset / "shared" / "requirements.txt").exists()
    # The root shim is what Lambda's "handler.handler" imports.
    namespace: dict[str, object] = {}
    monkeypatch.syspath_prepend(str(asset))
    exec((asset / "handler.py").read_text(), namespace)
    assert namespace["handler"]({"a": 1}, None) == {"echo": {"a": 1}}


def test_missing_handler_is_a_clear_error() -> None:
    with pytest.raises(FileNotFoundError, match=r"functions/nope/handler\.py"):
        platform.stage_code("nope")


def test_layer_built_for_lambda_platform(built: tuple[Stack, CoreStack, Template]) -> None:
    text = platform._requirements_text(platform.requirement_files("shared"))
    layer = platform.build_layer(text, "arm64")
    site = layer / "python"
    assert (site / "aws_lambda_powertools").is_dir()
    assert not (site / "botocore").exists()
    assert (layer / ".complete").exists()
