"""Settings of the `sg_remediation` automation (cdk.json: context.automations.sg_remediation)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stacks.settings.base import AutomationSettings

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_PORT_ITEM = re.compile(r"^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$", re.ASCII)


def check_allowed_ports(value: str) -> str:
    """The same grammar the function parses (functions/sg_remediation/policy.parse_allowed_ports)."""
    text = value.strip()
    if not text:
        raise ValueError("must not be empty; use 'none' to allow no world-open port")
    if text.lower() == "none":
        return text
    for item in text.split(","):
        if item.strip().lower() == "icmp":
            continue
        match = _PORT_ITEM.match(item)
        if not match:
            raise ValueError(f"{item.strip()!r} is not a port (0-65535), a range like 8000-8080, or 'icmp'")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if low > 65535 or high > 65535:
            raise ValueError(f"{item.strip()!r}: ports must be between 0 and 65535")
        if low > high:
            raise ValueError(f"{item.strip()!r}: range start is above its end")
    return text


class SgRemediationSettings(AutomationSettings):
    """Closes security-group ingress opened to the whole internet on ports that should not be public."""

    mode: Literal["enforce", "report"] = Field(
        "enforce", description="enforce: revoke offending rules; report: change nothing, report what would be revoked."
    )
    allowed_public_ports: str = Field(
        "80,443",
        description="TCP ports and ranges that may be open to 0.0.0.0/0 or ::/0, e.g. '80,443,8000-8080'; "
        "add 'icmp' to allow world-open ICMP; 'none' allows nothing. UDP is never allowed.",
    )
    exempt_tag: str = Field(
        "AutoRemediate=false",
        description="Key=Value tag: a security group carrying it is reported, never changed.",
    )
    regions: list[str] = Field(
        default_factory=list,
        description="Regions the sweep covers; empty: the stack's own region. The role may act in these and the "
        "stack's region. Event-driven remediation covers the stack's region only (EventBridge rules are regional).",
    )
    max_changes: int = Field(
        50, ge=1, le=1000, description="Most rules one run revokes; above it, the run reports instead of acting."
    )
    sweep_interval_minutes: int = Field(
        60, ge=0, le=1440, description="Minutes between sweeps over every security group; 0 disables the sweep."
    )
    create_trail: bool = Field(
        False,
        description="Create a multi-region CloudTrail trail (management write events) with an encrypted log "
        "bucket. EventBridge gets 'AWS API Call via CloudTrail' events only when a trail exists.",
    )
    trail_log_retention_days: int = Field(
        365, ge=1, le=3653, description="Days the trail's log files are kept in its bucket (create_trail only)."
    )
    event_retry_attempts: int = Field(
        4, ge=0, le=185, description="EventBridge retries of a failed delivery to the function before the DLQ."
    )

    @field_validator("allowed_public_ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        return check_allowed_ports(value)

    @field_validator("exempt_tag")
    @classmethod
    def _exempt(cls, value: str) -> str:
        key, sep, tag_value = value.strip().partition("=")
        if not sep or not key.strip():
            raise ValueError("must look like Key=Value (e.g. AutoRemediate=false)")
        if len(key.strip()) > 128 or len(tag_value) > 256:
            raise ValueError("tag key is at most 128 characters, value at most 256")
        if key.strip().lower().startswith("aws:"):
            raise ValueError("tag keys starting with 'aws:' are reserved")
        return value.strip()

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        for region in value:
            if not _REGION.match(region):
                raise ValueError(f"{region!r} is not a region name like eu-central-1")
        if len(set(value)) != len(value):
            raise ValueError("regions are listed more than once")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SgRemediationSettings:
        if self.regions and self.sweep_interval_minutes == 0:
            raise ValueError(
                "regions only matter to the sweep, which sweep_interval_minutes=0 disables; "
                "set a sweep interval or leave regions empty"
            )
        return self
