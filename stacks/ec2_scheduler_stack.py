"""ec2_scheduler: one function run every few minutes by EventBridge Scheduler.

The function's role may start/stop/tag only EC2 instances, RDS databases and Auto Scaling groups that
carry the schedule tag key (``aws:ResourceTag/<tag_key>`` condition), describe everything (those APIs
have no resource-level permissions), create grants on the configured KMS keys for encrypted volumes, and
read exactly the calendars the schedules name (the S3 objects, the Change Calendars) and the one
schedules parameter.

With ``organization.enabled`` the function works in every target account and region: its role is named
``<prefix>-ec2-scheduler-hub`` and may assume the member role (which carries ``resource_statements`` in each
account), and a work queue with an event source mapping (``stacks.fanout.Fanout``) runs one target at a time,
at most ``max_concurrency`` at once.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from ec2_scheduler.schedule import calendar_location, s3_location
from stacks.fanout import Fanout
from stacks.organization import reach
from stacks.platform import Core, OpsFunction, suppress
from stacks.settings import ProjectSettings
from stacks.settings.ec2_scheduler import Ec2SchedulerSettings

AUTOMATION = "ec2_scheduler"
DESCRIBE_SID = "DescribeResources"


def resource_statements(settings: Ec2SchedulerSettings) -> list[iam.PolicyStatement]:
    """What the function may do to the resources it schedules, in the account whose role holds them: the
    function's own role, and the member role of every target account (``stacks.member_stack``) alike.

    Describe everything (no resource-level permissions); in enforce mode start/stop/tag only instances and
    databases and Auto Scaling groups carrying the tag key, tag writes limited to ``<tag_key>State`` /
    ``<tag_key>Error`` (``<tag_key>Sizes`` on groups), and grants
    for EC2 on the listed KMS keys (encrypted volumes). Report mode: describe only.
    """
    tag_key, partition, account = settings.tag_key, Aws.PARTITION, Aws.ACCOUNT_ID
    describe = ["ec2:DescribeInstances"]
    if settings.include_rds:
        describe += ["rds:DescribeDBInstances", "rds:DescribeDBClusters"]
    if settings.include_asg:
        describe += ["autoscaling:DescribeAutoScalingGroups"]
    statements = [iam.PolicyStatement(sid=DESCRIBE_SID, actions=describe, resources=["*"])]
    if settings.mode != "enforce":  # report mode changes nothing: the role stays read-only
        return statements
    tagged = {"StringLike": {f"aws:ResourceTag/{tag_key}": "*"}}
    instances = [f"arn:{partition}:ec2:*:{account}:instance/*"]
    statements += [
        iam.PolicyStatement(sid="StartStopTaggedInstances", actions=["ec2:StartInstances", "ec2:StopInstances"],
                            resources=instances, conditions=tagged),
        iam.PolicyStatement(sid="RecordStateOnTaggedInstances", actions=["ec2:CreateTags"], resources=instances,
                            conditions={**tagged, "ForAllValues:StringEquals": {
                                "aws:TagKeys": [f"{tag_key}State", f"{tag_key}Error"]}}),
        iam.PolicyStatement(sid="ClearErrorOnTaggedInstances", actions=["ec2:DeleteTags"], resources=instances,
                            conditions={**tagged, "ForAllValues:StringEquals": {"aws:TagKeys": [f"{tag_key}Error"]}}),
    ]
    if settings.include_rds:
        databases = [f"arn:{partition}:rds:*:{account}:db:*", f"arn:{partition}:rds:*:{account}:cluster:*"]
        statements += [
            iam.PolicyStatement(sid="StartStopTaggedDatabases", resources=databases, conditions=tagged,
                                actions=["rds:StartDBInstance", "rds:StopDBInstance", "rds:StartDBCluster",
                                         "rds:StopDBCluster"]),
            iam.PolicyStatement(sid="RecordStateOnTaggedDatabases", actions=["rds:AddTagsToResource"],
                                resources=databases, conditions={**tagged, "ForAllValues:StringEquals": {
                                    "aws:TagKeys": [f"{tag_key}State"]}}),
        ]
    if settings.include_asg:
        groups = [f"arn:{partition}:autoscaling:*:{account}:autoScalingGroup:*"]
        statements += [
            iam.PolicyStatement(sid="ResizeTaggedGroups", actions=["autoscaling:UpdateAutoScalingGroup"],
                                resources=groups, conditions=tagged),
            iam.PolicyStatement(sid="RecordStateOnTaggedGroups", actions=["autoscaling:CreateOrUpdateTags"],
                                resources=groups, conditions={**tagged, "ForAllValues:StringEquals": {
                                    "aws:TagKeys": [f"{tag_key}State", f"{tag_key}Sizes"]}}),
        ]
    if settings.kms_key_arns:
        # Starting an instance whose EBS volumes use a customer-managed key needs a grant for EC2.
        statements.append(iam.PolicyStatement(sid="GrantsForEncryptedVolumes", actions=["kms:CreateGrant"],
                                              resources=list(settings.kms_key_arns),
                                              conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
    return statements


class Ec2SchedulerStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectSettings,
        settings: Ec2SchedulerSettings,
        core: Core,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        tag_key = settings.tag_key
        environment = {**settings.function_environment(),
                       **project.organization.function_environment(project.prefix, AUTOMATION, settings.regions)}
        interval = Duration.minutes(settings.interval_minutes)
        self.ops = OpsFunction(
            self,
            "Scheduler",
            automation=AUTOMATION,
            project=project,
            core=core,
            description="Starts and stops tagged EC2 instances and RDS databases on named schedules",
            environment=environment,
            memory_mb=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            # A run is superseded by the next one: never replay an event older than one interval.
            retry_attempts=1,
            max_event_age=Duration.seconds(max(60, settings.interval_minutes * 60)),
        )
        function = self.ops.function
        statements = resource_statements(settings)
        for statement in statements[1:]:
            function.add_to_role_policy(statement)
        self._grant_sources(function, settings)
        describe = iam.Policy(self, "DescribePolicy", statements=statements[:1])
        describe.attach_to_role(self.ops.role)
        suppress(describe, "AwsSolutions-IAM5", "ec2:DescribeInstances and autoscaling:DescribeAutoScalingGroups "
                 "have no resource-level permissions; the RDS describe calls list every database to find the "
                 "tagged ones. Read-only.",
                 applies_to=["Resource::*"])
        suppress(self.ops.role, "AwsSolutions-IAM5",
                 "Start/stop/tag is allowed on any instance or database of the account only while it carries the "
                 f"schedule tag key ({tag_key}); tag writes are limited to the {tag_key}State key",
                 applies_to=[
                     "Resource::arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:instance/*",
                     "Resource::arn:<AWS::Partition>:rds:*:<AWS::AccountId>:db:*",
                     "Resource::arn:<AWS::Partition>:rds:*:<AWS::AccountId>:cluster:*",
                     "Resource::arn:<AWS::Partition>:autoscaling:*:<AWS::AccountId>:autoScalingGroup:*",
                 ])
        reach(self.ops, project, AUTOMATION)
        self.fanout: Fanout | None = None
        if project.organization.enabled:  # one work item per (account, region), at most max_concurrency at once
            self.fanout = Fanout(self, "Fanout", ops=self.ops, project=project, core=core, automation=AUTOMATION,
                                 timeout=Duration.seconds(settings.timeout_seconds))

        # The schedule's own role: it may invoke only this function (and its versions/aliases).
        self.invoke_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description=f"{project.prefix} ec2_scheduler: EventBridge Scheduler invokes the function",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"{project.prefix} ec2_scheduler: every {settings.interval_minutes} minutes",
            schedule=scheduler.ScheduleExpression.rate(interval),
            time_window=scheduler.TimeWindow.off(),
            target=targets.LambdaInvoke(
                function,
                input=scheduler.ScheduleTargetInput.from_object(
                    {
                        "version": "0",
                        "id": scheduler.ContextAttribute.execution_id,
                        "detail-type": "Scheduled Event",
                        "source": "aws.scheduler",
                        "account": Aws.ACCOUNT_ID,
                        "time": scheduler.ContextAttribute.scheduled_time,
                        "region": Aws.REGION,
                        "resources": [scheduler.ContextAttribute.schedule_arn],
                        "detail": {"attemptNumber": scheduler.ContextAttribute.attempt_number},
                    }
                ),
                role=self.invoke_role,
                dead_letter_queue=self.ops.failure_queue,
                retry_attempts=2,
                max_event_age=interval if settings.interval_minutes > 1 else Duration.minutes(1),
            ),
        )
        # After the target exists: its grant created the role's policy.
        suppress(self.invoke_role, "AwsSolutions-IAM5", "lambda:InvokeFunction on this one function's "
                 "qualified ARNs (<function ARN>:*, versions and aliases) as CDK's grantInvoke writes it",
                 applies_to=[f"Resource::<{self._logical_id(function)}.Arn>:*"])

    def _grant_sources(self, function: Any, settings: Ec2SchedulerSettings) -> None:
        """Read on exactly the named calendars (S3 objects, Change Calendars) and the schedules parameter, in
        the hub's account (the schedules are read there, also for organization-wide runs)."""
        objects, change_calendars = [], []
        for ref in settings.calendar_refs():
            if calendar_location(ref)[0] == "s3":
                bucket, key = s3_location(ref)
                objects.append(f"arn:{Aws.PARTITION}:s3:::{bucket}/{key}")
            else:
                change_calendars.append(self.format_arn(service="ssm", resource="document",
                                                        resource_name=calendar_location(ref)[1]))
        if objects:
            function.add_to_role_policy(iam.PolicyStatement(sid="ReadCalendarFiles", actions=["s3:GetObject"],
                                                            resources=objects))
        if change_calendars:
            function.add_to_role_policy(iam.PolicyStatement(sid="ReadChangeCalendars",
                                                            actions=["ssm:GetCalendarState"],
                                                            resources=change_calendars))
        if settings.schedules_parameter:
            name = settings.schedules_parameter.lstrip("/")
            function.add_to_role_policy(iam.PolicyStatement(
                sid="ReadSchedulesParameter", actions=["ssm:GetParameter"],
                resources=[self.format_arn(service="ssm", resource="parameter", resource_name=name)]))

    def _logical_id(self, construct: Construct) -> str:
        child: Any = construct.node.default_child
        return str(self.resolve(self.get_logical_id(child)))
