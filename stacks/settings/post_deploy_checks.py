"""Settings of the `post_deploy_checks` automation (cdk.json: context.automations.post_deploy_checks)."""

from __future__ import annotations

from stacks.settings.base import AutomationSettings


class PostDeployChecksSettings(AutomationSettings):
    """Fields are added by the automation's issue; each field has a default and a description."""
