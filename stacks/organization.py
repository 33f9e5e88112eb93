"""Organization-wide operation, hub side: what the hub's functions and the core stack add.

- ``reach(ops, project, automation)``: an automation's function may work in the target accounts. Its role gets
  a fixed name (``<prefix>-<automation>-hub``: the member roles trust exactly that ARN), may assume its member
  role (``<member_role_name>-<automation>``) in any account (the member role's trust decides who may: this
  one role of the hub account, from inside the Organization) and may list the Organization's accounts.
- ``OrganizationHub`` (in the core stack when ``organization.enabled``): looks up the Organization's id, lets
  the Organization's accounts (only them) put events on the hub's default event bus, and deploys the member
  template (``stacks.member_stack``) with a service-managed StackSet with auto-deployment to the OUs and
  regions of the settings.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnParameter, CfnResource
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from stacks.checkov import skip_check
from stacks.platform import OpsFunction, suppress
from stacks.settings import ProjectSettings

# Automations whose functions act in member accounts (each gets a member role).
MEMBER_ROLE_AUTOMATIONS = ("ec2_scheduler", "sg_remediation", "key_rotation")
ORGANIZATIONS_READ = [
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:DescribeAccount",
]


def hub_role_name(project: ProjectSettings, automation: str) -> str:
    """The fixed name of an automation's function role in the hub; the member roles trust this ARN."""
    return f"{project.prefix}-{automation.replace('_', '-')}-hub"


def reach(ops: OpsFunction, project: ProjectSettings, automation: str, *, assume: bool = True) -> None:
    """Let ``automation``'s function work in the Organization's target accounts (no-op when not enabled).

    ``assume=False`` (alerts): only read the Organization (account names), no member role to assume.
    """
    if not project.organization.enabled:
        return
    statements = [iam.PolicyStatement(sid="ListOrganizationAccounts", actions=ORGANIZATIONS_READ, resources=["*"])]
    applies_to = ["Resource::*"]
    reason = "the Organizations list/describe calls are read-only and have no narrower resource for the caller"
    if assume:
        role: Any = ops.role.node.default_child
        role.role_name = hub_role_name(project, automation)
        member_role = project.organization.role_name(project.prefix, automation)
        statements.insert(0, iam.PolicyStatement(
            sid="AssumeMemberRole",
            actions=["sts:AssumeRole"],
            resources=[f"arn:{Aws.PARTITION}:iam::*:role/{member_role}"],
        ))
        applies_to.append(f"Resource::arn:<AWS::Partition>:iam::*:role/{member_role}")
        reason = (f"sts:AssumeRole on the member role {member_role} of any target account (accounts under the OUs "
                  "are listed at run time; the member role's trust admits only this role, from inside the "
                  f"Organization); {reason}")
    policy = iam.Policy(ops, "OrganizationPolicy", statements=statements)
    policy.attach_to_role(ops.role)
    suppress(policy, "AwsSolutions-IAM5", reason, applies_to=applies_to)


class OrganizationHub(Construct):
    """Organization id lookup, the hub bus policy, and the member StackSet. Attributes: ``organization_id``,
    ``bus_policy``, ``stack_set``, ``call_as``."""

    def __init__(self, scope: Construct, construct_id: str, *, project: ProjectSettings,
                 template_body: str | None) -> None:
        super().__init__(scope, construct_id)
        org = project.organization
        lookup = cr.AwsCustomResource(
            self,
            "OrganizationLookup",
            on_update=cr.AwsSdkCall(  # on create too; re-read on every update
                service="Organizations",
                action="describeOrganization",
                physical_resource_id=cr.PhysicalResourceId.from_response("Organization.Id"),
                output_paths=["Organization.Id"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["organizations:DescribeOrganization"], resources=["*"]),
            ]),
            install_latest_aws_sdk=False,
        )
        self.organization_id = lookup.get_response_field("Organization.Id")
        suppress(lookup, "AwsSolutions-IAM5",
                 "organizations:DescribeOrganization has no resource-level permission (read-only, the caller's own "
                 "organization)", applies_to=["Resource::*"])
        self._suppress_provider()

        bus_arn = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/default"
        # The L1 class warns about its deprecated Principal property even when unset: the resource is written as is.
        self.bus_policy = CfnResource(self, "BusPolicy", type="AWS::Events::EventBusPolicy", properties={
            "StatementId": f"{project.prefix}-organization",
            "EventBusName": "default",
            "Statement": {
                "Sid": f"{project.prefix}-organization",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": self.organization_id}},
            },
        })

        self.stack_set: cloudformation.CfnStackSet | None = None
        if template_body is None or not org.organizational_units:
            return  # nothing to deploy, or listed accounts only: `cdk deploy <prefix>-member` in each
        self.call_as = CfnParameter(
            scope,
            "StackSetCallAs",
            type="String",
            default="SELF",
            allowed_values=["SELF", "DELEGATED_ADMIN"],
            description="SELF when this is the management account; DELEGATED_ADMIN from a delegated administrator "
            "of CloudFormation StackSets",
        )
        regions = list(org.regions) or [Aws.REGION]
        parameters = {
            "HubAccountId": Aws.ACCOUNT_ID,
            "HubRegion": Aws.REGION,
            "OrganizationId": self.organization_id,
            "PrimaryRegion": regions[0],
        }
        self.stack_set = cloudformation.CfnStackSet(
            self,
            "MemberStackSet",
            stack_set_name=f"{project.prefix}-member",
            description=f"{project.prefix}: member roles and event forwarding of every target account",
            permission_model="SERVICE_MANAGED",
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            call_as=self.call_as.value_as_string,
            capabilities=["CAPABILITY_NAMED_IAM"],
            managed_execution={"Active": True},
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                failure_tolerance_percentage=10, max_concurrent_percentage=25, region_concurrency_type="PARALLEL"
            ),
            parameters=[
                cloudformation.CfnStackSet.ParameterProperty(parameter_key=key, parameter_value=value)
                for key, value in parameters.items()
            ],
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(org.organizational_units)
                    ),
                    regions=regions,
                )
            ],
            template_body=template_body,
        )

    def _suppress_provider(self) -> None:
        """The lookup's provider function is CDK's singleton (one per stack, next to this construct)."""
        from aws_cdk import Stack

        stack = Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith("AWS679f53fac002430cb0da5b7982bd2287"):
                NagSuppressions.add_resource_suppressions(child, [
                    NagPackSuppression(id="AwsSolutions-IAM4", reason="CDK's AwsCustomResource provider logs with "
                                       "AWSLambdaBasicExecutionRole (its own log group only)",
                                       applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                                   "AWSLambdaBasicExecutionRole"]),
                    NagPackSuppression(id="AwsSolutions-L1", reason="CDK's AwsCustomResource provider chooses its "
                                       "Node.js runtime; it runs once per deployment to read the organization id"),
                ], apply_to_children=True)
                for check_id, reason in (
                    ("CKV_AWS_116", "CDK's AwsCustomResource provider is a CloudFormation custom resource, invoked "
                     "synchronously on deploy; CloudFormation reports its failure"),
                    ("CKV_AWS_117", "CDK's AwsCustomResource provider calls only organizations:DescribeOrganization, "
                     "on deploy"),
                    ("CKV_AWS_115", "CDK's AwsCustomResource provider runs once per deploy"),
                ):
                    skip_check(child, check_id, reason)
