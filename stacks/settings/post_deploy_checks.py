"""Settings of the `post_deploy_checks` automation (cdk.json: context.automations.post_deploy_checks).

Every value is validated with the function's own parsers (functions/post_deploy_checks), so synth accepts
exactly what the function will; :meth:`PostDeployChecksSettings.function_environment` writes the
variables its ``Config.from_env`` reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from post_deploy_checks.config import (
    SECRETS_MAX_AGE_MAX,
    SECRETS_MAX_AGE_MIN,
    hook_checks_variable,
    parse_application_name,
    parse_header_secrets,
    parse_hook_checks,
    parse_secret_name,
    parse_secrets_max_age,
)
from post_deploy_checks.spec import ChecksConfig, ConfigurationError, parse_config, user_parameters_size_problem
from stacks.settings.base import AutomationSettings

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
    # after the first pass, keep watching for five minutes: the checks again every minute
    "bake_seconds": 300,
    "bake_interval_seconds": 60,
}


def checks_config(value: dict[str, Any], source: str) -> ChecksConfig:
    """``value`` parsed by the function's parser; ValueError with the function's own message."""
    try:
        return parse_config(value, source=source)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def validate_user_parameters(value: dict[str, Any], source: str) -> ChecksConfig:
    """A pipeline action's UserParameters: valid checks, within CodePipeline's 1,000 characters."""
    parsed = checks_config(value, source)
    too_long = user_parameters_size_problem(value, source)
    if too_long:
        raise ValueError(too_long)
    return parsed


class PostDeployChecksSettings(AutomationSettings):
    """Health checks after a deployment: a CodePipeline invoke action and/or CodeDeploy lifecycle hooks."""

    checks: dict[str, Any] | None = Field(
        None,
        description="Checks run for CodeDeploy lifecycle hooks (the function's CHECKS variable), in the same JSON "
        "shape as the pipeline action's UserParameters: {checks, alarms, attempts, interval_seconds, "
        "timeout_seconds}; or a map of such objects by hook name (BeforeInstall, AfterInstall, "
        "AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic) with 'default' for the others. Not "
        "needed for CodePipeline, whose checks come from each action's UserParameters.",
    )
    header_secrets: list[Annotated[str, AfterValidator(parse_secret_name)]] = Field(
        default_factory=list,
        description="Names of Secrets Manager secrets that check headers may use ({\"secret\": name}); the function "
        "may read only these.",
    )
    secrets_max_age_seconds: Annotated[int, AfterValidator(parse_secrets_max_age)] = Field(
        300, ge=SECRETS_MAX_AGE_MIN, le=SECRETS_MAX_AGE_MAX,
        description="How long the function caches a header secret, in seconds.",
    )
    codedeploy_applications: list[Annotated[str, AfterValidator(parse_application_name)]] = Field(
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
        try:
            parse_hook_checks(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc).removeprefix("CHECKS: ")) from None
        return value

    @field_validator("example_user_parameters")
    @classmethod
    def _example(cls, value: dict[str, Any]) -> dict[str, Any]:
        validate_user_parameters(value, "example_user_parameters")
        return value

    @field_validator("header_secrets", "codedeploy_applications")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _secrets_declared(self) -> PostDeployChecksSettings:
        hooks = parse_hook_checks(self.checks)
        for source, used in (("checks", hooks.secret_names if hooks else ()),
                             ("example_user_parameters", checks_config(self.example_user_parameters,
                                                                       "example_user_parameters").secret_names)):
            missing = [name for name in used if name not in self.header_secrets]
            if missing:
                raise ValueError(f"{source} uses header secret(s) {', '.join(missing)} that are not in "
                                 "header_secrets; add them there so the function may read them")
        return self

    def function_environment(self) -> dict[str, str]:
        """Every variable the function reads that comes from these settings (see its config.py)."""
        return {
            "CHECKS": hook_checks_variable(self.checks),
            "HEADER_SECRETS": ",".join(parse_header_secrets(self.header_secrets)),
            "SECRETS_MAX_AGE_SECONDS": str(self.secrets_max_age_seconds),
        }
