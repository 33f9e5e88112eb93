"""Fanout: the work queue, run table and event source mapping a periodic automation fans out through.

The scheduled invocation of the automation's function sends one work item per (account, region) to the
work queue (``shared.fanout_run``); the event source mapping on that queue invokes the same function with
one work item at a time, at most ``organization.max_concurrency`` at once, with partial batch responses.
A work item that fails ``max_receives`` times goes to the dead-letter queue, whose depth is alarmed to the
ops topic (``dead_letter_queue``). Outcomes and the run's count go to the run table (DynamoDB, items expire
after 14 days), from which the run's one summary report is built.

Adds to the function: ``WORK_QUEUE_URL``, ``RUN_TABLE_NAME``, ``WORK_MAX_RECEIVES``, ``RUN_DEADLINE_SECONDS``
(read by ``shared.fanout.FanoutConfig.from_env``), send on the queue, read/write on the table.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import skip_check
from stacks.platform import Core, OpsFunction, dead_letter_queue, suppress
from stacks.settings import ProjectSettings

MAX_RECEIVES = 3
# SQS's advice for a queue feeding Lambda: a visibility timeout of six times the function's timeout.
VISIBILITY_FACTOR = 6
MIN_RUN_DEADLINE = Duration.hours(1)


class Fanout(Construct):
    """Attributes: ``queue``, ``dead_letter_queue``, ``alarm``, ``table``, ``event_source``, ``environment``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ops: OpsFunction,
        project: ProjectSettings,
        core: Core,
        automation: str,
        timeout: Duration,
        max_receives: int = MAX_RECEIVES,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue, self.alarm = dead_letter_queue(
            self, "WorkDeadLetters", project=project, core=core,
            what=f"{automation}: work items (one account and region each) that failed {max_receives} times; "
                 "they are named as failed in their run's report",
        )
        visibility = Duration.seconds(timeout.to_seconds() * VISIBILITY_FACTOR)
        self.queue = sqs.Queue(
            self,
            "WorkQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receives, queue=self.dead_letter_queue),
        )
        skip_check(self.queue, "CKV_AWS_27", "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled); checkov "
                   "recognises only a KMS key. Work items name an account and a region")
        self.table = dynamodb.Table(
            self,
            "RunTable",
            partition_key=dynamodb.Attribute(name="run", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="item", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,
        )
        no_backup = ("Bookkeeping of runs in flight (outcomes per target, expiring after 14 days); losing it loses at "
                     "most the summaries of runs not yet reported")
        suppress(self.table, "AwsSolutions-DDB3", no_backup)
        skip_check(self.table, "CKV_AWS_28", no_backup)
        skip_check(self.table, "CKV_AWS_119", "Encrypted at rest with the AWS managed key: the table holds account "
                   "ids, regions and outcome counts of runs in flight, no secrets; a customer managed key would add "
                   "a KMS call to every item written (the same trade-off as the log groups, docs/security.md)")
        self.event_source = event_sources.SqsEventSource(
            self.queue,
            batch_size=1,  # one target per invocation: its own timeout, its own retry
            max_concurrency=project.organization.max_concurrency,
            report_batch_item_failures=True,
        )
        ops.function.add_event_source(self.event_source)
        # SendMessage (SendMessageBatch is the same action); CDK's grant_send_messages adds GetQueueAttributes
        # and GetQueueUrl, which the fan-out never calls (it has the URL).
        ops.role.add_to_principal_policy(iam.PolicyStatement(actions=["sqs:SendMessage"],
                                                             resources=[self.queue.queue_arn]))
        # What the fan-out calls (a transaction's items are authorized as PutItem/UpdateItem); CDK's
        # grant_read_write_data adds batch, scan, stream, delete and describe actions it never calls.
        self.table.grant(ops.role, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query")
        deadline = max(MIN_RUN_DEADLINE.to_seconds(), 2 * visibility.to_seconds() * max_receives)
        self.environment = {
            "WORK_QUEUE_URL": self.queue.queue_url,
            "RUN_TABLE_NAME": self.table.table_name,
            "WORK_MAX_RECEIVES": str(max_receives),
            "RUN_DEADLINE_SECONDS": str(int(deadline)),
        }
        for key, value in self.environment.items():
            ops.function.add_environment(key, value)
