"""Settings of the `image_resize` automation (cdk.json: context.automations.image_resize)."""

from __future__ import annotations

from stacks.settings.base import AutomationSettings


class ImageResizeSettings(AutomationSettings):
    """Fields are added by the automation's issue; each field has a default and a description."""
