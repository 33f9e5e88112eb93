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

With ``organization.enabled``: the role is named ``<prefix>-sg-remediation-hub`` and may assume the member role
(which carries ``resource_statements`` in each target account); changes made in member accounts arrive on this
account's default bus (forwarded by the member stack) and match the same rule; the sweep fans out one work
item per (account, region) through a work queue (``stacks.fanout.Fanout``).
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
from stacks.fanout import Fanout
from stacks.organization import reach
from stacks.platform import Core, OpsFunction, secure_bucket, suppress
from stacks.settings import ProjectSettings, SgRemediationSettings

AUTOMATION = "sg_remediation"
EVENT_NAMES = ["AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules", "CreateSecurityGroup"]
EGRESS_EVENT_NAMES = ["AuthorizeSecurityGroupEgress"]


def resource_statements(settings: SgRemediationSettings, regions: list[str]) -> list[iam.PolicyStatement]:
    """What the function may do to security groups in the account whose role holds them: the function's own
    role, and the member role of every target account (``stacks.member_stack``) alike.

    Describe groups, rules and managed prefix lists in ``regions``; in enforce mode revoke ingress (and egress,
    with ``egress: enforce``) on this account's groups and rules in those regions, never on ones carrying the
    exempt tag (enforced by IAM too). Report mode: describe only. Nothing can authorize a rule.
    """
    statements = [iam.PolicyStatement(
        sid="DescribeSecurityGroups",
        actions=["ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeManagedPrefixLists",
                 "ec2:GetManagedPrefixListEntries"],
        resources=["*"],
        conditions={"StringEquals": {"aws:RequestedRegion": regions}},
    )]
    if settings.mode != "enforce":
        return statements
    exempt = parse_exempt_tag(settings.exempt_tag)
    statements.append(iam.PolicyStatement(
        sid="RevokeOnNonExemptGroupsAndRules",
        actions=["ec2:RevokeSecurityGroupIngress",
                 *(["ec2:RevokeSecurityGroupEgress"] if settings.egress == "enforce" else [])],
        resources=[f"arn:{Aws.PARTITION}:ec2:{region}:{Aws.ACCOUNT_ID}:{kind}/*" for region in regions
                   for kind in ("security-group", "security-group-rule")],
        # Groups and rules carrying the exempt tag can't be changed even by a bug in the function.
        conditions={"StringNotEqualsIgnoreCase": {f"aws:ResourceTag/{exempt.key}": exempt.value}},
    ))
    return statements


def target_regions(project: ProjectSettings, settings: SgRemediationSettings) -> list[str]:
    """The regions swept (and, organization-wide, where member accounts' changes are acted on)."""
    if project.organization.enabled:
        return list(settings.regions or project.organization.regions)
    return list(settings.regions)


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
            environment={**settings.function_environment(), **project.organization.function_environment(
                project.prefix, AUTOMATION, settings.regions)},
            memory_mb=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
        )
        function = self.ops.function
        # The sweep's regions plus the stack's own: CloudTrail events arrive from the stack's region.
        regions = list(dict.fromkeys([*target_regions(project, settings), self.region]))
        self._grant(settings, regions)
        reach(self.ops, project, AUTOMATION)

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
        self.fanout: Fanout | None = None
        if settings.sweep_interval_minutes:
            self.sweep_rule = events.Rule(
                self,
                "SweepRule",
                description=f"Sweep of every security group in {', '.join(settings.regions) or 'this region'}",
                schedule=events.Schedule.rate(Duration.minutes(settings.sweep_interval_minutes)),
                targets=[targets.LambdaFunction(function, **retry)],  # type: ignore[arg-type]
            )
            if project.organization.enabled:  # the sweep: one work item per (account, region)
                self.fanout = Fanout(self, "Fanout", ops=self.ops, project=project, core=core,
                                     automation=AUTOMATION, timeout=Duration.seconds(settings.timeout_seconds))
        if settings.create_trail:
            self._trail(settings)

    def _grant(self, settings: SgRemediationSettings, regions: list[str]) -> None:
        describe_statement, *revoke_statements = resource_statements(settings, regions)
        describe = iam.Policy(self, "DescribePolicy", statements=[describe_statement])
        describe.attach_to_role(self.ops.role)
        suppress(
            describe,
            "AwsSolutions-IAM5",
            "ec2:DescribeSecurityGroups, ec2:DescribeSecurityGroupRules and ec2:DescribeManagedPrefixLists support "
            "no resource-level permissions, and the prefix lists a rule names are only known at run time; read-only, "
            "limited to the configured regions by aws:RequestedRegion",
            applies_to=["Resource::*"],
        )
        self.ops.function.node.add_dependency(describe)
        if not revoke_statements:  # report mode changes nothing: the role stays read-only
            return
        revoke = iam.Policy(self, "RevokePolicy", statements=revoke_statements)
        revoke.attach_to_role(self.ops.role)
        suppress(
            revoke,
            "AwsSolutions-IAM5",
            "The function revokes rules on any security group of this account in the configured regions "
            "(which groups is decided at run time); scoped to the security-group and security-group-rule ARNs of "
            "this account and those regions, and denied on groups and rules carrying the exempt tag",
            applies_to=[
                f"Resource::arn:<AWS::Partition>:ec2:{region if not region.startswith('${') else '<AWS::Region>'}:"
                f"<AWS::AccountId>:{kind}/*"
                for region in regions
                for kind in ("security-group", "security-group-rule")
            ],
        )
        self.ops.function.node.add_dependency(revoke)

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
