"""OpsFunction, its bundling, the shared resource helpers and the core stack, built for a throwaway function folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, Aspects, Stack
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from stacks import bundling, platform
from stacks.core_stack import CoreStack
from stacks.settings import ProjectSettings
from tests.stacks.helpers import TEST_ENV, nag_errors


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stack, CoreStack, Template]:
    functions = tmp_path_factory.mktemp("functions")
    shutil.copytree(bundling.FUNCTIONS_DIR / "shared", functions / "shared")
    (functions / "probe").mkdir()
    (functions / "probe" / "__init__.py").write_text("")
    (functions / "probe" / "handler.py").write_text("def handler(event, context):\n    return event\n")
    mp = pytest.MonkeyPatch()
    mp.setattr(bundling, "FUNCTIONS_DIR", functions)
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
    shutil.copytree(bundling.FUNCTIONS_DIR / "shared", functions / "shared")
    (functions / "probe").mkdir()
    (functions / "probe" / "handler.py").write_text("def handler(event, context):\n    return {'echo': event}\n")
    (functions / "probe" / "__pycache__").mkdir()
    (functions / "probe" / "__pycache__" / "stale.pyc").write_bytes(b"old")
    monkeypatch.setattr(bundling, "FUNCTIONS_DIR", functions)
    monkeypatch.setattr(bundling, "BUILD_DIR", tmp_path / "build")
    asset = bundling.stage_code("probe")
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
        bundling.stage_code("nope")


def test_layer_built_for_lambda_platform(built: tuple[Stack, CoreStack, Template]) -> None:
    text = bundling.requirements_text(bundling.requirement_files("shared"))
    layer = bundling.build_layer(text, "arm64")
    site = layer / "python"
    assert (site / "aws_lambda_powertools").is_dir()
    assert not (site / "botocore").exists()
    assert (layer / ".complete").exists()


def test_secure_bucket_encrypted_ssl_only_versioned_private_logged() -> None:
    stack = Stack(App(), "buckets", env=TEST_ENV)
    logs = platform.secure_bucket(stack, "Logs", versioned=False, unversioned_reason="logs expire",
                                  unlogged_reason="the access-log bucket itself")
    platform.secure_bucket(stack, "Data", access_logs=logs, access_logs_prefix="data/")
    Aspects.of(stack).add(AwsSolutionsChecks())
    template = Template.from_stack(stack)
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    for resource in buckets.values():
        props = resource["Properties"]
        assert resource["DeletionPolicy"] == "Retain"
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "AES256"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    template.has_resource_properties("AWS::S3::Bucket", {
        "VersioningConfiguration": {"Status": "Enabled"},
        "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "data/"},
    })
    ssl_only = Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    template.has_resource_properties("AWS::S3::BucketPolicy",
                                     {"PolicyDocument": {"Statement": Match.array_with([ssl_only])}})
    assert nag_errors(stack) == []


def test_secure_bucket_needs_access_logs_or_a_reason() -> None:
    stack = Stack(App(), "buckets", env=TEST_ENV)
    with pytest.raises(ValueError, match="Unlogged: give either access_logs or unlogged_reason"):
        platform.secure_bucket(stack, "Unlogged")


def test_a_pure_python_sdist_is_built_into_a_wheel_for_every_platform(tmp_path: Path) -> None:
    requirements = "pillow==13.0.0\npyvips==3.2.0\n"
    (wheel,) = bundling.build_pure_wheels(requirements, tmp_path / "wheels")
    assert wheel.name == "pyvips-3.2.0-py3-none-any.whl"
    assert bundling.build_pure_wheels("pillow==13.0.0\n", tmp_path / "none") == []


def test_a_sdist_that_builds_a_binary_wheel_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheelhouse = tmp_path / "wheels"

    def binary_build(*_: object, **__: object) -> subprocess.CompletedProcess[str]:
        (wheelhouse / "pyvips-3.2.0-cp313-cp313-linux_x86_64.whl").write_bytes(b"")
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(bundling.subprocess, "run", binary_build)
    with pytest.raises(RuntimeError, match="not pure Python"):
        bundling.build_pure_wheels("pyvips==3.2.0\n", wheelhouse)


def test_image_resize_layer_carries_libvips_for_arm64() -> None:
    functions = bundling.ROOT / "functions"  # not FUNCTIONS_DIR: the module's fixture points it elsewhere
    files = [functions / "shared" / "requirements.txt", functions / "image_resize" / "requirements.txt"]
    layer = bundling.build_layer(bundling.requirements_text(files), "arm64")
    site = layer / "python"
    assert (site / "pyvips" / "__init__.py").exists()
    assert (site / "_libvips.abi3.so").read_bytes()[18:20] == (183).to_bytes(2, "little")  # ELF e_machine: aarch64
    assert list((site / "pyvips_binary.libs").glob("libvips-*.so.42"))
    assert (site / "pillow_heif").is_dir()
