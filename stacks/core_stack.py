"""The shared parts every automation uses: the ops notifications topic and its key."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.member_stack import member_needed, member_template_body
from stacks.organization import OrganizationHub
from stacks.platform import Core
from stacks.settings import ProjectSettings


class CoreStack(Stack):
    """KMS key (rotated yearly) and the ops topic (encrypted with it, SSL-only publishing).

    Every automation publishes its action reports here; alarms of every function go here too.
    """

    def __init__(self, scope: Construct, construct_id: str, *, project: ProjectSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = kms.Key(
            self,
            "OpsKey",
            description=f"{project.prefix}: encrypts the ops notifications topic",
            enable_key_rotation=True,
            # It only encrypts notifications in flight: nothing at rest depends on it after removal.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch alarms and EventBridge publish to the encrypted topic as services.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAwsServicesToPublishToOpsTopic",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "OpsTopic",
            display_name=f"{project.prefix} ops notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        for address in project.ops_topic.email_subscriptions:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))
        CfnOutput(self, "OpsTopicArn", value=self.topic.topic_arn, description="Action reports and alarms")
        self.core = Core(topic=self.topic, key=self.key)
        # Organization-wide: the hub bus admits the Organization; the member template goes out as a StackSet.
        self.organization = OrganizationHub(
            self, "Organization", project=project,
            template_body=member_template_body(project) if member_needed(project) else None,
        ) if project.organization.enabled else None
