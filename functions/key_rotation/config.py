"""The function's settings: ``Config.from_env`` and the pure parsers the settings model validates with.

Every variable is required (the settings model, ``stacks/settings/key_rotation.py``, writes each one through
``function_environment()``; the stack adds ``MANAGED_SECRETS`` and ``NOTIFY_TOPIC_ARN``). ``EXEMPT_GROUP`` and
``EXEMPT_TAG`` may be present and empty (no exemption).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from key_rotation.policy import Thresholds
from shared.config import ConfigError, env_int, env_mode, env_str

# testSecret: how often and how far apart to try the new key (IAM keys take seconds to become usable).
TEST_ATTEMPTS = 6
TEST_DELAY_SECONDS = 2.0


def parse_exempt_tag(value: str) -> tuple[str, str] | None:
    """``Key=Value`` (key 1-128 characters, value up to 256) -> (key, value); empty -> None."""
    if value.strip() == "":
        return None
    key, sep, tag_value = value.partition("=")
    if not sep or not key.strip() or len(key.strip()) > 128 or len(tag_value.strip()) > 256:
        raise ValueError("must be 'Key=Value' (key 1-128 characters, value up to 256), or empty")
    return key.strip(), tag_value.strip()


def parse_managed_secrets(value: Any) -> dict[str, str]:
    """``{"<user name>": "<secret name or ARN>"}`` (a JSON object, or its text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                              for k, v in value.items()):
        raise ValueError("must be a JSON object of user name -> secret name or ARN")
    return dict(value)


def parse_thresholds(warn_after_days: int, deactivate_after_days: int, delete_after_days: int,
                     grace_days: int) -> Thresholds:
    """The sweep's day thresholds; ``warn < deactivate < delete`` and ``grace >= 0`` (ValueError otherwise)."""
    return Thresholds(warn_after_days, deactivate_after_days, delete_after_days, grace_days)


def _parsed(name: str, raw: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}") from None


def _present(name: str, env: Mapping[str, str]) -> str:
    """A required variable that may be empty."""
    if name not in env:
        raise ConfigError(f"environment variable {name} is required")
    return env[name].strip()


@dataclass(frozen=True)
class Config:
    """The function's environment, read once per invocation."""

    mode: str
    thresholds: Thresholds
    max_changes: int
    exempt_group: str
    exempt_tag: tuple[str, str] | None
    managed_secrets: dict[str, str]  # user name -> secret name or ARN
    notify_topic_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        source: Mapping[str, str] = os.environ if env is None else env
        days = [env_int(name, minimum=0, env=source) for name in
                ("WARN_AFTER_DAYS", "DEACTIVATE_AFTER_DAYS", "DELETE_AFTER_DAYS", "GRACE_DAYS")]
        try:
            thresholds = parse_thresholds(*days)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        exempt_tag = _parsed("EXEMPT_TAG", _present("EXEMPT_TAG", source), parse_exempt_tag)
        managed = _parsed("MANAGED_SECRETS", env_str("MANAGED_SECRETS", env=source), parse_managed_secrets)
        return cls(
            mode=env_mode(None, env=source),
            thresholds=thresholds,
            max_changes=env_int("MAX_CHANGES", minimum=0, env=source),
            exempt_group=_present("EXEMPT_GROUP", source),
            exempt_tag=exempt_tag,
            managed_secrets=managed,
            notify_topic_arn=env_str("NOTIFY_TOPIC_ARN", env=source),
        )
