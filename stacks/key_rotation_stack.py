"""key_rotation: rotates managed IAM users' access keys through Secrets Manager; sweeps stale keys daily.

One function serves both triggers:

- per managed user, a KMS-encrypted secret ``{"UserName", "AccessKeyId", "SecretAccessKey"}`` with a
  rotation schedule that invokes the function with the four rotation steps. The stack cannot know the
  user's first key: the secret starts as ``{"UserName": ...}`` and Secrets Manager rotates it right after
  the schedule is created, so the first rotation's createSecret creates the first key;
- an EventBridge rule (``sweep_schedule``, daily by default) that runs the stale-key sweep;
- organization-wide (``context.project.organization.enabled``): the sweep's fan-out (``stacks.fanout``: a work
  queue with one item per target account, its event source mapping, the run table) and the hub role's reach
  (``stacks.organization.reach``: the role is named ``<prefix>-key-rotation-hub`` and may assume
  ``<member_role_name>-key-rotation`` in the target accounts). Rotation stays in this account.

Permissions:

- rotation: iam:CreateAccessKey/DeleteAccessKey/UpdateAccessKey/ListAccessKeys/GetAccessKeyLastUsed and
  ListUserTags/TagUser/UntagUser (the record of when a key was deactivated) on the managed users' ARNs
  only (the sweep retires managed users' previous keys with these in both modes: that is part of
  rotation); Secrets Manager read/write/stage/tag on the managed secrets only (CDK's
  RotationSchedule adds the read/write/stage part, the KMS grant via Secrets Manager, and the invoke
  permission for secretsmanager.amazonaws.com);
- sweep (read): iam:ListUsers and GenerateCredentialReport/GetCredentialReport ("*": no resource-level
  permission), ListAccessKeys/GetAccessKeyLastUsed/ListUserTags on ``user/*``, GetGroup on the exempt group;
- sweep (``mode: enforce`` only): iam:UpdateAccessKey/DeleteAccessKey/TagUser/UntagUser on ``user/*``.
  This is the trade-off of a sweep that must reach keys nobody registered: in ``report`` mode the role
  cannot change any key outside the managed users.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as event_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.fanout import Fanout
from stacks.organization import reach
from stacks.platform import Core, OpsFunction, grant_publish, suppress
from stacks.settings import ProjectSettings
from stacks.settings.key_rotation import KeyRotationSettings

AUTOMATION = "key_rotation"
ROTATION_KEY_ACTIONS = [
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:UpdateAccessKey",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    # The record of when a key was deactivated (a user tag): written by the sweep, read by createSecret.
    "iam:ListUserTags",
    "iam:TagUser",
    "iam:UntagUser",
]


def secret_name(project: ProjectSettings, user_name: str, configured: str | None) -> str:
    return configured or f"{project.prefix}/key-rotation/{user_name}"


class KeyRotationStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectSettings,
        settings: KeyRotationSettings,
        core: Core,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.secrets: dict[str, secretsmanager.Secret] = {}
        # The key exists only with managed users (a KMS key costs money every month).
        self.key = kms.Key(
            self,
            "SecretsKey",
            description=f"{project.prefix} key_rotation: encrypts the secrets holding IAM access keys",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        ) if settings.managed_users else None
        for index, user in enumerate(settings.managed_users):
            self.secrets[user.user_name] = secretsmanager.Secret(
                self,
                f"Secret{index}",
                secret_name=secret_name(project, user.user_name, user.secret_name),
                description=f"{project.prefix} key_rotation: access key of IAM user {user.user_name} "
                f"(rotated every {user.rotation_days} days)",
                encryption_key=self.key,
                # Not a secret: the user's name. The first rotation adds AccessKeyId and SecretAccessKey.
                secret_object_value={"UserName": SecretValue.unsafe_plain_text(user.user_name)},
                removal_policy=RemovalPolicy.RETAIN,
            )

        # Secret names, known at synth (Secrets Manager takes a name wherever it takes an ARN).
        managed = {user.user_name: secret_name(project, user.user_name, user.secret_name)
                   for user in settings.managed_users}
        # Owner notices: one message per owner, attribute "owner"; emails get a subscription filtered to it.
        self.owner_topic = sns.Topic(
            self, "OwnerNotices", display_name=f"{project.prefix} access keys you own",
            master_key=core.key, enforce_ssl=True,
        )
        # Organization-wide: the target accounts. IAM is global: one target per account, in the function's own
        # region (REGIONS left unset), whatever regions the organization lists.
        targets = project.organization.function_environment(project.prefix, AUTOMATION)
        targets.pop("REGIONS", None)
        environment = {**settings.function_environment(), "MANAGED_SECRETS": json.dumps(managed, sort_keys=True),
                       "OWNER_TOPIC_ARN": self.owner_topic.topic_arn, **targets}
        self.ops = OpsFunction(
            self,
            "KeyRotation",
            automation=AUTOMATION,
            project=project,
            core=core,
            description="Rotates managed IAM users' access keys (Secrets Manager rotation) and sweeps stale keys",
            environment=environment,
            memory_mb=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            retry_attempts=1,
            max_event_age=Duration.hours(6),
        )
        function = self.ops.function
        user_arns = [
            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:user{user.path}{user.user_name}"
            for user in settings.managed_users
        ]
        if user_arns:
            function.add_to_role_policy(
                iam.PolicyStatement(sid="RotateManagedUsersKeys", actions=ROTATION_KEY_ACTIONS, resources=user_arns)
            )
        for index, (user_name, secret) in enumerate(self.secrets.items()):
            days = next(u.rotation_days for u in settings.managed_users if u.user_name == user_name)
            secret.add_rotation_schedule(
                f"Rotation{index}",
                rotation_lambda=function,
                automatically_after=Duration.days(days),
            )
        if self.secrets:
            # finishSecret records on the secret when the new key became current (read by the sweep).
            function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="RecordRotationOnManagedSecrets",
                    actions=["secretsmanager:TagResource"],
                    resources=[secret.secret_full_arn or f"{secret.secret_arn}-??????" for secret in
                               self.secrets.values()],
                    conditions={"ForAllValues:StringLike": {"aws:TagKeys": ["KeyRotation:*"]}},
                )
            )
            suppress(self.ops.role, "AwsSolutions-IAM5",
                     "secretsmanager:GetRandomPassword has no resource-level permission; CDK's RotationSchedule "
                     "adds it to every rotation function (this one does not call it)",
                     applies_to=["Resource::*"])

        self._sweep_permissions(settings)
        # Organization-wide: the sweep assumes the member role of each target account, one work item each.
        reach(self.ops, project, AUTOMATION)
        self.fanout = Fanout(self, "Fanout", ops=self.ops, project=project, core=core, automation=AUTOMATION,
                             timeout=Duration.seconds(settings.timeout_seconds)) \
            if project.organization.enabled else None
        grant_publish(self.ops.role, self.owner_topic, core.key)
        function.add_to_role_policy(iam.PolicyStatement(
            sid="SubscribeOwners", actions=["sns:Subscribe", "sns:ListSubscriptionsByTopic"],
            resources=[self.owner_topic.topic_arn]))
        CfnOutput(self, "OwnerTopicArn", value=self.owner_topic.topic_arn,
                  description="Owner notices (message attribute 'owner'): subscribe with a filter policy on it")
        for index, (user_name, secret) in enumerate(self.secrets.items()):
            CfnOutput(self, f"SecretArn{index}", value=secret.secret_arn,
                      description=f"Secret holding the access key of {user_name} (read AWSCURRENT)")
        if self.key is not None:
            CfnOutput(self, "SecretsKeyArn", value=self.key.key_arn,
                      description="KMS key of the secrets: readers need kms:Decrypt on it (via Secrets Manager)")

        self.rule = events.Rule(
            self,
            "SweepSchedule",
            description=f"{project.prefix} key_rotation: stale access-key sweep",
            schedule=events.Schedule.expression(settings.sweep_schedule),
            targets=[
                event_targets.LambdaFunction(
                    function,
                    retry_attempts=2,
                    max_event_age=Duration.hours(6),
                    dead_letter_queue=self.ops.failure_queue,
                )
            ],
        )

    def _sweep_permissions(self, settings: KeyRotationSettings) -> None:
        users = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:user/*"
        statements = [
            iam.PolicyStatement(sid="ListUsers", actions=["iam:ListUsers"], resources=["*"]),
            iam.PolicyStatement(
                sid="ReadEveryUsersKeys",
                actions=["iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:ListUserTags"],
                resources=[users],
            ),
            # Above credential_report_users users, last use comes from one credential report.
            iam.PolicyStatement(sid="ReadCredentialReport",
                                actions=["iam:GenerateCredentialReport", "iam:GetCredentialReport"], resources=["*"]),
        ]
        applies_to = ["Resource::*", "Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*"]
        if settings.exempt_group:
            statements.append(
                iam.PolicyStatement(
                    sid="ReadExemptGroup",
                    actions=["iam:GetGroup"],
                    resources=[
                        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:group/{settings.exempt_group}",
                        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:group/*/{settings.exempt_group}",
                    ],
                )
            )
            applies_to.append(
                f"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:group/*/{settings.exempt_group}"
            )
        reason = ("The sweep audits every IAM user: iam:ListUsers and the credential report calls "
                  "(GenerateCredentialReport, GetCredentialReport) have no resource-level permission; the key reads "
                  "(ListAccessKeys, GetAccessKeyLastUsed, ListUserTags) are on user/* of this account")
        if settings.mode == "enforce":
            statements.append(
                iam.PolicyStatement(
                    sid="RetireStaleKeys",
                    actions=["iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:TagUser", "iam:UntagUser"],
                    resources=[users],
                )
            )
            reason += ("; mode 'enforce': UpdateAccessKey/DeleteAccessKey on user/* so the sweep can deactivate and "
                       "delete stale keys of any user (guarded by max_changes and the exemptions; use 'report' to "
                       "keep this role unable to change keys outside the managed users)")
        self.sweep_policy = iam.Policy(self, "SweepPolicy", statements=statements)
        self.sweep_policy.attach_to_role(self.ops.role)
        suppress(self.sweep_policy, "AwsSolutions-IAM5", reason, applies_to=applies_to)

