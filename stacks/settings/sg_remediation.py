"""Settings of the `sg_remediation` automation (cdk.json: context.automations.sg_remediation)."""

from __future__ import annotations

from stacks.settings.base import AutomationSettings


class SgRemediationSettings(AutomationSettings):
    """Fields are added by the automation's issue; each field has a default and a description."""
