"""sg_remediation: the function, the CloudTrail event rule, the periodic sweep, and (optionally) a trail.

- an EventBridge rule on CloudTrail management events AuthorizeSecurityGroupIngress,
  ModifySecurityGroupRules and CreateSecurityGroup (and AuthorizeSecurityGroupEgress unless ``egress`` is off;
  source aws.ec2, detail-type "AWS API Call via CloudTrail"). EventBridge receives these only when a
  CloudTrail trail logs management events in the account; ``create_trail`` creates one;
- a scheduled EventBridge rule (default hourly) that sweeps every security group of the configured regions;
- both targets retry a failed delivery and keep an undeliverable event in the function's failure queue;
- the role may describe groups, rules and managed prefix lists; in enforce mode it may also revoke ingress
  (and egress, with ``egress: enforce``) on security groups of this account in those regions and the stack's
  own, except groups and rules carrying the exempt tag (enforced by IAM too); in report mode it is read-only.
  Nothing can authorize a rule or change a prefix list.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from sg_remediation.policy import parse_exempt_tag
from stacks.platform import Core, OpsFunction, secure_bucket, suppress
from stacks.settings import ProjectSettings, SgRemediationSettings

AUTOMATION = "sg_remediation"
EVENT_NAMES = ["AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules", "CreateSecurityGroup"]
EGRESS_EVENT_NAMES = ["AuthorizeSecurityGroupEgress"]


class SgRemediationStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectSettings,
        settings: SgRemediationSettings,
        core: Core,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.ops = OpsFunction(
            self,
            "Remediator",
            automation=AUTOMATION,
            project=project,
            core=core,
            description="Revokes security-group ingress open to 0.0.0.0/0 or ::/0 on ports that should not be public",
            environment=settings.function_environment(),
            memory_mb=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
        )
        function = self.ops.function
        # The sweep's regions plus the stack's own: CloudTrail events arrive from the stack's region.
        regions = list(dict.fromkeys([*settings.regions, self.region]))
        self._grant(settings, regions)

        retry = {
            "retry_attempts": settings.event_retry_attempts,
            "max_event_age": Duration.hours(2),
            "dead_letter_queue": self.ops.failure_queue,
        }
        self.change_rule = events.Rule(
            self,
            "SecurityGroupChangeRule",
            description="CloudTrail security-group changes -> sg_remediation",
            event_pattern=events.EventPattern(
                source=["aws.ec2"],
                detail_type=["AWS API Call via CloudTrail"],
                detail={"eventSource": ["ec2.amazonaws.com"],
                        "eventName": EVENT_NAMES + ([] if settings.egress == "off" else EGRESS_EVENT_NAMES)},
            ),
            targets=[targets.LambdaFunction(function, **retry)],  # type: ignore[arg-type]
        )
        self.sweep_rule: events.Rule | None = None
        if settings.sweep_interval_minutes:
            self.sweep_rule = events.Rule(
                self,
                "SweepRule",
                description=f"Sweep of every security group in {', '.join(settings.regions) or 'this region'}",
                schedule=events.Schedule.rate(Duration.minutes(settings.sweep_interval_minutes)),
                targets=[targets.LambdaFunction(function, **retry)],  # type: ignore[arg-type]
            )
        if settings.create_trail:
            self._trail(settings)

    def _grant(self, settings: SgRemediationSettings, regions: list[str]) -> None:
        describe = self._grant_describe(regions)
        self.ops.function.node.add_dependency(describe)
        if settings.mode == "enforce":  # report mode changes nothing: the role stays read-only
            self.ops.function.node.add_dependency(self._grant_revoke(settings, regions))

    def _grant_revoke(self, settings: SgRemediationSettings, regions: list[str]) -> iam.Policy:
        partition = Aws.PARTITION
        exempt = parse_exempt_tag(settings.exempt_tag)
        revoke = iam.Policy(
            self,
            "RevokePolicy",
            statements=[
                iam.PolicyStatement(
                    sid="RevokeOnNonExemptGroupsAndRules",
                    actions=["ec2:RevokeSecurityGroupIngress",
                             *(["ec2:RevokeSecurityGroupEgress"] if settings.egress == "enforce" else [])],
                    resources=[
                        f"arn:{partition}:ec2:{region}:{self.account}:{kind}/*"
                        for region in regions
                        for kind in ("security-group", "security-group-rule")
                    ],
                    # Groups and rules carrying the exempt tag can't be changed even by a bug in the function.
                    conditions={"StringNotEqualsIgnoreCase": {f"aws:ResourceTag/{exempt.key}": exempt.value}},
                )
            ],
        )
        revoke.attach_to_role(self.ops.role)
        suppress(
            revoke,
            "AwsSolutions-IAM5",
            "The function revokes rules on any security group of this account in the configured regions "
            "(which groups is decided at run time); scoped to the security-group and security-group-rule ARNs of "
            "this account and those regions, and denied on groups and rules carrying the exempt tag",
            applies_to=[
                f"Resource::arn:<AWS::Partition>:ec2:{region if not region.startswith('${') else '<AWS::Region>'}:"
                f"{self._account_label()}:{kind}/*"
                for region in regions
                for kind in ("security-group", "security-group-rule")
            ],
        )
        return revoke

    def _grant_describe(self, regions: list[str]) -> iam.Policy:
        describe = iam.Policy(
            self,
            "DescribePolicy",
            statements=[
                iam.PolicyStatement(
                    sid="DescribeSecurityGroups",
                    actions=["ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules",
                             "ec2:DescribeManagedPrefixLists", "ec2:GetManagedPrefixListEntries"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:RequestedRegion": regions}},
                )
            ],
        )
        describe.attach_to_role(self.ops.role)
        suppress(
            describe,
            "AwsSolutions-IAM5",
            "ec2:DescribeSecurityGroups, ec2:DescribeSecurityGroupRules and ec2:DescribeManagedPrefixLists support "
            "no resource-level permissions, and the prefix lists a rule names are only known at run time; read-only, "
            "limited to the configured regions by aws:RequestedRegion",
            applies_to=["Resource::*"],
        )
        return describe

    def _account_label(self) -> str:
        return "<AWS::AccountId>" if self.account.startswith("${") else self.account

    def _trail(self, settings: SgRemediationSettings) -> None:
        bucket = secure_bucket(
            self,
            "TrailBucket",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(settings.trail_log_retention_days),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            unlogged_reason="This bucket only receives CloudTrail log files; CloudTrail records the API calls "
            "made on it, and server access logs of a log bucket would need yet another unlogged bucket",
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=bucket,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
        )
