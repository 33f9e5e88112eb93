"""Settings of the `alerts` automation (cdk.json: context.automations.alerts)."""

from __future__ import annotations

from stacks.settings.base import AutomationSettings


class AlertsSettings(AutomationSettings):
    """Fields are added by the automation's issue; each field has a default and a description."""
