"""Every setting of the project: one pydantic model per automation plus the project-wide model.

cdk.json -> context.automations.<name> -> the model here -> the function's environment variables.
A bad value fails synth with a message naming the key path and the allowed values.

Run ``python -m stacks.settings`` to print the defaults that cdk.json carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from shared.names import parse_email
from stacks.settings.alerts import AlertsSettings
from stacks.settings.base import AutomationSettings, StrictModel
from stacks.settings.ec2_scheduler import Ec2SchedulerSettings
from stacks.settings.image_resize import ImageResizeSettings
from stacks.settings.key_rotation import KeyRotationSettings
from stacks.settings.organization import OrganizationSettings
from stacks.settings.post_deploy_checks import PostDeployChecksSettings
from stacks.settings.sg_remediation import SgRemediationSettings

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)


class Automations(StrictModel):
    image_resize: ImageResizeSettings = Field(
        default_factory=ImageResizeSettings, description="Resize images uploaded to S3."
    )
    ec2_scheduler: Ec2SchedulerSettings = Field(
        default_factory=Ec2SchedulerSettings, description="Start and stop tagged EC2 and RDS instances on schedules."
    )
    alerts: AlertsSettings = Field(
        default_factory=AlertsSettings, description="Alarms, log errors and AWS events to Slack, Teams and webhooks."
    )
    sg_remediation: SgRemediationSettings = Field(
        default_factory=SgRemediationSettings, description="Close security-group ingress open to the internet."
    )
    key_rotation: KeyRotationSettings = Field(
        default_factory=KeyRotationSettings, description="Rotate and audit IAM access keys."
    )
    post_deploy_checks: PostDeployChecksSettings = Field(
        default_factory=PostDeployChecksSettings, description="Health checks after a deployment."
    )

    def enabled(self) -> list[str]:
        return [name for name in AUTOMATION_NAMES if getattr(self, name).enabled]


AUTOMATION_NAMES: tuple[str, ...] = tuple(Automations.model_fields)


class OpsTopicSettings(StrictModel):
    email_subscriptions: list[str] = Field(
        default_factory=list, description="Email addresses subscribed to the ops notifications topic."
    )

    @field_validator("email_subscriptions")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return [parse_email(address) for address in value]


class ProjectSettings(StrictModel):
    prefix: str = Field(
        "opsauto",
        pattern=r"^[a-z][a-z0-9-]{1,20}$",
        description="Prefix of stack and resource names: lowercase letters, digits, '-', 2-21 characters.",
    )
    tags: dict[str, str] = Field(
        default_factory=lambda: {"project": "aws-ops-automations"}, description="Tags applied to every resource."
    )
    log_retention_days: int = Field(
        30, description="Retention of every function's log group, in days: one of CloudWatch Logs' periods "
        "(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, ... 3653)."
    )
    architecture: Literal["arm64", "x86_64"] = Field("arm64", description="Lambda architecture of every function.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Powertools log level.")
    alarm_actions: bool = Field(True, description="Alarms notify the ops topic.")
    dashboards: bool = Field(
        True,
        description="A CloudWatch dashboard per enabled automation and an overview (each dashboard beyond "
        "the account's free three costs about 3 USD a month).",
    )
    xray_sdk: bool = Field(
        False,
        description="Trace inside functions with the X-Ray SDK (Powertools Tracer: a subsegment per AWS call). "
        "Lambda's active tracing records every invocation either way; the SDK adds about 100 ms to cold starts.",
    )
    ops_topic: OpsTopicSettings = Field(
        default_factory=OpsTopicSettings, description="The ops notifications topic: action reports and alarms."
    )
    organization: OrganizationSettings = Field(
        default_factory=OrganizationSettings,
        description="Organization-wide operation: the accounts and regions the automations reach "
        "(docs/organization.md).",
    )
    automations: Automations = Field(
        default_factory=Automations, description="Each automation's settings, under its name; all disabled by default."
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, tag_value in value.items():
            if not key or len(key) > 128 or key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} must be 1-128 characters and not start with 'aws:'")
            if len(tag_value) > 256:
                raise ValueError(f"tag {key!r} value is longer than 256 characters")
        return value


class SettingsError(Exception):
    """cdk.json (or -c overrides) hold a bad setting; the message names each key path."""


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(root)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against the settings tables in docs/)"
        elif item["type"] == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            message = f"got {item.get('input')!r}; allowed values: {expected}"
        elif item["type"] == "enum":
            message = f"got {item.get('input')!r}; allowed values: {item.get('ctx', {}).get('expected', '')}"
        else:
            message = message.removeprefix("Value error, ")
            if "input" in item and not isinstance(item["input"], dict | list):
                message = f"{message} (got {item['input']!r})"
        lines.append(f"  {path}: {message}")
    return "invalid settings in cdk.json / -c overrides:\n" + "\n".join(lines)


def parse_enable(value: str | None) -> list[str]:
    """``-c enable=a,b`` or ``-c enable=all`` -> automation names; unknown names are errors."""
    if value is None or str(value).strip() == "":
        return []
    names = [name.strip() for name in str(value).split(",") if name.strip()]
    if names == ["all"]:
        return list(AUTOMATION_NAMES)
    unknown = [name for name in names if name not in AUTOMATION_NAMES]
    if unknown:
        raise SettingsError(
            f"enable: unknown automation(s) {', '.join(unknown)}; allowed values: all, {', '.join(AUTOMATION_NAMES)}"
        )
    return names


def _from_context(context: Mapping[str, Any], key: str) -> Any:
    """A context value; ``-c key='{...}'`` on the command line arrives as a JSON string."""
    value = context.get(key) or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{key}: not valid JSON ({exc.msg} at position {exc.pos})") from None
    return value


def load_settings(context: Mapping[str, Any], enable: str | None = None) -> ProjectSettings:
    """Validate the ``project`` and ``automations`` context values; ``enable`` switches automations on."""
    project = _from_context(context, "project")
    if not isinstance(project, Mapping):
        raise SettingsError("project: must be an object of project-wide settings")
    raw: dict[str, Any] = dict(project)
    automations = _from_context(context, "automations")
    if not isinstance(automations, Mapping):
        raise SettingsError("automations: must be an object with one key per automation")
    raw["automations"] = {name: dict(value or {}) for name, value in automations.items()}
    for name in parse_enable(enable):
        raw["automations"].setdefault(name, {})["enabled"] = True
    try:
        return ProjectSettings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(_format_errors(exc)) from None


def defaults() -> dict[str, Any]:
    """The defaults as cdk.json carries them (every automation disabled)."""
    values: dict[str, Any] = json.loads(ProjectSettings().model_dump_json())
    return values


__all__ = [
    "AUTOMATION_NAMES",
    "AlertsSettings",
    "AutomationSettings",
    "Ec2SchedulerSettings",
    "ImageResizeSettings",
    "KeyRotationSettings",
    "OrganizationSettings",
    "PostDeployChecksSettings",
    "ProjectSettings",
    "SettingsError",
    "SgRemediationSettings",
    "defaults",
    "load_settings",
    "parse_enable",
]
