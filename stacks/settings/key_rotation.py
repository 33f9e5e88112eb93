"""Settings of the `key_rotation` automation (cdk.json: context.automations.key_rotation)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from key_rotation.config import (
    parse_exempt_group,
    parse_exempt_tag,
    parse_iam_path,
    parse_owner_tag,
    parse_thresholds,
    parse_user_name,
)
from shared.names import parse_secret_name
from stacks.settings.base import AutomationSettings, StrictModel

_SCHEDULE = re.compile(r"^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\))$")


class ManagedUser(StrictModel):
    """One IAM user whose access key lives in a Secrets Manager secret and is rotated on a schedule."""

    user_name: Annotated[str, AfterValidator(parse_user_name)] = Field(
        ..., description="IAM user name whose access key is rotated.")
    path: Annotated[str, AfterValidator(parse_iam_path)] = Field(
        "/", description="The user's IAM path (part of its ARN), '/' by default.")
    rotation_days: int = Field(30, ge=1, le=1000, description="Rotate the key every this many days.")
    secret_name: str | None = Field(
        None,
        description="Name of the secret holding the key; default '<prefix>/key-rotation/<user_name>'.",
    )

    @field_validator("secret_name")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        return None if value is None else parse_secret_name(value)


class KeyRotationSettings(AutomationSettings):
    """Rotation of managed users' keys through Secrets Manager, and a daily stale-key sweep of every user."""

    timeout_seconds: int = Field(
        300, ge=1, le=900, description="Lambda timeout in seconds (the sweep walks every IAM user)."
    )
    managed_users: list[ManagedUser] = Field(
        default_factory=list,
        description="Users whose key is kept in a secret and rotated: [{user_name, path, rotation_days, secret_name}].",
    )
    grace_days: int = Field(
        7, ge=1, le=365, description="Days the previous key of a managed user stays active after a rotation; "
        "also the least number of days between this automation deactivating a key and deleting it."
    )
    warn_after_days: int = Field(80, ge=1, le=3650, description="Keys older than this are reported.")
    deactivate_after_days: int = Field(
        90, ge=1, le=3650, description="Active keys older than this are deactivated (enforce) or reported."
    )
    delete_after_days: int = Field(
        120, ge=1, le=3650, description="Inactive keys older than this are deleted (enforce) or reported."
    )
    deactivate_if_unused_days: int = Field(
        30, ge=1, le=3650, description="An old key (past deactivate_after_days) of a user not managed by rotation "
        "is deactivated only once it has not been used for this many days; a key in use is reported instead."
    )
    deactivate_in_use: bool = Field(
        False, description="Deactivate old keys by age alone, also while they are in use (true), instead of only "
        "once unused for deactivate_if_unused_days (false)."
    )
    warn_days_before: int = Field(
        7, ge=0, le=365, description="Days before a key is deactivated or deleted that the reports start saying "
        "what will happen and when; a key already due when a sweep first sees it is announced and acted on "
        "this many days later (0: no advance warning)."
    )
    owner_tag: str = Field(
        "Owner", description="IAM user tag holding the owner of the user's keys: an email address (subscribed to "
        "the owner topic, filtered to their own notices) or a chat destination name (message attribute 'owner'); "
        "empty: no owner notices."
    )
    credential_report_users: int = Field(
        100, ge=0, le=1_000_000, description="Above this many IAM users, last use of the keys comes from one IAM "
        "credential report instead of one GetAccessKeyLastUsed call per key."
    )
    mode: Literal["report", "enforce"] = Field(
        "report", description="Sweep mode: 'report' changes nothing and says what it would do; 'enforce' acts."
    )
    exempt_group: Annotated[str, AfterValidator(parse_exempt_group)] = Field(
        "", description="IAM group whose members' keys are only reported."
    )
    exempt_tag: str = Field(
        "", description="User tag 'Key=Value' whose carriers' keys are only reported (empty: none)."
    )
    max_changes: int = Field(
        20, ge=0, le=10000, description="Above this many changes in one sweep, report them instead of acting."
    )
    sweep_schedule: str = Field(
        "rate(1 day)", description="EventBridge schedule expression of the sweep: 'rate(1 day)' or 'cron(...)'."
    )

    @field_validator("owner_tag")
    @classmethod
    def _owner_tag(cls, value: str) -> str:
        parse_owner_tag(value)
        return value

    @field_validator("exempt_tag")
    @classmethod
    def _exempt_tag(cls, value: str) -> str:
        parse_exempt_tag(value)
        return value

    @field_validator("sweep_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not _SCHEDULE.match(value.strip()):
            raise ValueError(
                "must be an EventBridge schedule expression: 'rate(1 day)', 'rate(12 hours)' or 'cron(...)'"
            )
        return value.strip()

    @field_validator("managed_users")
    @classmethod
    def _unique_users(cls, value: list[ManagedUser]) -> list[ManagedUser]:
        names = [user.user_name.lower() for user in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"user(s) listed more than once: {', '.join(duplicates)}")
        secrets = [user.secret_name for user in value if user.secret_name]
        duplicate_secrets = sorted({name for name in secrets if secrets.count(name) > 1})
        if duplicate_secrets:
            raise ValueError(f"secret name(s) used by more than one user: {', '.join(duplicate_secrets)}")
        return value

    @model_validator(mode="after")
    def _ordering(self) -> KeyRotationSettings:
        parse_thresholds(self.warn_after_days, self.deactivate_after_days, self.delete_after_days, self.grace_days,
                         self.deactivate_if_unused_days, self.deactivate_in_use, self.warn_days_before)
        for user in self.managed_users:
            if user.rotation_days < 2 * self.grace_days + 2:
                raise ValueError(
                    f"rotation_days of {user.user_name} ({user.rotation_days}) must be at least 2 x grace_days + 2 "
                    f"({2 * self.grace_days + 2}): the previous key is deactivated after grace_days (and a day's "
                    "sweep), and the next rotation may delete it only grace_days after that"
                )
        return self

    def function_environment(self) -> dict[str, str]:
        """Every variable the function reads that comes from these settings (the stack adds MANAGED_SECRETS,
        the managed users' secret names, OWNER_TOPIC_ARN and NOTIFY_TOPIC_ARN)."""
        return {
            "MODE": self.mode,
            "WARN_AFTER_DAYS": str(self.warn_after_days),
            "DEACTIVATE_AFTER_DAYS": str(self.deactivate_after_days),
            "DELETE_AFTER_DAYS": str(self.delete_after_days),
            "GRACE_DAYS": str(self.grace_days),
            "EXEMPT_GROUP": self.exempt_group,
            "EXEMPT_TAG": self.exempt_tag,
            "MAX_CHANGES": str(self.max_changes),
            "DEACTIVATE_IF_UNUSED_DAYS": str(self.deactivate_if_unused_days),
            "DEACTIVATE_IN_USE": "true" if self.deactivate_in_use else "false",
            "WARN_DAYS_BEFORE": str(self.warn_days_before),
            "OWNER_TAG": self.owner_tag,
            "CREDENTIAL_REPORT_USERS": str(self.credential_report_users),
        }
