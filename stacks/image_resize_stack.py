"""image_resize: the function, its scoped S3 access, and its trigger (S3 notifications, direct or through SQS).

The source bucket is created here (public access blocked, SSL only, encrypted, access-logged) or an existing
one is imported by name (``source_bucket_name``). Notifications are added through CDK's bucket-notifications
custom resource either way, which merges them into the bucket's configuration.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.checkov import skip_check
from stacks.platform import Core, OpsFunction, dead_letter_queue, secure_bucket, suppress
from stacks.settings import ProjectSettings
from stacks.settings.image_resize import ImageResizeSettings

AUTOMATION = "image_resize"
# Image suffixes the notifications filter on. S3 suffix filters are case-sensitive and take one
# suffix per rule, so each suffix gets its own notification, in lower and upper case.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".avif", ".heic", ".heif")
# CDK's singleton Lambda behind Custom::S3BucketNotifications.
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def notification_suffixes() -> list[str]:
    suffixes: list[str] = []
    for suffix in IMAGE_SUFFIXES:
        for variant in (suffix, suffix.upper()):
            if variant not in suffixes:
                suffixes.append(variant)
    return suffixes


class ImageResizeStack(Stack):
    """Resize images uploaded under a prefix of an S3 bucket into named renditions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectSettings,
        settings: ImageResizeSettings,
        core: Core,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Access logs are delivered under a bucket policy (not the legacy LogDeliveryWrite ACL).
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.settings = settings
        if settings.output_format is not None:
            Annotations.of(self).add_warning_v2(
                "opsauto:image_resize:output_format",
                f"image_resize: output_format is deprecated; write output_formats: [\"{settings.output_format}\"] "
                "(several formats are allowed, e.g. [\"avif\", \"webp\", \"jpeg\"])",
            )
        self.key = self._key(settings)

        self.source_bucket = self._source_bucket(settings)
        if settings.dest_bucket_name and settings.dest_bucket_name != settings.source_bucket_name:
            self.dest_bucket: s3.IBucket = s3.Bucket.from_bucket_name(self, "DestBucket", settings.dest_bucket_name)
        else:
            self.dest_bucket = self.source_bucket

        timeout = Duration.seconds(settings.timeout_seconds)
        self.ops = OpsFunction(
            self,
            "Resize",
            automation=AUTOMATION,
            project=project,
            core=core,
            description=f"Resizes images under s3://.../{settings.source_prefix} into renditions under "
            f"{settings.dest_prefix}",
            memory_mb=settings.memory_mb,
            timeout=timeout,
            reserved_concurrency=settings.reserved_concurrency,
            environment={**settings.function_environment(), "DEST_BUCKET": self.dest_bucket.bucket_name},
        )
        self._grant(settings)
        self._trigger(settings, timeout, project, core)
        self._suppress_notifications_handler()

        CfnOutput(self, "SourceBucketName", value=self.source_bucket.bucket_name,
                  description=f"Upload images under {settings.source_prefix}")
        CfnOutput(self, "FunctionName", value=self.ops.function.function_name)

    # -- buckets -------------------------------------------------------------------------------------
    def _key(self, settings: ImageResizeSettings) -> kms.IKey | None:
        """The customer-managed key of the buckets (SSE-KMS), or None for SSE-S3."""
        if settings.kms_key_arn == "create":
            return kms.Key(self, "BucketKey", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                           description="image_resize: encrypts the source bucket's images and renditions")
        if settings.kms_key_arn:
            return kms.Key.from_key_arn(self, "BucketKey", settings.kms_key_arn)
        return None

    def _source_bucket(self, settings: ImageResizeSettings) -> s3.IBucket:
        if settings.source_bucket_name:
            return s3.Bucket.from_bucket_name(self, "SourceBucket", settings.source_bucket_name)
        self.access_logs = secure_bucket(
            self,
            "AccessLogs",
            versioned=False,
            unversioned_reason="Server access logs are written once and expire after a year; versions would keep "
            "nothing a log line does not",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            unlogged_reason="This is the access-log bucket of the source bucket; logging it into itself would loop",
        )
        return secure_bucket(
            self,
            "SourceBucket",
            versioned=False,
            unversioned_reason="Every upload is resized from its current version and a rendition is rewritten "
            "from its source; versions would keep every overwritten image and rendition at storage cost "
            "(use an existing, versioned bucket through source_bucket_name to keep them)",
            access_logs=self.access_logs,
            access_logs_prefix="source-bucket/",
            encryption_key=self.key,
        )

    # -- permissions ---------------------------------------------------------------------------------
    def _grant(self, settings: ImageResizeSettings) -> None:
        source_objects = self.source_bucket.arn_for_objects(f"{settings.source_prefix}*")
        dest_objects = self.dest_bucket.arn_for_objects(f"{settings.dest_prefix}*")
        statements = [
            iam.PolicyStatement(sid="ReadSourcePrefix", actions=["s3:GetObject"], resources=[source_objects]),
            iam.PolicyStatement(
                sid="WriteDestPrefix",
                # GetObject (HeadObject) reads the renditions' metadata: the idempotency check.
                actions=["s3:PutObject", "s3:GetObject", *(["s3:DeleteObject"] if settings.delete_renditions else [])],
                resources=[dest_objects],
            ),
            # Without ListBucket, HeadObject on a missing key answers 403 instead of 404: the function
            # could not tell "no rendition yet" (or "source deleted") from a permission problem.
            iam.PolicyStatement(
                sid="ListBuckets",
                actions=["s3:ListBucket"],
                resources=list(dict.fromkeys([self.source_bucket.bucket_arn, self.dest_bucket.bucket_arn])),
            ),
        ]
        if self.key is not None:
            # Reading SSE-KMS objects needs kms:Decrypt, writing them kms:GenerateDataKey; only through S3.
            statements.append(iam.PolicyStatement(
                sid="BucketKeyThroughS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
            ))
        self.policy = iam.Policy(self, "ImageAccess", statements=statements)
        self.policy.attach_to_role(self.ops.role)
        NagSuppressions.add_resource_suppressions(
            self.policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Object access is scoped to the configured prefixes: read <source_prefix>*, "
                    "write/read(/delete) <dest_prefix>*; a prefix wildcard is the narrowest S3 allows",
                    applies_to=[
                        RegexAppliesTo(regex=_object_regex(settings.source_prefix)),
                        RegexAppliesTo(regex=_object_regex(settings.dest_prefix)),
                    ],
                )
            ],
        )

    # -- trigger -------------------------------------------------------------------------------------
    def _trigger(self, settings: ImageResizeSettings, timeout: Duration, project: ProjectSettings, core: Core) -> None:
        destination: s3.IBucketNotificationDestination
        if settings.trigger == "queue":
            self.dead_letter_queue, _ = dead_letter_queue(
                self, "ImageEventsDLQ", project=project, core=core,
                what="image_resize: image events that failed 5 times (redrive them once the cause is fixed)",
            )
            self.queue = sqs.Queue(
                self,
                "ImageEvents",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                visibility_timeout=Duration.seconds(max(30, settings.timeout_seconds * 6)),
                retention_period=Duration.days(4),
                dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=5),
            )
            skip_check(self.queue, "CKV_AWS_27", "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled); checkov "
                       "recognises only a KMS key. It holds S3 event notifications: bucket and key names")
            self.ops.function.add_event_source(
                event_sources.SqsEventSource(
                    self.queue,
                    batch_size=settings.batch_size,
                    report_batch_item_failures=True,
                    # Within the reservation: messages wait in the queue instead of being throttled into the DLQ.
                    max_concurrency=settings.reserved_concurrency,
                )
            )
            destination = s3n.SqsDestination(self.queue)
        else:
            destination = s3n.LambdaDestination(self.ops.function)
        event_types = [s3.EventType.OBJECT_CREATED]
        if settings.delete_renditions:
            event_types.append(s3.EventType.OBJECT_REMOVED)
        for event_type in event_types:
            for suffix in notification_suffixes():
                self.source_bucket.add_event_notification(
                    event_type, destination, s3.NotificationKeyFilter(prefix=settings.source_prefix, suffix=suffix)
                )

    def _suppress_notifications_handler(self) -> None:
        handler = self.node.try_find_child(NOTIFICATIONS_HANDLER_ID)
        if not isinstance(handler, Construct):
            return
        suppress(handler, "AwsSolutions-IAM4", "CDK's bucket-notifications custom resource handler uses "
                 "AWSLambdaBasicExecutionRole to write its own logs; it runs only on deploy",
                 applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])
        for check_id, reason in (
            ("CKV_AWS_116", "CDK's bucket-notifications handler is a CloudFormation custom resource, invoked "
             "synchronously on deploy; CloudFormation reports its failure"),
            ("CKV_AWS_117", "CDK's bucket-notifications handler calls only the S3 API, on deploy"),
            ("CKV_AWS_115", "CDK's bucket-notifications handler runs once per deploy"),
        ):
            skip_check(handler, check_id, reason)


def _object_regex(prefix: str) -> str:
    """cdk-nag's rendering of ``<bucket arn>/<prefix>*`` for a created (token) or imported (name) bucket."""
    escaped = "".join(f"\\{c}" if c in r".^$*+?()[]{}|\/" else c for c in prefix)
    return f"/^Resource::(<[A-Za-z0-9]+\\.Arn>|arn:<AWS::Partition>:s3:::[a-z0-9.-]+)\\/{escaped}\\*$/"
