"""The function's settings: ``Config.from_env`` and the pure parsers the settings model validates with.

Every variable is required: stacks/settings/sg_remediation.py writes each of them
(``SgRemediationSettings.function_environment()``), so the function keeps no second set of defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sg_remediation.policy import (
    AllowedPorts,
    ExemptTag,
    Policy,
    PolicyError,
    World,
    parse_allowed_ports,
    parse_egress,
    parse_exempt_tag,
    parse_max_prefix,
)
from shared import names
from shared.config import ConfigError, env_int, env_mode, env_str
from shared.config import env_parsed as _parsed
from shared.fanout import FanoutConfig
from shared.targets import TargetSpec

OWN_REGION = "own"  # REGIONS=own: the function's own region (AWS_REGION, set by Lambda)
MAX_CHANGES_RANGE = (1, 1000)


def parse_regions(regions: Iterable[str]) -> tuple[str, ...]:
    """Region names like ``eu-central-1``, each once. Raises PolicyError naming the bad one."""
    try:
        return tuple(names.parse_regions(regions))
    except ValueError as exc:
        raise PolicyError(str(exc)) from None


def _max_prefix(family: str, env: Mapping[str, str] | None) -> int:
    name = f"MAX_PREFIX_{family.upper()}"
    value = env_int(name, env=env)
    try:
        return parse_max_prefix(value, family)
    except PolicyError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _regions(env: Mapping[str, str] | None) -> tuple[str, ...]:
    value = env_str("REGIONS", env=env)
    if value == OWN_REGION:
        return (env_str("AWS_REGION", env=env),)
    return _parsed("REGIONS", lambda text: parse_regions(item.strip() for item in text.split(",")), env)


@dataclass(frozen=True)
class Config:
    """From ``MODE``, ``ALLOWED_PUBLIC_PORTS``, ``EXEMPT_TAG``, ``MAX_PREFIX_V4``, ``MAX_PREFIX_V6``, ``EGRESS``,
    ``REGIONS``, ``MAX_CHANGES``, ``NOTIFY_TOPIC_ARN``; organization-wide also ``TARGET_ACCOUNTS`` /
    ``TARGET_OUS`` / ``MEMBER_ROLE_NAME`` (``targets``, ``shared.targets``) and the sweep's work queue
    (``fanout``, ``shared.fanout``; None without ``WORK_QUEUE_URL``: the sweep runs in one invocation)."""

    mode: str
    allowed: AllowedPorts
    exempt: ExemptTag
    world: World
    egress: str
    regions: tuple[str, ...]
    max_changes: int
    topic_arn: str
    targets: TargetSpec
    fanout: FanoutConfig | None

    @property
    def policy(self) -> Policy:
        return Policy(allowed=self.allowed, exempt=self.exempt, world=self.world, egress=self.egress)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        low, high = MAX_CHANGES_RANGE
        regions = _regions(env)
        return cls(
            mode=env_mode(None, env=env),
            allowed=_parsed("ALLOWED_PUBLIC_PORTS", parse_allowed_ports, env),
            exempt=_parsed("EXEMPT_TAG", parse_exempt_tag, env),
            world=World(max_prefix_v4=_max_prefix("v4", env), max_prefix_v6=_max_prefix("v6", env)),
            egress=_parsed("EGRESS", parse_egress, env),
            regions=regions,
            max_changes=env_int("MAX_CHANGES", minimum=low, maximum=high, env=env),
            topic_arn=env_str("NOTIFY_TOPIC_ARN", env=env),
            # REGIONS=own resolved above: the targets' regions are the same list.
            targets=TargetSpec.from_env({**(os.environ if env is None else env), "REGIONS": ",".join(regions)}),
            fanout=FanoutConfig.from_env(env),
        )
