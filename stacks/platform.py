"""OpsFunction: the one way a Lambda is built in this project.

- python3.13, arm64 by default (``project.architecture``), handler ``handler.handler``;
- code: ``functions/<automation>`` plus ``functions/shared``, staged under ``.build/assets``;
- third-party dependencies in a layer built locally with ``pip install --platform ... --only-binary=:all:``
  (no Docker), cached under ``.build/layers/<hash of requirements, platform, python>``;
- Powertools environment (service, metrics namespace, log level), X-Ray active tracing;
- an explicit log group with retention; its own role, least privilege;
- async invocations: bounded retries and an encrypted SQS on-failure destination, so no event is lost;
- alarms on function errors and on that queue's depth, to the ops topic;
- recursive loop detection on (Terminate).
"""

from __future__ import annotations

import compileall
import hashlib
import py_compile
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from stacks.settings import ProjectSettings

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
BUILD_DIR = ROOT / ".build"
PYTHON_VERSION = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13
HANDLER = "handler.handler"
PLATFORM_TAGS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", "requirements.txt")
# Bump when the staged content changes for the same sources (e.g. bytecode added).
_ASSET_FORMAT = "2"


@dataclass(frozen=True)
class Core:
    """What every automation stack gets from the core stack."""

    topic: sns.ITopic
    key: kms.IKey


def suppress(construct: Construct, rule: str, reason: str, applies_to: list[str] | None = None) -> None:
    """A cdk-nag suppression scoped to one resource, always with a reason."""
    suppression = NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)
    NagSuppressions.add_resource_suppressions(construct, [suppression], apply_to_children=True)


def requirement_files(automation: str) -> list[Path]:
    files = [FUNCTIONS_DIR / "shared" / "requirements.txt", FUNCTIONS_DIR / automation / "requirements.txt"]
    return [path for path in files if path.exists()]


def _requirements_text(files: list[Path]) -> str:
    lines: list[str] = []
    for path in files:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                lines.append(line)
    return "\n".join(sorted(set(lines))) + "\n"


def build_layer(requirements: str, architecture: str) -> Path:
    """Install ``requirements`` for Lambda's platform into a cached folder; returns the folder.

    The folder holds ``python/`` as a Lambda layer expects. Built once per hash of the
    requirements, platform and Python version; a concurrent build of the same hash is harmless
    (the second one is discarded).
    """
    digest = hashlib.sha256(f"{requirements}|{architecture}|{PYTHON_VERSION}|pyc".encode()).hexdigest()[:16]
    target = BUILD_DIR / "layers" / f"{architecture}-{digest}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    req_file = staging / "requirements.txt"
    req_file.write_text(requirements)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for tag in PLATFORM_TAGS[architecture]:
        command += ["--platform", tag]
    command += [
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "--target", str(staging / "python"),
        "-r", str(req_file),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"building the dependencies layer failed:\n{result.stderr[-4000:]}")
    # boto3/botocore come from the runtime: drop copies pulled in as dependencies to keep the layer small.
    for pattern in ("boto3", "boto3-*", "botocore", "botocore-*", "s3transfer", "s3transfer-*", "bin"):
        for path in (staging / "python").glob(pattern):
            shutil.rmtree(path, ignore_errors=True)
    req_file.unlink()
    precompile(staging / "python")
    (staging / ".complete").write_text(requirements)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another build of the same hash won
    return target


def stage_code(automation: str) -> Path:
    """``functions/<automation>`` and ``functions/shared`` as one asset folder.

    Inside the asset, the automation is a package (``<automation>/``) next to ``shared/``, and a
    one-line ``handler.py`` at the root re-exports ``<automation>.handler.handler`` so the Lambda
    handler string is ``handler.handler``. The folder is named by a hash of its content, so
    concurrent builds (parallel tests) never disturb each other.
    """
    source = FUNCTIONS_DIR / automation
    if not (source / "handler.py").exists():
        raise FileNotFoundError(f"functions/{automation}/handler.py does not exist")
    shim = (
        f'"""Lambda entry point: handler.handler."""\n\nfrom {automation}.handler import handler\n\n'
        '__all__ = ["handler"]\n'
    )
    digest = hashlib.sha256((_ASSET_FORMAT + shim).encode())
    for folder in (source, FUNCTIONS_DIR / "shared"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(FUNCTIONS_DIR)).encode() + b"\0" + path.read_bytes())
    target = BUILD_DIR / "assets" / f"{automation}-{digest.hexdigest()[:16]}"
    if target.exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{automation}.", dir=_ensure(target.parent)))
    shutil.copytree(source, staging / automation, ignore=_IGNORE)
    shutil.copytree(FUNCTIONS_DIR / "shared", staging / "shared", ignore=_IGNORE)
    (staging / "handler.py").write_text(shim)
    precompile(staging)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # a concurrent build of the same content won
    return target


def precompile(folder: Path) -> None:
    """Write bytecode next to the sources, as Lambda cannot (its code folder is read-only).

    Without it every cold start compiles every module it imports. Unchecked-hash pycs do not depend on
    file times (zip archives keep those only to two seconds), and are only valid for the same Python
    minor version, so they are written only when synth runs on the runtime's version.
    """
    if sys.version_info[:2] != tuple(int(part) for part in PYTHON_VERSION.split(".")):
        return
    compileall.compile_dir(
        str(folder), quiet=2, workers=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class OpsFunction(Construct):
    """A Lambda function built the project's way. See the module docstring.

    Attributes: ``function``, ``role``, ``log_group``, ``failure_queue``, ``alarms``.
    The role starts with only: write its own log group, X-Ray, send to its failure queue,
    publish to the ops topic. Add what the automation needs with ``grant_*`` or
    ``add_to_role_policy`` and resource-scoped statements.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        automation: str,
        project: ProjectSettings,
        core: Core,
        description: str,
        environment: dict[str, str] | None = None,
        memory_mb: int = 256,
        timeout: Duration | None = None,
        retry_attempts: int = 2,
        max_event_age: Duration | None = None,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        architecture = (
            lambda_.Architecture.ARM_64 if project.architecture == "arm64" else lambda_.Architecture.X86_64
        )

        self.log_group = logs.LogGroup(self, "LogGroup")
        self.log_group.node.default_child.retention_in_days = project.log_retention_days  # type: ignore[union-attr]

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{project.prefix} {automation}: {construct_id}",
        )
        self.log_group.grant_write(self.role)
        xray = iam.Policy(
            self,
            "XRayPolicy",
            statements=[
                iam.PolicyStatement(
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]
                )
            ],
        )
        xray.attach_to_role(self.role)
        suppress(xray, "AwsSolutions-IAM5",
                 "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions",
                 applies_to=["Resource::*"])

        self.failure_queue, queue_alarm = dead_letter_queue(
            self, "FailureQueue", project=project, core=core,
            what=f"{automation}: events kept in the failure queue (redrive them once the cause is fixed)",
        )

        layer_dir = build_layer(_requirements_text(requirement_files(automation)), project.architecture)
        layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layer_dir), exclude=[".complete"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[architecture],
            description=f"{automation} dependencies",
        )

        env = {
            "POWERTOOLS_SERVICE_NAME": automation,
            "POWERTOOLS_METRICS_NAMESPACE": project.prefix,
            "POWERTOOLS_LOG_LEVEL": project.log_level,
            "XRAY_SDK": "true" if project.xray_sdk else "false",
            "NOTIFY_TOPIC_ARN": core.topic.topic_arn,
        }
        env.update(environment or {})

        self.function = lambda_.Function(
            self,
            "Function",
            description=description[:256],
            runtime=RUNTIME,
            architecture=architecture,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(stage_code(automation))),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            memory_size=memory_mb,
            timeout=timeout or Duration.seconds(60),
            environment=env,
            retry_attempts=retry_attempts,
            max_event_age=max_event_age or Duration.hours(6),
            on_failure=destinations.SqsDestination(self.failure_queue),
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
            reserved_concurrent_executions=reserved_concurrency,
        )
        cfn_function: Any = self.function.node.default_child
        cfn_function.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        cfn_function.add_resource_dependency(xray.node.default_child)  # traces can be sent from the first invocation
        if RUNTIME.name != _latest_python().name:
            suppress(self.function, "AwsSolutions-L1", f"The project targets {RUNTIME.name} (DESIGN.md); "
                     f"{_latest_python().name} is adopted once Powertools and Pillow wheels are proven on it")

        # Publishing to the KMS-encrypted topic: CDK grants sns:Publish on the topic and
        # kms:Decrypt + kms:GenerateDataKey* on its key (the key's ARN, not "*").
        core.topic.grant_publish(self.role)
        suppress(self.role, "AwsSolutions-IAM5", "kms:GenerateDataKey* is granted by CDK's grant helpers on "
                 "specific key ARNs (ops topic key, and any key an automation's grants add)",
                 applies_to=["Action::kms:GenerateDataKey*"])

        errors_alarm = cloudwatch.Alarm(
            self,
            "ErrorsAlarm",
            alarm_description=f"{project.prefix} {automation}: the function reported errors",
            metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if project.alarm_actions:
            errors_alarm.add_alarm_action(cw_actions.SnsAction(core.topic))
        self.alarms = [errors_alarm, queue_alarm]

    def add_to_role_policy(self, statement: iam.PolicyStatement) -> None:
        self.function.add_to_role_policy(statement)


def dead_letter_queue(
    scope: Construct, construct_id: str, *, project: ProjectSettings, core: Core, what: str
) -> tuple[sqs.Queue, cloudwatch.Alarm]:
    """An encrypted, SSL-only queue that keeps events nothing could handle (14 days), and an alarm on its
    depth to the ops topic: the one way this project keeps failed events, so none is lost unnoticed."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    suppress(queue, "AwsSolutions-SQS3", f"A dead-letter queue itself ({what}); its depth is alarmed")
    alarm = cloudwatch.Alarm(
        scope,
        f"{construct_id}Alarm",
        alarm_description=f"{project.prefix} {what}",
        metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum"),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    if project.alarm_actions:
        alarm.add_alarm_action(cw_actions.SnsAction(core.topic))
    return queue, alarm


def _latest_python() -> lambda_.Runtime:
    names = [name for name in dir(lambda_.Runtime) if name.startswith("PYTHON_3_")]
    latest = max(names, key=lambda name: int(name.rsplit("_", 1)[1]))
    return getattr(lambda_.Runtime, latest)  # type: ignore[no-any-return]


def stack_name(project: ProjectSettings, automation: str) -> str:
    return f"{project.prefix}-{automation.replace('_', '-')}"

