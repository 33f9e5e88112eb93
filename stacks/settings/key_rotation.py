"""Settings of the `key_rotation` automation (cdk.json: context.automations.key_rotation)."""

from __future__ import annotations

from stacks.settings.base import AutomationSettings


class KeyRotationSettings(AutomationSettings):
    """Fields are added by the automation's issue; each field has a default and a description."""
