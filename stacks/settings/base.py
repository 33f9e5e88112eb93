"""Base of every automation's settings model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in cdk.json must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class AutomationSettings(StrictModel):
    """Every automation is off until switched on (``enabled: true`` or ``-c enable=<name>``)."""

    enabled: bool = Field(False, description="Deploy this automation's stack.")
    memory_mb: int = Field(256, ge=128, le=10240, description="Lambda memory size in MB.")
    timeout_seconds: int = Field(60, ge=1, le=900, description="Lambda timeout in seconds.")
