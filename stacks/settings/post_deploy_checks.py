"""Settings of the `post_deploy_checks` automation (cdk.json: context.automations.post_deploy_checks)."""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import Field, field_validator, model_validator

from stacks.settings.base import AutomationSettings

_CHECKS_PY = Path(__file__).resolve().parents[2] / "functions" / "post_deploy_checks" / "checks.py"
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_APPLICATION_NAME = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}$")

EXAMPLE_USER_PARAMETERS: dict[str, Any] = {
    "checks": [
        {"name": "homepage", "url": "https://example.com/", "expect_status": 200, "body_contains": "Example Domain",
         "max_latency_ms": 3000},
    ],
    "alarms": [],
    "attempts": 3,
    "interval_seconds": 10,
    "timeout_seconds": 5,
    "stabilize_seconds": 0,
}


@cache
def checks_module() -> ModuleType:
    """The function's own pure parser (functions/post_deploy_checks/checks.py: stdlib and functions/shared
    only), so synth validates checks exactly as the function will."""
    functions_dir = str(_CHECKS_PY.parents[1])
    if functions_dir not in sys.path:
        sys.path.append(functions_dir)
    return importlib.import_module("post_deploy_checks.checks")


def validate_checks(value: dict[str, Any], source: str) -> None:
    """Raise ValueError with the function's own message when ``value`` is not a valid checks configuration."""
    module = checks_module()
    try:
        module.parse_config(value, source=source)
    except module.ConfigurationError as exc:
        raise ValueError(str(exc)) from None


class PostDeployChecksSettings(AutomationSettings):
    """Health checks after a deployment: a CodePipeline invoke action and/or CodeDeploy lifecycle hooks."""

    checks: dict[str, Any] | None = Field(
        None,
        description="Checks run for CodeDeploy lifecycle hooks (the function's CHECKS variable), in the same JSON "
        "shape as the pipeline action's UserParameters: {checks, alarms, attempts, interval_seconds, "
        "timeout_seconds}. Not needed for CodePipeline, whose checks come from each action's UserParameters.",
    )
    header_secrets: list[str] = Field(
        default_factory=list,
        description="Names of Secrets Manager secrets that check headers may use ({\"secret\": name}); the function "
        "may read only these.",
    )
    secrets_max_age_seconds: int = Field(
        300, ge=0, le=86_400, description="How long the function caches a header secret, in seconds."
    )
    codedeploy_applications: list[str] = Field(
        default_factory=list,
        description="CodeDeploy applications whose lifecycle hooks this function may answer; empty: any "
        "deployment group of the account and region.",
    )
    example_pipeline: bool = Field(
        False,
        description="Also create an example CodePipeline (S3 source -> post-deployment checks action).",
    )
    example_user_parameters: dict[str, Any] = Field(
        default_factory=lambda: dict(EXAMPLE_USER_PARAMETERS),
        description="UserParameters of the example pipeline's checks action.",
    )

    @field_validator("checks")
    @classmethod
    def _checks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        validate_checks(value, "checks")
        if value.get("stabilize_seconds"):
            raise ValueError("stabilize_seconds is only for CodePipeline actions: a CodeDeploy lifecycle hook "
                             "cannot be continued, so leave it out of these checks")
        return value

    @field_validator("example_user_parameters")
    @classmethod
    def _example(cls, value: dict[str, Any]) -> dict[str, Any]:
        validate_checks(value, "example_user_parameters")
        too_long = checks_module().user_parameters_size_problem(value, "example_user_parameters")
        if too_long:
            raise ValueError(too_long)
        return value

    @field_validator("header_secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _SECRET_NAME.match(name) or name.startswith("arn:"):
                raise ValueError(f"{name!r} is not a Secrets Manager secret name (letters, digits, /_+=.@-; "
                                 "give the name, not the ARN)")
        return list(dict.fromkeys(value))

    @field_validator("codedeploy_applications")
    @classmethod
    def _applications(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _APPLICATION_NAME.match(name):
                raise ValueError(f"{name!r} is not a CodeDeploy application name")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _secrets_declared(self) -> PostDeployChecksSettings:
        for source, value in (("checks", self.checks), ("example_user_parameters", self.example_user_parameters)):
            if not value:
                continue
            used = checks_module().parse_config(value, source=source).secret_names
            missing = [name for name in used if name not in self.header_secrets]
            if missing:
                raise ValueError(f"{source} uses header secret(s) {', '.join(missing)} that are not in "
                                 "header_secrets; add them there so the function may read them")
        return self
