"""alerts: the function, its destinations secret, and every trigger that feeds it.

- a Secrets Manager secret holding ``{"destinations": [...]}`` (created with an empty list: the
  webhook URLs are put in after deploy, never in the template);
- SNS subscriptions: the ops topic (action reports and alarms of every automation) and any
  existing topic listed in ``extra_sns_topic_arns``;
- CloudWatch Logs subscription filters on the configured log groups;
- EventBridge rules (EC2 state changes, GuardDuty, Health, CodePipeline/CodeBuild failures and
  custom patterns) whose target retries and keeps undeliverable events in the function's failure queue.

Organization-wide (``context.project.organization.enabled``): the member template forwards the same patterns,
and every CloudWatch alarm state change, from each target account and region to this (hub) account's default
bus, whose policy (core stack) admits the Organization only. The rules above are on that bus, so they match
forwarded events too; ``MemberAlarmStateChanges`` receives the forwarded alarm state changes when
``alarm_state_changes`` is off (the hub's own alarms reach the function through the ops topic). The function may
read account names from Organizations (``stacks.organization.reach``) and names the account in every message.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from shared.reports import SEVERITIES
from stacks.checkov import skip_check
from stacks.organization import reach
from stacks.platform import Core, OpsFunction, dead_letter_queue, suppress
from stacks.settings import AlertsSettings, ProjectSettings
from stacks.settings.alerts import FINDING_LABELS

AUTOMATION = "alerts"
PLACEHOLDER: dict[str, list[Any]] = {"destinations": []}
ALARM_STATE_CHANGES = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}


def hub_patterns(settings: AlertsSettings, project: ProjectSettings) -> dict[str, dict[str, Any]]:
    """Rule id -> pattern of every rule on the hub's default bus: the built-in rules switched on, and,
    organization-wide, the alarm state changes the member template forwards from the other accounts."""
    patterns = built_in_patterns(settings)
    if project.organization.enabled and "AlarmStateChanges" not in patterns:
        patterns["MemberAlarmStateChanges"] = {**ALARM_STATE_CHANGES,
                                               "account": events.Match.anything_but(Aws.ACCOUNT_ID)}
    return patterns


def built_in_patterns(settings: AlertsSettings) -> dict[str, dict[str, Any]]:
    """Rule id -> EventBridge pattern for each built-in rule switched on."""
    rules = settings.event_rules
    patterns: dict[str, dict[str, Any]] = {}
    if rules.ec2_state_changes:
        patterns["Ec2StateChanges"] = {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance State-change Notification"],
            "detail": {"state": list(rules.ec2_states)},
        }
    if rules.guardduty is not None:
        patterns["GuardDutyFindings"] = {
            "source": ["aws.guardduty"],
            "detail-type": ["GuardDuty Finding"],
            "detail": {"severity": [{"numeric": [">=", rules.guardduty]}]},
        }
    if rules.health:
        patterns["HealthEvents"] = {"source": ["aws.health"], "detail-type": ["AWS Health Event"]}
    if rules.codepipeline_failures:
        patterns["CodePipelineFailures"] = {
            "source": ["aws.codepipeline"],
            "detail-type": ["CodePipeline Pipeline Execution State Change"],
            "detail": {"state": ["FAILED"]},
        }
    if rules.codebuild_failures:
        patterns["CodeBuildFailures"] = {
            "source": ["aws.codebuild"],
            "detail-type": ["CodeBuild Build State Change"],
            "detail": {"build-status": ["FAILED", "FAULT", "TIMED_OUT"]},
        }
    patterns.update(_security_patterns(settings))
    patterns.update(_operations_patterns(settings))
    for index, pattern in enumerate(settings.custom_event_patterns):
        patterns[f"CustomPattern{index}"] = pattern
    return patterns


def _labels_from(minimum: str) -> list[str]:
    return list(FINDING_LABELS[FINDING_LABELS.index(minimum):])


def _security_patterns(settings: AlertsSettings) -> dict[str, dict[str, Any]]:
    rules = settings.event_rules
    patterns: dict[str, dict[str, Any]] = {}
    if rules.security_hub is not None:
        patterns["SecurityHubFindings"] = {
            "source": ["aws.securityhub"],
            "detail-type": ["Security Hub Findings - Imported"],
            "detail": {"findings": {"Severity": {"Label": _labels_from(rules.security_hub)},
                                    "Workflow": {"Status": ["NEW", "NOTIFIED"]}, "RecordState": ["ACTIVE"]}},
        }
    if rules.inspector is not None:
        patterns["InspectorFindings"] = {
            "source": ["aws.inspector2"],
            "detail-type": ["Inspector2 Finding"],
            "detail": {"severity": _labels_from(rules.inspector), "status": ["ACTIVE"]},
        }
    if rules.guardduty_malware_scans:
        patterns["GuardDutyMalwareScans"] = {
            "source": ["aws.guardduty"],
            "detail-type": ["GuardDuty Malware Protection Object Scan Result"],
            "detail": {"scanResultDetails": {"scanResultStatus": [{"anything-but": ["NO_THREATS_FOUND"]}]}},
        }
    return patterns


def _operations_patterns(settings: AlertsSettings) -> dict[str, dict[str, Any]]:
    rules = settings.event_rules
    patterns: dict[str, dict[str, Any]] = {}
    if rules.alarm_state_changes:
        patterns["AlarmStateChanges"] = dict(ALARM_STATE_CHANGES)
    if rules.backup_failures:
        patterns["BackupFailures"] = {
            "source": ["aws.backup"],
            "detail-type": ["Backup Job State Change", "Copy Job State Change"],
            "detail": {"state": ["FAILED", "ABORTED", "EXPIRED"]},
        }
    if rules.config_noncompliant:
        patterns["ConfigNonCompliant"] = {
            "source": ["aws.config"],
            "detail-type": ["Config Rules Compliance Change"],
            "detail": {"newEvaluationResult": {"complianceType": ["NON_COMPLIANT"]}},
        }
    if rules.acm_expiry:
        patterns["AcmExpiry"] = {"source": ["aws.acm"],
                                 "detail-type": ["ACM Certificate Approaching Expiration", "ACM Certificate Expired"]}
    if rules.trusted_advisor:
        patterns["TrustedAdvisorChecks"] = {
            "source": ["aws.trustedadvisor"],
            "detail-type": ["Trusted Advisor Check Item Refresh Notification"],
            "detail": {"status": ["ERROR", "WARN"]},
        }
    return patterns


def ops_topic_filter(min_severity: str) -> dict[str, Any] | None:
    """The ops-topic subscription's filter policy (on the message body): action reports whose severity is
    ``min_severity`` or above, and every CloudWatch alarm notification; None when nothing is filtered.

    On the body rather than on the ``severity`` message attribute the reports also carry: CloudWatch alarm
    notifications have no message attributes, and SNS's ``{"exists": false}`` never matches a message
    without any attribute, so an attribute policy would drop every alarm.
    """
    wanted = list(SEVERITIES[SEVERITIES.index(min_severity):])
    if wanted == list(SEVERITIES):
        return None
    return {"$or": [
        {"metadata": {"additionalContext": {"severity": wanted}}},
        {"AlarmName": [{"exists": True}]},
    ]}


def _event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    keys = {"detail-type": "detail_type"}
    return events.EventPattern(**{keys.get(key, key): value for key, value in pattern.items()})


class AlertsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectSettings,
        settings: AlertsSettings,
        core: Core,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        # Created with an empty list; fill it after deploy (docs/alerts.md). CloudFormation leaves a
        # value put later alone as long as this placeholder in the template does not change.
        self.secret = secretsmanager.Secret(
            self,
            "Destinations",
            secret_name=f"{project.prefix}/alerts/destinations",
            description=f"{project.prefix} alerts: chat destinations, "
            '{"destinations": [{"type": "slack|teams|webhook", "url": "https://...", "min_severity": "info"}]}',
            secret_string_value=SecretValue.unsafe_plain_text(json.dumps(PLACEHOLDER)),
            encryption_key=core.key,  # webhook URLs are credentials: the project key, not the AWS managed one
        )
        suppress(self.secret, "AwsSolutions-SMG4", "The secret holds incoming-webhook URLs issued by Slack / Teams; "
                 "they cannot be rotated by a Lambda, only re-issued by a person in the chat tool")

        # One record per (alert, destination) delivered or kept, so a retry sends only what is missing.
        self.deliveries = dynamodb.TableV2(
            self,
            "Deliveries",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=False),
            removal_policy=RemovalPolicy.DESTROY,
        )
        no_backup = ("Delivery records expire within 15 days (TTL) and are rebuilt by the next delivery; a backup "
                     "would restore nothing of value")
        suppress(self.deliveries, "AwsSolutions-DDB3", no_backup)
        skip_check(self.deliveries, "CKV_AWS_165", no_backup)
        # What a destination could not take: the rendered message and the reason (depth alarmed).
        self.undelivered, self.undelivered_alarm = dead_letter_queue(
            self, "Undelivered", project=project, core=core,
            what="alerts: messages a destination could not take are kept in the undelivered queue "
            "(docs/alerts.md: fix the destination, then replay them)",
        )

        self.ops = OpsFunction(
            self,
            "Alerts",
            automation=AUTOMATION,
            project=project,
            core=core,
            description="Turns CloudWatch alarms, log errors, AWS events and action reports into Slack / Teams / "
            "webhook messages",
            publishes_reports=False,
            environment={
                **settings.function_environment(),
                # Organization-wide: account names from Organizations (no member role: alerts only receives).
                **project.organization.function_environment(project.prefix, AUTOMATION),
                "DESTINATIONS_SECRET_ARN": self.secret.secret_arn,
                "DELIVERY_TABLE_NAME": self.deliveries.table_name,
                "UNDELIVERED_QUEUE_URL": self.undelivered.queue_url,
            },
            memory_mb=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            retry_attempts=settings.retry_attempts,
        )
        function = self.ops.function
        reach(self.ops, project, AUTOMATION, assume=False)
        # Read access to this one secret only (GetSecretValue; no DescribeSecret, no list).
        self.ops.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.secret.secret_arn])
        )
        self.ops.add_to_role_policy(iam.PolicyStatement(
            actions=["kms:Decrypt"], resources=[core.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}}))

        # DeleteItem: Powertools' idempotency removes its record when a delivery fails, so the retry delivers.
        self.deliveries.grant(self.ops.role, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                              "dynamodb:DeleteItem")
        self.ops.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"],
                                                        resources=[self.undelivered.queue_arn]))

        # SNS: the ops topic (action reports filtered on their severity) and any existing alarm topics.
        if settings.subscribe_ops_topic:
            ops_subscription = core.topic.add_subscription(subscriptions.LambdaSubscription(function))
            policy = ops_topic_filter(settings.ops_topic_min_severity)
            if policy is not None:
                cfn_subscription: Any = ops_subscription.node.default_child
                cfn_subscription.filter_policy_scope = "MessageBody"
                cfn_subscription.filter_policy = policy
        for index, arn in enumerate(settings.extra_sns_topic_arns):
            topic = sns.Topic.from_topic_arn(self, f"ExtraTopic{index}", arn)
            topic.add_subscription(subscriptions.LambdaSubscription(function))

        # CloudWatch Logs: one subscription filter per configured log group; the invoke permission for
        # logs.amazonaws.com is scoped to that log group's ARN by LambdaDestination.
        for index, subscription in enumerate(settings.log_subscriptions):
            group = logs.LogGroup.from_log_group_name(self, f"SubscribedLogGroup{index}", subscription.log_group_name)
            logs.SubscriptionFilter(
                self,
                f"LogSubscription{index}",
                log_group=group,
                destination=log_destinations.LambdaDestination(function),
                filter_pattern=logs.FilterPattern.literal(subscription.filter_pattern),
                filter_name=f"{project.prefix}-alerts",
            )

        # EventBridge: retries, then the function's failure queue keeps what could not be delivered.
        self.rules: dict[str, events.Rule] = {}
        for rule_id, pattern in hub_patterns(settings, project).items():
            rule = events.Rule(
                self,
                rule_id,
                description=f"{project.prefix} alerts: {rule_id}",
                event_pattern=_event_pattern(pattern),
            )
            rule.add_target(
                targets.LambdaFunction(
                    function,
                    dead_letter_queue=self.ops.failure_queue,
                    retry_attempts=8,
                    max_event_age=Duration.hours(6),
                )
            )
            self.rules[rule_id] = rule

        CfnOutput(self, "DestinationsSecretArn", value=self.secret.secret_arn,
                  description="Put the chat destinations here (docs/alerts.md)")
        CfnOutput(self, "FunctionName", value=function.function_name)
