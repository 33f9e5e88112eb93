"""Settings of the `ec2_scheduler` automation (cdk.json: context.automations.ec2_scheduler)."""

from __future__ import annotations

from stacks.settings.base import AutomationSettings


class Ec2SchedulerSettings(AutomationSettings):
    """Fields are added by the automation's issue; each field has a default and a description."""
