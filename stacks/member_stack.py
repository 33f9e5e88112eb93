"""The member template ``<prefix>-member``: what every target account holds so the hub can reach it.

No assets and no bootstrap (``BootstraplessSynthesizer``): a service-managed StackSet deploys it into every
account of the OUs and every region of ``context.project.organization`` (``stacks.organization``), and the
same template deploys into a listed account with ``cdk deploy <prefix>-member --parameters ...``.

- a role per enabled automation that acts in member accounts (ec2_scheduler, sg_remediation, key_rotation),
  named ``<member_role_name>-<automation>``. Its trust admits only the hub function's role (``aws:PrincipalArn``
  = ``arn:<partition>:iam::<hub>:role/<prefix>-<automation>-hub``) from inside the Organization
  (``aws:PrincipalOrgID``). Its statements are the automation's statements at home, for this account;
  ``mode: report`` makes it read-only. IAM is global: the roles are created in ``PrimaryRegion`` only;
- in every region, EventBridge rules forwarding what the hub acts on to the hub's default event bus
  (sg_remediation: CloudTrail security-group changes; alerts: CloudWatch alarm state changes and the alerts
  rules switched on: GuardDuty, Health, CodePipeline, CodeBuild, EC2 state, custom patterns). Not in the hub
  account itself (its events are already on its bus).
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

from aws_cdk import (
    App,
    Aws,
    BootstraplessSynthesizer,
    CfnCondition,
    CfnOutput,
    CfnParameter,
    Fn,
    ICfnConditionExpression,
    Stack,
    Tags,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.alerts_stack import ALARM_STATE_CHANGES, built_in_patterns
from stacks.ec2_scheduler_stack import resource_statements as ec2_resource_statements
from stacks.organization import MEMBER_ROLE_AUTOMATIONS, hub_role_name
from stacks.platform import suppress
from stacks.settings import ProjectSettings
from stacks.settings.ec2_scheduler import Ec2SchedulerSettings
from stacks.settings.key_rotation import KeyRotationSettings
from stacks.settings.sg_remediation import SgRemediationSettings
from stacks.sg_remediation_stack import resource_statements as sg_resource_statements
from stacks.sg_remediation_stack import target_regions as sg_target_regions

SG_EVENT_NAMES = ["AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules", "CreateSecurityGroup"]
ALARM_PATTERN = ALARM_STATE_CHANGES
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes inline (StackSet TemplateBody)


FORWARDING_AUTOMATIONS = ("sg_remediation", "alerts")


def member_stack_name(project: ProjectSettings) -> str:
    return f"{project.prefix}-member"


def member_needed(project: ProjectSettings) -> bool:
    """Whether target accounts need the member template: an enabled automation acts in them or listens to them."""
    return project.organization.enabled and any(
        getattr(project.automations, name).enabled for name in (*MEMBER_ROLE_AUTOMATIONS, *FORWARDING_AUTOMATIONS))


# --------------------------------------------------------------------------- each automation's statements


def ec2_scheduler_statements(settings: Ec2SchedulerSettings) -> list[iam.PolicyStatement]:
    """The function's own statements at home (``stacks.ec2_scheduler_stack.resource_statements``)."""
    return ec2_resource_statements(settings)


def sg_remediation_statements(settings: SgRemediationSettings, regions: list[str]) -> list[iam.PolicyStatement]:
    """The function's own statements at home (``stacks.sg_remediation_stack.resource_statements``)."""
    return sg_resource_statements(settings, regions)


def key_rotation_statements(settings: KeyRotationSettings) -> list[iam.PolicyStatement]:
    """The stale-key sweep: read every user's keys and the credential report; deactivate/delete stale ones and
    record the deactivation on the user (enforce)."""
    users = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:user/*"
    statements = [
        iam.PolicyStatement(sid="ListUsers", actions=["iam:ListUsers"], resources=["*"]),
        iam.PolicyStatement(sid="ReadEveryUsersKeys", resources=[users],
                            actions=["iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:ListUserTags"]),
        iam.PolicyStatement(sid="ReadCredentialReport", resources=["*"],
                            actions=["iam:GenerateCredentialReport", "iam:GetCredentialReport"]),
    ]
    if settings.exempt_group:
        statements.append(iam.PolicyStatement(sid="ReadExemptGroup", actions=["iam:GetGroup"], resources=[
            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:group/{settings.exempt_group}",
            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:group/*/{settings.exempt_group}"]))
    if settings.mode == "enforce":
        # The record of a deactivation is a tag on the key's user, written before the key is switched off.
        statements.append(iam.PolicyStatement(sid="RetireStaleKeys", resources=[users], actions=[
            "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:TagUser", "iam:UntagUser"]))
    return statements


# --------------------------------------------------------------------------- the stack


class MemberStack(Stack):
    """Parameters: ``HubAccountId``, ``HubRegion``, ``OrganizationId``, ``PrimaryRegion``. Attributes: ``roles``
    (automation -> role), ``rules`` (rule id -> rule)."""

    def __init__(self, scope: Construct, construct_id: str, *, project: ProjectSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, synthesizer=BootstraplessSynthesizer(),
                         description=f"{project.prefix}: member roles the hub's automations assume, and event "
                         "forwarding to the hub", **kwargs)
        org = project.organization
        self.hub_account = CfnParameter(self, "HubAccountId", type="String", allowed_pattern=r"^\d{12}$",
                                        description="The hub account (where the automations run)").value_as_string
        self.hub_region = CfnParameter(self, "HubRegion", type="String", allowed_pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$",
                                       description="The hub's region (its default event bus)").value_as_string
        self.organization_id = CfnParameter(
            self, "OrganizationId", type="String", allowed_pattern=r"^o-[a-z0-9]{10,32}$",
            description="The Organization's id: only principals inside it may assume the roles").value_as_string
        primary = CfnParameter(
            self, "PrimaryRegion", type="String", allowed_pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$",
            description="The one region whose stack instance holds the IAM roles (IAM is global)",
            default=org.regions[0] if org.regions else None)
        self._primary_region = primary.value_as_string
        self._conditions: dict[str, CfnCondition] = {}
        # Every parameter is used: the hub this account is wired to, as outputs.
        CfnOutput(self, "HubEventBusArn", description="Events forwarded from this account go to this bus",
                  value=f"arn:{Aws.PARTITION}:events:{self.hub_region}:{self.hub_account}:event-bus/default")
        CfnOutput(self, "TrustedOrganizationId", value=self.organization_id,
                  description="Only principals of this Organization may assume the member roles")
        regions = list(org.regions) or [self.hub_region]
        self.roles: dict[str, iam.Role] = {}
        self.rules: dict[str, events.Rule] = {}
        automations = project.automations
        for name in MEMBER_ROLE_AUTOMATIONS:
            settings = getattr(automations, name)
            if not settings.enabled:
                continue
            if name == "ec2_scheduler":
                statements = ec2_scheduler_statements(settings)
            elif name == "sg_remediation":
                statements = sg_remediation_statements(settings, sg_target_regions(project, settings) or regions)
            else:
                statements = key_rotation_statements(settings)
            self._role(project, name, statements)
        patterns: dict[str, dict[str, Any]] = {}
        if automations.sg_remediation.enabled:
            patterns["SecurityGroupChanges"] = {
                "source": ["aws.ec2"], "detail-type": ["AWS API Call via CloudTrail"],
                "detail": {"eventSource": ["ec2.amazonaws.com"], "eventName": SG_EVENT_NAMES}}
        if automations.alerts.enabled:
            patterns["AlarmStateChanges"] = ALARM_PATTERN
            patterns.update(built_in_patterns(automations.alerts))
        if patterns:
            self._forwarding(project, patterns)

    def _condition(self, name: str, expression: ICfnConditionExpression) -> CfnCondition:
        if name not in self._conditions:
            self._conditions[name] = CfnCondition(self, name, expression=expression)
        return self._conditions[name]

    def _role(self, project: ProjectSettings, automation: str, statements: list[iam.PolicyStatement]) -> None:
        hub_role = f"arn:{Aws.PARTITION}:iam::{self.hub_account}:role/{hub_role_name(project, automation)}"
        role = iam.Role(
            self,
            f"{_pascal(automation)}Role",
            role_name=project.organization.role_name(project.prefix, automation),
            description=f"{project.prefix} {automation}: assumed by the hub's function",
            assumed_by=iam.AccountPrincipal(self.hub_account).with_conditions({
                "ArnEquals": {"aws:PrincipalArn": hub_role},
                "StringEquals": {"aws:PrincipalOrgID": self.organization_id},
            }),
            inline_policies={automation: iam.PolicyDocument(statements=statements)},
        )
        cfn_role: Any = role.node.default_child
        cfn_role.cfn_options.condition = self._condition(
            "IsPrimaryRegion", Fn.condition_equals(Aws.REGION, self._primary_region))
        suppress(role, "AwsSolutions-IAM5", _reason(automation))
        self.roles[automation] = role

    def _forwarding(self, project: ProjectSettings, patterns: dict[str, dict[str, Any]]) -> None:
        bus = events.EventBus.from_event_bus_arn(
            self, "HubBus", f"arn:{Aws.PARTITION}:events:{self.hub_region}:{self.hub_account}:event-bus/default")
        role = iam.Role(self, "ForwardRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                        description=f"{project.prefix}: EventBridge forwards this account's events to the hub")
        role.add_to_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus.event_bus_arn]))
        is_member = self._condition("IsNotHubAccount",
                                    Fn.condition_not(Fn.condition_equals(Aws.ACCOUNT_ID, self.hub_account)))
        for construct in (role.node.default_child, role.node.find_child("DefaultPolicy").node.default_child):
            construct.cfn_options.condition = is_member  # type: ignore[union-attr]
        for rule_id, pattern in patterns.items():
            keys = {"detail-type": "detail_type"}
            rule = events.Rule(
                self, f"Forward{rule_id}",
                description=f"{project.prefix}: {rule_id} -> the hub's event bus",
                event_pattern=events.EventPattern(**{keys.get(k, k): v for k, v in pattern.items()}),
                targets=[targets.EventBus(bus, role=role)],
            )
            cfn_rule: Any = rule.node.default_child
            cfn_rule.cfn_options.condition = is_member
            self.rules[rule_id] = rule


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _reason(automation: str) -> str:
    return {
        "ec2_scheduler": "ec2:DescribeInstances and the RDS describe calls have no resource-level permissions; "
        "start/stop/tag only on instances and databases of this account carrying the schedule tag key; "
        "kms:CreateGrant only for AWS resources (EC2 starting encrypted volumes) on the listed kms_key_arns",
        "sg_remediation": "ec2:DescribeSecurityGroups/Rules have no resource-level permissions (limited to the "
        "target regions); revoke only on this account's groups in those regions, never on exempt-tagged ones",
        "key_rotation": "iam:ListUsers and the credential report calls have no resource-level permission; the "
        "stale-key sweep reads (and in enforce mode deactivates, records on the user and deletes) keys of every user "
        "of this account",
    }[automation]


def member_template(project: ProjectSettings) -> dict[str, Any]:
    """The member template as the StackSet deploys it (synthesized alone, in a throwaway app)."""
    app = App(outdir=tempfile.mkdtemp(prefix="member-"))
    MemberStack(app, member_stack_name(project), project=project)
    for key, value in project.tags.items():
        Tags.of(app).add(key, value)
    assembly = app.synth()
    template: dict[str, Any] = assembly.get_stack_by_name(member_stack_name(project)).template
    return template


def member_template_body(project: ProjectSettings) -> str:
    body = json.dumps(member_template(project), separators=(",", ":"), sort_keys=True)
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise ValueError(f"the member template is {len(body.encode())} bytes; a StackSet takes at most "
                         f"{TEMPLATE_BODY_LIMIT} inline")
    return body
