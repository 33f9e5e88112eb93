"""OpsFunction: the one way a Lambda is built in this project, and the few resources built alike everywhere.

An OpsFunction is:
- python3.13, arm64 by default (``project.architecture``), handler ``handler.handler``;
- its code and dependencies layer bundled by ``stacks.bundling`` (no Docker);
- Powertools environment (service, metrics namespace, log level), X-Ray active tracing;
- an explicit log group with retention; its own role, least privilege;
- async invocations: bounded retries and an encrypted SQS on-failure destination, so no event is lost;
- alarms on function errors and on that queue's depth, to the ops topic;
- recursive loop detection on (Terminate).

Also here: ``suppress`` (a cdk-nag suppression with a reason), ``ops_alarm`` (an alarm to the ops topic),
``dead_letter_queue`` (a kept-events queue with its alarm) and ``secure_bucket`` (an S3 bucket set up the
one safe way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct, IConstruct

from stacks.bundling import build_layer, requirement_files, requirements_text, stage_code
from stacks.checkov import skip_check
from stacks.settings import ProjectSettings

RUNTIME = lambda_.Runtime.PYTHON_3_13
LOG_GROUP_KEY_REASON = (
    "CloudWatch Logs encrypts every log group at rest; a customer-managed key would add a key policy for the Logs "
    "service, a KMS charge per key and month, and KMS calls on every write and query, to protect logs that "
    "hold no secrets (nothing logs credentials or message contents beyond what the action reports publish)")
UNRESERVED_REASON = (
    "Invoked at the pace of its trigger (a schedule, a pipeline action, alarms, API calls), a few at a time; a "
    "reservation would take that much from the account's unreserved pool for nothing. image_resize, which a bulk "
    "upload can fan out, has a reserved concurrency (setting reserved_concurrency)")
NO_VPC_REASON = ("The function reaches only AWS APIs (and, for alerts and post_deploy_checks, public HTTPS "
                 "endpoints); a VPC would add NAT gateways or interface endpoints and protect nothing private")
HANDLER = "handler.handler"


@dataclass(frozen=True)
class Core:
    """What every automation stack gets from the core stack."""

    topic: sns.ITopic
    key: kms.IKey


def suppress(construct: IConstruct, rule: str, reason: str, applies_to: list[str] | None = None) -> None:
    """A cdk-nag suppression scoped to one resource, always with a reason."""
    suppression = NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)
    NagSuppressions.add_resource_suppressions(construct, [suppression], apply_to_children=True)


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
        unreserved_reason: str | None = None,
        publishes_reports: bool = True,
        failure_queue_key: kms.IKey | None = None,
        failure_retention: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        architecture = (
            lambda_.Architecture.ARM_64 if project.architecture == "arm64" else lambda_.Architecture.X86_64
        )

        self.log_group = logs.LogGroup(self, "LogGroup")
        self.log_group.node.default_child.retention_in_days = project.log_retention_days  # type: ignore[union-attr]
        skip_check(self.log_group, "CKV_AWS_158", LOG_GROUP_KEY_REASON)

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{project.prefix} {automation}: {construct_id}",
        )
        self.log_group.grant_write(self.role)
        xray = self._xray_policy()

        self.failure_queue, queue_alarm = dead_letter_queue(
            self, "FailureQueue", project=project, core=core,
            what=f"{automation}: events kept in the failure queue (redrive them once the cause is fixed)",
            encryption_key=failure_queue_key, retention=failure_retention,
        )

        layer_dir = build_layer(requirements_text(requirement_files(automation)), project.architecture)
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
            on_failure=SendOnlyQueueDestination(self.failure_queue),
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
            reserved_concurrent_executions=reserved_concurrency,
        )
        cfn_function: Any = self.function.node.default_child
        skip_check(self.function, "CKV_AWS_116", "Asynchronous invocations that fail go to the on-failure destination "
                   "(an SQS queue, alarmed), which keeps the error with the event: the successor of a DLQ")
        skip_check(self.function, "CKV_AWS_117", NO_VPC_REASON)
        skip_check(self.function, "CKV_AWS_173", "The environment holds settings and resource names only; secrets "
                   "live in Secrets Manager (DESIGN.md). Lambda encrypts it at rest with its AWS managed key")
        if reserved_concurrency is None:
            skip_check(self.function, "CKV_AWS_115", unreserved_reason or UNRESERVED_REASON)
        cfn_function.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        cfn_function.add_resource_dependency(xray.node.default_child)  # traces can be sent from the first invocation
        if RUNTIME.name != _latest_python().name:
            suppress(self.function, "AwsSolutions-L1", f"The project targets {RUNTIME.name} (DESIGN.md); "
                     f"{_latest_python().name} is adopted once Powertools and Pillow wheels are proven on it")

        if publishes_reports:  # alerts consumes the ops topic and publishes nothing to it
            grant_publish(self.role, core.topic, core.key)

        errors_alarm = ops_alarm(
            self, "ErrorsAlarm", project=project, core=core,
            description=f"{project.prefix} {automation}: the function reported errors",
            metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
        )
        self.alarms = [errors_alarm, queue_alarm]

    def _xray_policy(self) -> iam.Policy:
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
        return xray

    def add_to_role_policy(self, statement: iam.PolicyStatement) -> None:
        self.function.add_to_role_policy(statement)


def grant_publish(role: iam.IRole, topic: sns.ITopic, key: kms.IKey) -> None:
    """sns:Publish on a KMS-encrypted topic, and on its key what SNS uses on the publisher's behalf
    (kms:GenerateDataKey, kms:Decrypt). CDK's ``topic.grant_publish`` grants ``kms:GenerateDataKey*``, a
    wildcard action: this project grants none."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn]))
    role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"],
                                                     resources=[key.key_arn]))


@jsii.implements(lambda_.IDestination)
class SendOnlyQueueDestination:
    """An SQS on-failure destination whose grant is what Lambda uses: sqs:SendMessage on the queue
    (CDK's ``SqsDestination`` grants GetQueueAttributes and GetQueueUrl too, which Lambda never calls)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(self, scope: Construct, fn: lambda_.IFunction,
             *, type: lambda_.DestinationType | None = None) -> lambda_.DestinationConfig:
        fn.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn]))
        key = self.queue.encryption_master_key
        if key is not None:  # SSE-KMS: Lambda encrypts the record with the function's role
            fn.add_to_role_policy(iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                                      resources=[key.key_arn]))
        return lambda_.DestinationConfig(destination=self.queue.queue_arn)


def ops_alarm(
    scope: Construct,
    construct_id: str,
    *,
    project: ProjectSettings,
    core: Core,
    description: str,
    metric: cloudwatch.IMetric,
) -> cloudwatch.Alarm:
    """An alarm that fires when ``metric`` reaches 1 in one period (missing data is not breaching), sent to
    the ops topic when ``project.alarm_actions`` is on: every alarm of this project is one of these."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=metric,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    if project.alarm_actions:
        alarm.add_alarm_action(cw_actions.SnsAction(core.topic))
    return alarm


def dead_letter_queue(
    scope: Construct, construct_id: str, *, project: ProjectSettings, core: Core, what: str,
    encryption_key: kms.IKey | None = None, retention: Duration | None = None,
) -> tuple[sqs.Queue, cloudwatch.Alarm]:
    """An encrypted, SSL-only queue that keeps events nothing could handle (14 days unless ``retention``), and
    an alarm on its depth to the ops topic: the one way this project keeps failed events, so none is lost
    unnoticed. Encrypted with SSE-SQS, or with ``encryption_key`` (SSE-KMS) for records that hold credentials."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS if encryption_key is not None else sqs.QueueEncryption.SQS_MANAGED,
        encryption_master_key=encryption_key,
        enforce_ssl=True,
        retention_period=retention or Duration.days(14),
    )
    if encryption_key is None:
        skip_check(queue, "CKV_AWS_27", "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled); checkov recognises "
                   "only a KMS key. Queues whose records hold credentials use the project key")
    suppress(queue, "AwsSolutions-SQS3", f"A dead-letter queue itself ({what}); its depth is alarmed")
    alarm = ops_alarm(
        scope, f"{construct_id}Alarm", project=project, core=core,
        description=f"{project.prefix} {what}",
        metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum"),
    )
    return queue, alarm


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket | None = None,
    access_logs_prefix: str | None = None,
    unlogged_reason: str | None = None,
    versioned: bool = True,
    unversioned_reason: str | None = None,
    lifecycle_rules: Sequence[s3.LifecycleRule] | None = None,
    object_ownership: s3.ObjectOwnership | None = None,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    encryption_key: kms.IKey | None = None,
) -> s3.Bucket:
    """An S3 bucket set up the one safe way: S3-managed encryption (SSE-KMS with ``encryption_key`` when
    given, with an S3 Bucket Key), SSL-only, public access blocked,
    versioned unless told otherwise, retained on removal unless told otherwise, and its server access logs
    written to ``access_logs`` (under ``access_logs_prefix``).

    A bucket without access logs (the access-log bucket itself, a CloudTrail bucket) must say why in
    ``unlogged_reason``: it becomes the reason of its scoped cdk-nag AwsSolutions-S1 suppression (and checkov
    skip). An unversioned bucket says why in ``unversioned_reason`` (its checkov CKV_AWS_21 skip).
    """
    if not versioned and not unversioned_reason:
        raise ValueError(f"{construct_id}: an unversioned bucket needs unversioned_reason")
    if (access_logs is None) == (unlogged_reason is None):
        raise ValueError(f"{construct_id}: give either access_logs or unlogged_reason (why it has no access logs)")
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS if encryption_key is not None else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        bucket_key_enabled=True if encryption_key is not None else None,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=versioned,
        object_ownership=object_ownership,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_logs_prefix,
        lifecycle_rules=list(lifecycle_rules) if lifecycle_rules else None,
        removal_policy=removal_policy,
    )
    if unlogged_reason is not None:
        suppress(bucket, "AwsSolutions-S1", unlogged_reason)
        skip_check(bucket, "CKV_AWS_18", unlogged_reason)
    if not versioned:
        skip_check(bucket, "CKV_AWS_21", str(unversioned_reason))
    return bucket


def _latest_python() -> lambda_.Runtime:
    names = [name for name in dir(lambda_.Runtime) if name.startswith("PYTHON_3_")]
    latest = max(names, key=lambda name: int(name.rsplit("_", 1)[1]))
    return getattr(lambda_.Runtime, latest)  # type: ignore[no-any-return]


def stack_name(project: ProjectSettings, automation: str) -> str:
    return f"{project.prefix}-{automation.replace('_', '-')}"
