"""The function's settings: ``Config.from_env`` and the pure parsers the settings model validates with.

Every variable is required (the settings model, ``stacks/settings/key_rotation.py``, writes each one through
``function_environment()``; the stack adds ``MANAGED_SECRETS``, ``OWNER_TOPIC_ARN`` and ``NOTIFY_TOPIC_ARN``).
``EXEMPT_GROUP``, ``EXEMPT_TAG`` and ``OWNER_TAG`` may be present and empty (no exemption, no owner notices).
Organization-wide (``context.project.organization``): the target variables of ``shared.targets``
(``TARGET_ACCOUNTS``, ``TARGET_OUS``, ``MEMBER_ROLE_NAME``, ``REGIONS``: one region, IAM is global) and the fan-out's
(``WORK_QUEUE_URL`` ..., ``shared.fanout.FanoutConfig``), both absent when the sweep works in its own account.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from key_rotation.policy import Thresholds
from shared.config import ConfigError, env_bool, env_int, env_mode, env_present, env_str, parsed
from shared.fanout import FanoutConfig
from shared.targets import TargetSpec

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


# IAM user names: letters, digits and +=,.@_- (1-64); paths: "/" or "/a/b/" (1-512).
_USER_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,64}$")
_IAM_PATH = re.compile(r"^/([\x21-\x7e]{0,510}/)?$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,128}$")


def parse_user_name(value: str) -> str:
    """An IAM user name: 1-64 letters, digits and ``+=,.@_-``."""
    if not _USER_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an IAM user name (1-64 letters, digits and +=,.@_-)")
    return value


def parse_exempt_group(value: str) -> str:
    """An IAM group name (1-128 letters, digits and ``+=,.@_-``), or empty for no exempt group."""
    name = value.strip()
    if name and not _GROUP_NAME.fullmatch(name):
        raise ValueError(f"{value!r} is not an IAM group name (1-128 letters, digits and +=,.@_-)")
    return name


def parse_iam_path(value: str) -> str:
    """An IAM path: ``/`` or ``/a/b/`` (printable ASCII, at most 512 characters)."""
    if not _IAM_PATH.fullmatch(value):
        raise ValueError(f"{value!r} is not an IAM path ('/' or '/division/team/')")
    return value


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
    return {parse_user_name(user): secret for user, secret in value.items()}


def parse_thresholds(warn_after_days: int, deactivate_after_days: int, delete_after_days: int, grace_days: int,
                     deactivate_if_unused_days: int, deactivate_in_use: bool, warn_days_before: int) -> Thresholds:
    """The sweep's policy; ``warn < deactivate < delete`` among others (ValueError otherwise)."""
    return Thresholds(warn_after_days, deactivate_after_days, delete_after_days, grace_days,
                      deactivate_if_unused_days, deactivate_in_use, warn_days_before)


def parse_owner_tag(value: str) -> str | None:
    """The IAM user tag key naming a user's owner (1-128 characters, not ``aws:``); empty: no owner notices."""
    key = value.strip()
    if key == "":
        return None
    if len(key) > 128 or key.lower().startswith("aws:"):
        raise ValueError("must be a tag key of 1-128 characters that does not start with 'aws:', or empty")
    return key




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
    owner_tag: str | None  # the user tag naming the owner of a user's keys (None: no owner notices)
    owner_topic_arn: str  # the topic of owner notices (message attribute ``owner``)
    credential_report_users: int  # above this many users, last use comes from the IAM credential report
    targets: TargetSpec  # the accounts the sweep covers (its own only, unless organization-wide)
    fanout: FanoutConfig | None  # organization-wide: the work queue and run table of the sweep's fan-out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        source: Mapping[str, str] = os.environ if env is None else env
        warn, deactivate, delete, grace, unused = (env_int(name, minimum=0, env=source) for name in (
            "WARN_AFTER_DAYS", "DEACTIVATE_AFTER_DAYS", "DELETE_AFTER_DAYS", "GRACE_DAYS", "DEACTIVATE_IF_UNUSED_DAYS"))
        in_use = env_bool("DEACTIVATE_IN_USE", env=source)
        warn_before = env_int("WARN_DAYS_BEFORE", minimum=0, env=source)
        try:
            thresholds = parse_thresholds(warn, deactivate, delete, grace, unused, in_use, warn_before)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        exempt_tag = parsed("EXEMPT_TAG", parse_exempt_tag, env_present("EXEMPT_TAG", env=source))
        managed = parsed("MANAGED_SECRETS", parse_managed_secrets, env_str("MANAGED_SECRETS", env=source))
        return cls(
            mode=env_mode(None, env=source),
            thresholds=thresholds,
            max_changes=env_int("MAX_CHANGES", minimum=0, env=source),
            exempt_group=parsed("EXEMPT_GROUP", parse_exempt_group, env_present("EXEMPT_GROUP", env=source)),
            exempt_tag=exempt_tag,
            managed_secrets=managed,
            notify_topic_arn=env_str("NOTIFY_TOPIC_ARN", env=source),
            owner_tag=parsed("OWNER_TAG", parse_owner_tag, env_present("OWNER_TAG", env=source)),
            owner_topic_arn=env_str("OWNER_TOPIC_ARN", env=source),
            credential_report_users=env_int("CREDENTIAL_REPORT_USERS", minimum=0, env=source),
            targets=TargetSpec.from_env(source),
            fanout=FanoutConfig.from_env(source),
        )
