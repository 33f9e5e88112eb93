"""The function's settings: one pure parser per setting (the settings model in stacks/settings imports
these for synth-time validation) and :class:`Config`, read once per invocation from the environment the
settings model writes.

Variables (every one required; the settings model writes the first three, the platform adds
NOTIFY_TOPIC_ARN and the stack TOKEN_KEY_SECRET_ARN):

- ``CHECKS``: JSON checks of CodeDeploy lifecycle hooks, or empty when the function answers no hooks;
- ``HEADER_SECRETS``: comma-separated names of the Secrets Manager secrets check headers may use (may be empty);
- ``SECRETS_MAX_AGE_SECONDS``: how long a header secret is cached;
- ``NOTIFY_TOPIC_ARN``: the ops notifications topic;
- ``TOKEN_KEY_SECRET_ARN``: the Secrets Manager secret (created by the stack) whose value is the HMAC key
  of continuation tokens.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from post_deploy_checks.spec import ChecksConfig, ConfigurationError, parse_config
from shared.config import ConfigError, env_int, env_present, env_str
from shared.names import is_secret_name

SECRETS_MAX_AGE_MIN = 0
SECRETS_MAX_AGE_MAX = 86_400
_APPLICATION_NAME = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}$")


# --------------------------------------------------------------------------- parsers (one per setting)


# Lifecycle hooks of CodeDeploy's Lambda and ECS deployments (Lambda has the last two only).
HOOK_NAMES = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic")
DEFAULT_HOOK = "default"


@dataclass(frozen=True)
class HookChecks:
    """The checks of each lifecycle hook (``default``: every hook without its own)."""

    by_hook: Mapping[str, ChecksConfig]

    def for_hook(self, hook: str | None) -> ChecksConfig | None:
        return self.by_hook.get(hook or "", self.by_hook.get(DEFAULT_HOOK))

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for checks in self.by_hook.values() for name in checks.secret_names))


def parse_hook_checks(raw: str | Mapping[str, Any] | None) -> HookChecks | None:
    """``checks`` / ``CHECKS``: the checks of CodeDeploy lifecycle hooks; None or empty: none configured.

    Either one checks object for every hook, or a map by hook name (BeforeInstall, AfterInstall,
    AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic) with ``default`` for the others.
    Raises :class:`ConfigurationError` naming each problem."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    data: Any = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            parse_config(raw, source="CHECKS")  # raises with the position of the JSON error
    names = (*HOOK_NAMES, DEFAULT_HOOK)
    if not (isinstance(data, Mapping) and any(key in names for key in data)):
        return HookChecks({DEFAULT_HOOK: _hook_config(data, "CHECKS")})
    unknown = sorted(str(key) for key in data if key not in names)
    if unknown:
        raise ConfigurationError(f"CHECKS: {', '.join(unknown)} is not a lifecycle hook; a map of checks by hook "
                                 f"takes {', '.join(names)}")
    return HookChecks({str(name): _hook_config(value, f"CHECKS.{name}") for name, value in data.items()})


def _hook_config(raw: Any, source: str) -> ChecksConfig:
    parsed = parse_config(raw, source=source)
    for key in ("stabilize_seconds", "bake_seconds"):
        if getattr(parsed, key):
            raise ConfigurationError(f"{source}: {key} is only for CodePipeline actions: a CodeDeploy lifecycle hook "
                                     "cannot be continued, so leave it out of these checks")
    return parsed


def hook_checks_variable(raw: Mapping[str, Any] | None) -> str:
    """The ``CHECKS`` value for the ``checks`` setting (compact JSON; empty for none)."""
    return "" if raw is None else json.dumps(raw, separators=(",", ":"), sort_keys=True)


def parse_secret_name(name: str) -> str:
    """One ``header_secrets`` entry: a Secrets Manager secret name (not an ARN)."""
    if not is_secret_name(name):
        raise ValueError(f"{name!r} is not a Secrets Manager secret name (letters, digits, /_+=.@-; give the name, "
                         "not the ARN)")
    return name


def parse_header_secrets(names: Iterable[str]) -> tuple[str, ...]:
    """``header_secrets`` / ``HEADER_SECRETS``: distinct secret names, in order."""
    return tuple(dict.fromkeys(parse_secret_name(name) for name in names))


def parse_secrets_max_age(value: int) -> int:
    """``secrets_max_age_seconds`` / ``SECRETS_MAX_AGE_SECONDS``: 0-86,400 seconds."""
    if isinstance(value, bool) or not isinstance(value, int) or not SECRETS_MAX_AGE_MIN <= value <= SECRETS_MAX_AGE_MAX:
        raise ValueError(f"{value!r} is not a whole number of seconds from {SECRETS_MAX_AGE_MIN} to "
                         f"{SECRETS_MAX_AGE_MAX}")
    return value


def parse_application_name(name: str) -> str:
    """One ``codedeploy_applications`` entry (used by the stack for the role's scope)."""
    if not isinstance(name, str) or not _APPLICATION_NAME.match(name):
        raise ValueError(f"{name!r} is not a CodeDeploy application name")
    return name


# --------------------------------------------------------------------------- the environment


@dataclass(frozen=True)
class Config:
    """The function's environment, read once per invocation."""

    hook_checks: HookChecks | None
    header_secrets: tuple[str, ...]
    secrets_max_age_seconds: int
    notify_topic_arn: str
    token_key_secret: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        source = os.environ if env is None else env
        try:
            hook_checks = parse_hook_checks(env_present("CHECKS", env=source))
        except ConfigurationError as exc:
            raise ConfigError(str(exc)) from None
        try:
            secrets = parse_header_secrets(item.strip() for item in env_present("HEADER_SECRETS", env=source).split(",")
                                           if item.strip())
        except ValueError as exc:
            raise ConfigError(f"HEADER_SECRETS: {exc}") from None
        return cls(
            hook_checks=hook_checks,
            header_secrets=secrets,
            secrets_max_age_seconds=env_int("SECRETS_MAX_AGE_SECONDS", minimum=SECRETS_MAX_AGE_MIN,
                                            maximum=SECRETS_MAX_AGE_MAX, env=source),
            notify_topic_arn=env_str("NOTIFY_TOPIC_ARN", env=source),
            token_key_secret=env_str("TOKEN_KEY_SECRET_ARN", env=source),
        )

