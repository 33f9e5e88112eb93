"""Settings of organization-wide operation (cdk.json: context.project.organization).

Validated with the functions' own parsers (``shared.targets``), so synth and run time agree.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from shared.targets import (
    ORGANIZATION,
    ROLE_SUFFIX_MAX,
    member_role_name,
    parse_account_ids,
    parse_parent_ids,
    parse_regions,
    parse_role_name,
)
from stacks.settings.base import StrictModel


class OrganizationSettings(StrictModel):
    """The accounts and regions of an AWS Organization the automations reach from this (hub) account."""

    enabled: bool = Field(
        False,
        description="Reach the accounts and regions below: member roles and event forwarding through a "
        "StackSet, targets listed at run time. Off: every automation works in this account only.",
    )
    organizational_units: list[str] = Field(
        default_factory=list,
        description="OU ids ('ou-ab12-cd34ef56') or the root id ('r-ab12'); every ACTIVE account under them, "
        "recursively, is a target, including accounts added later.",
    )
    accounts: list[str] = Field(
        default_factory=list, description="More target accounts by 12-digit id (with or without OUs)."
    )
    regions: list[str] = Field(
        default_factory=list, description="Target regions; empty: the hub's region."
    )
    member_role_name: str = Field(
        "",
        description="Base name of the member roles (one per automation: '<name>-<automation>'); empty: "
        "'<prefix>-member'.",
    )
    max_concurrency: int = Field(
        10, ge=2, le=1000,
        description="Most targets worked on at once by a periodic run (the SQS event source's maximum "
        "concurrency, 2-1000).",
    )

    @field_validator("organizational_units")
    @classmethod
    def _units(cls, value: list[str]) -> list[str]:
        return list(parse_parent_ids(value))

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        return list(parse_account_ids(value))

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        return list(parse_regions(value))

    @field_validator("member_role_name")
    @classmethod
    def _role(cls, value: str) -> str:
        return parse_role_name(value, suffix_room=ROLE_SUFFIX_MAX) if value.strip() else ""

    @model_validator(mode="after")
    def _something_to_reach(self) -> OrganizationSettings:
        if self.enabled and not (self.organizational_units or self.accounts):
            raise ValueError("enabled: list organizational_units and/or accounts to reach")
        return self

    def role_base(self, prefix: str) -> str:
        return self.member_role_name or f"{prefix}-member"

    def role_name(self, prefix: str, automation: str) -> str:
        """The member role ``automation``'s function assumes in each target account."""
        return member_role_name(self.role_base(prefix), automation)

    def function_environment(self, prefix: str, automation: str, regions: list[str] | None = None) -> dict[str, str]:
        """TARGET_ACCOUNTS / TARGET_OUS / MEMBER_ROLE_NAME / REGIONS for ``automation``'s function.

        Disabled: nothing (the function works in its own account, in the automation's own ``regions``).
        ``regions`` are the automation's own list; empty, the organization's regions apply (empty too: the
        function's region, which is the hub's).
        """
        if not self.enabled:
            return {"REGIONS": ",".join(regions)} if regions else {}
        targets = ([ORGANIZATION] if self.organizational_units else []) + list(self.accounts)
        env = {"TARGET_ACCOUNTS": ",".join(targets), "MEMBER_ROLE_NAME": self.role_name(prefix, automation)}
        if self.organizational_units:
            env["TARGET_OUS"] = ",".join(self.organizational_units)
        chosen = list(regions or self.regions)
        if chosen:
            env["REGIONS"] = ",".join(chosen)
        return env
