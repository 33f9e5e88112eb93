"""Helpers for stack tests: build the app as app.py does and inspect it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stack
from aws_cdk.assertions import Annotations, Match, Template

from stacks.assembly import Assembly, build

TEST_ENV = Environment(account="123456789012", region="eu-central-1")


def build_with(automation: str | None = None, settings: dict[str, Any] | None = None,
               project: dict[str, Any] | None = None) -> Assembly:
    """Build the app with ``automation`` enabled and ``settings`` as its cdk.json section."""
    automations: dict[str, Any] = {}
    if automation:
        automations[automation] = {"enabled": True, **(settings or {})}
    return build({"project": project or {}, "automations": automations}, env=TEST_ENV)


def template(stack: Stack) -> Template:
    return Template.from_stack(stack)


def nag_errors(stack: Stack) -> list[str]:
    """Unsuppressed cdk-nag AwsSolutions errors and warnings of ``stack``, as readable lines."""
    annotations = Annotations.from_stack(stack)
    found = []
    for finder in (annotations.find_error, annotations.find_warning):
        for message in finder("*", Match.string_like_regexp("AwsSolutions-.*")):
            found.append(f"{message.id}: {message.entry.data}")
    return found


def policy_statements(tpl: Template, policy_prefix: str = "") -> list[dict[str, Any]]:
    """Every statement of the template's IAM policies (only those whose logical id starts with ``policy_prefix``)."""
    found: list[dict[str, Any]] = []
    for logical_id, policy in tpl.find_resources("AWS::IAM::Policy").items():
        if logical_id.startswith(policy_prefix):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def statement_actions(statement: dict[str, Any]) -> list[str]:
    """A statement's actions as a list (IAM allows a lone string)."""
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def role_statements(tpl: Template, service: str) -> list[dict[str, Any]]:
    """The statements of the policies attached to the one role that ``service`` (e.g. lambda.amazonaws.com) assumes."""
    roles = tpl.find_resources("AWS::IAM::Role", {"Properties": {"AssumeRolePolicyDocument": {"Statement": [
        Match.object_like({"Principal": {"Service": service}})]}}})
    (role_id,) = roles
    found: list[dict[str, Any]] = []
    for policy in tpl.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found
