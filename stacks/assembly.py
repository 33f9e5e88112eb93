"""Builds the CDK app from settings: the core stack plus each enabled automation's stack.

Used by ``app.py`` and by the stack tests, so both build exactly the same thing.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import App, Aspects, Environment, Stack, Tags
from cdk_nag import AwsSolutionsChecks

from stacks.core_stack import CoreStack
from stacks.dashboards import add_automation_dashboard, add_overview_dashboard
from stacks.member_stack import MemberStack, member_needed, member_stack_name
from stacks.platform import stack_name
from stacks.settings import AUTOMATION_NAMES, ProjectSettings, load_settings

# automation name -> "module:Class" of its stack. The class takes
# (scope, id, *, project: ProjectSettings, settings: <its model>, core: Core, **stack kwargs).
STACKS: dict[str, str] = {
    "image_resize": "stacks.image_resize_stack:ImageResizeStack",
    "ec2_scheduler": "stacks.ec2_scheduler_stack:Ec2SchedulerStack",
    "alerts": "stacks.alerts_stack:AlertsStack",
    "sg_remediation": "stacks.sg_remediation_stack:SgRemediationStack",
    "key_rotation": "stacks.key_rotation_stack:KeyRotationStack",
    "post_deploy_checks": "stacks.post_deploy_checks_stack:PostDeployChecksStack",
}
assert set(STACKS) == set(AUTOMATION_NAMES)


@dataclass
class Assembly:
    app: App
    project: ProjectSettings
    core: CoreStack
    stacks: dict[str, Stack] = field(default_factory=dict)
    member: MemberStack | None = None  # <prefix>-member, with organization.enabled


def stack_class(automation: str) -> type[Stack]:
    module_name, class_name = STACKS[automation].split(":")
    module = importlib.import_module(module_name)
    cls: type[Stack] = getattr(module, class_name)
    return cls


def build(
    context: Mapping[str, Any] | None = None,
    enable: str | None = None,
    *,
    app: App | None = None,
    nag: bool = True,
    env: Environment | None = None,
) -> Assembly:
    """Validate settings, then add the core stack and every enabled automation's stack to ``app``."""
    app = app or App()
    if context is None:
        context = {
            "project": app.node.try_get_context("project") or {},
            "automations": app.node.try_get_context("automations") or {},
        }
    project = load_settings(context, enable)
    core = CoreStack(app, f"{project.prefix}-core", project=project, env=env,
                     description=f"{project.prefix}: ops notifications topic and key")
    assembly = Assembly(app=app, project=project, core=core)
    for name in project.automations.enabled():
        cls = stack_class(name)
        assembly.stacks[name] = cls(  # type: ignore[call-arg]
            app,
            stack_name(project, name),
            project=project,
            settings=getattr(project.automations, name),
            core=core.core,
            env=env,
        )
        if project.dashboards:
            add_automation_dashboard(assembly.stacks[name], project, name)
    if project.dashboards:
        add_overview_dashboard(core, project, project.automations.enabled())
    if member_needed(project):
        assembly.member = MemberStack(app, member_stack_name(project), project=project)
    for key, value in project.tags.items():
        Tags.of(app).add(key, value)
    if nag:
        Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return assembly
