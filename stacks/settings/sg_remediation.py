"""Settings of the `sg_remediation` automation (cdk.json: context.automations.sg_remediation)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sg_remediation.config import MAX_CHANGES_RANGE, OWN_REGION, parse_regions
from sg_remediation.policy import (
    DEFAULT_ALLOWED_PORTS,
    MAX_PREFIX_LIMITS,
    parse_allowed_ports,
    parse_egress,
    parse_exempt_tag,
)
from stacks.settings.base import AutomationSettings


class SgRemediationSettings(AutomationSettings):
    """Closes security-group ingress opened to the whole internet on ports that should not be public."""

    mode: Literal["enforce", "report"] = Field(
        "enforce", description="enforce: revoke offending rules; report: change nothing, report what would be revoked."
    )
    allowed_public_ports: str = Field(
        DEFAULT_ALLOWED_PORTS,
        description="What may be open to the world, comma-separated: TCP ports and ranges ('443', '8000-8080', "
        "'tcp:22'), UDP ('udp:443', 'udp:51820'), ICMP type with optional code ('icmp:3:4', 'icmp:0', 'icmp' for "
        "all), ICMPv6 ('icmpv6:2'); 'none' allows nothing. The default keeps HTTP, HTTPS and Path MTU discovery.",
    )
    exempt_tag: str = Field(
        "AutoRemediate=false",
        description="Key=Value tag: a security group, or a single security-group rule, carrying it is reported, "
        "never changed.",
    )
    max_prefix_v4: int = Field(
        0,
        ge=0,
        le=MAX_PREFIX_LIMITS["v4"],
        description="Widest IPv4 prefix length that counts as the whole internet: 0 = only 0.0.0.0/0; 1 also "
        "counts 0.0.0.0/1 and 128.0.0.0/1. Private networks never count.",
    )
    max_prefix_v6: int = Field(
        0,
        ge=0,
        le=MAX_PREFIX_LIMITS["v6"],
        description="Widest IPv6 prefix length that counts as the whole internet: 0 = only ::/0. Unique-local "
        "networks never count.",
    )
    egress: str = Field(
        "off",
        description="World-open egress on ports not in allowed_public_ports: off = not looked at; report = "
        "reported, never revoked; enforce = revoked like ingress (the default allow-all egress rule of every "
        "group included).",
    )
    regions: list[str] = Field(
        default_factory=list,
        description="Regions the sweep covers; empty: the stack's own region. The role may act in these and the "
        "stack's region. Event-driven remediation covers the stack's region only (EventBridge rules are regional).",
    )
    max_changes: int = Field(
        50,
        ge=MAX_CHANGES_RANGE[0],
        le=MAX_CHANGES_RANGE[1],
        description="Most rules one run revokes; above it, the run reports instead of acting.",
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
        parse_allowed_ports(value)
        return value.strip()

    @field_validator("exempt_tag")
    @classmethod
    def _exempt(cls, value: str) -> str:
        parse_exempt_tag(value)
        return value.strip()

    @field_validator("egress")
    @classmethod
    def _egress(cls, value: str) -> str:
        return parse_egress(value)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        return list(parse_regions(value))

    @model_validator(mode="after")
    def _consistent(self) -> SgRemediationSettings:
        if self.regions and self.sweep_interval_minutes == 0:
            raise ValueError(
                "regions only matter to the sweep, which sweep_interval_minutes=0 disables; "
                "set a sweep interval or leave regions empty"
            )
        return self

    def function_environment(self) -> dict[str, str]:
        """Every variable the function reads from settings (functions/sg_remediation/config.py)."""
        return {
            "MODE": self.mode,
            "ALLOWED_PUBLIC_PORTS": self.allowed_public_ports,
            "EXEMPT_TAG": self.exempt_tag,
            "MAX_PREFIX_V4": str(self.max_prefix_v4),
            "MAX_PREFIX_V6": str(self.max_prefix_v6),
            "EGRESS": self.egress,
            "REGIONS": ",".join(self.regions) or OWN_REGION,
            "MAX_CHANGES": str(self.max_changes),
        }
