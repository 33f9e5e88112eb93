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
