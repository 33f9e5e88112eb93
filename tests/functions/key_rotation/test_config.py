"""The settings contract: settings -> function_environment() (+ the stack's variables) -> Config, same values.

Any valid settings give a Config with the same values; invalid values fail at settings validation with the
key path named; the function's Config requires every variable (no second defaults).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from key_rotation.config import Config, parse_exempt_tag
from shared.config import ConfigError
from stacks.settings import SettingsError, load_settings
from stacks.settings.key_rotation import KeyRotationSettings

TOPIC = "arn:aws:sns:us-east-1:123456789012:opsauto-ops"
_tag_text = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N"), include_characters="_.:/+-@ "),
                    min_size=1, max_size=20).filter(lambda t: t.strip() == t)
_user = st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,20}", fullmatch=True)


@st.composite
def valid_settings(draw: st.DrawFn) -> dict[str, Any]:
    warn = draw(st.integers(1, 400))
    deactivate = draw(st.integers(warn + 1, warn + 400))
    delete = draw(st.integers(deactivate + 1, deactivate + 400))
    grace = draw(st.integers(1, 30))
    users = draw(st.lists(_user, max_size=3, unique_by=str.lower))
    tag = draw(st.one_of(st.just(""), st.builds(lambda k, v: f"{k}={v}", _tag_text, _tag_text)))
    return {
        "mode": draw(st.sampled_from(["report", "enforce"])),
        "warn_after_days": warn, "deactivate_after_days": deactivate, "delete_after_days": delete,
        "grace_days": grace,
        "exempt_group": draw(st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9_+=,.@-]{1,30}", fullmatch=True))),
        "exempt_tag": tag,
        "max_changes": draw(st.integers(0, 10000)),
        "managed_users": [{"user_name": u, "rotation_days": draw(st.integers(2 * grace + 2, 1000))} for u in users],
    }


@settings(max_examples=60, deadline=None)
@given(valid_settings())
def test_settings_round_trip_to_config(raw: dict[str, Any]) -> None:
    model = KeyRotationSettings(**raw)
    secrets = {u.user_name: f"opsauto/key-rotation/{u.user_name}" for u in model.managed_users}
    env = {**model.function_environment(), "MANAGED_SECRETS": json.dumps(secrets), "NOTIFY_TOPIC_ARN": TOPIC}

    config = Config.from_env(env)

    assert config.mode == model.mode
    assert (config.thresholds.warn_after_days, config.thresholds.deactivate_after_days,
            config.thresholds.delete_after_days, config.thresholds.grace_days) == (
        model.warn_after_days, model.deactivate_after_days, model.delete_after_days, model.grace_days)
    assert config.max_changes == model.max_changes
    assert config.exempt_group == model.exempt_group
    assert config.exempt_tag == parse_exempt_tag(model.exempt_tag)
    assert config.managed_secrets == secrets
    assert config.notify_topic_arn == TOPIC


def test_every_variable_is_required() -> None:
    env = {**KeyRotationSettings().function_environment(), "MANAGED_SECRETS": "{}", "NOTIFY_TOPIC_ARN": TOPIC}
    Config.from_env(env)
    for name in env:
        partial = {k: v for k, v in env.items() if k != name}
        with pytest.raises(ConfigError, match=name):
            Config.from_env(partial)


@pytest.mark.parametrize(
    ("settings_", "path"),
    [
        ({"exempt_tag": "=value"}, "automations.key_rotation.exempt_tag"),
        ({"warn_after_days": 0}, "automations.key_rotation.warn_after_days"),
        ({"grace_days": 0}, "automations.key_rotation.grace_days"),
        ({"mode": "on"}, "automations.key_rotation.mode"),
        ({"managed_users": [{"user_name": "a", "rotation_days": 0}]},
         "automations.key_rotation.managed_users.0.rotation_days"),
        ({"warn_after_days": 100}, "automations.key_rotation: warn_after_days < deactivate_after_days"),
    ],
)
def test_invalid_settings_name_the_key(settings_: dict[str, Any], path: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"automations": {"key_rotation": settings_}})
    assert path in str(error.value)


def test_bad_values_in_the_environment_name_the_variable() -> None:
    env = {**KeyRotationSettings().function_environment(), "MANAGED_SECRETS": "{}", "NOTIFY_TOPIC_ARN": TOPIC}
    with pytest.raises(ConfigError, match="EXEMPT_TAG"):
        Config.from_env({**env, "EXEMPT_TAG": "novalue"})
    with pytest.raises(ConfigError, match="MANAGED_SECRETS"):
        Config.from_env({**env, "MANAGED_SECRETS": "[1]"})
    with pytest.raises(ConfigError, match="warn_after_days < deactivate_after_days"):
        Config.from_env({**env, "WARN_AFTER_DAYS": "95"})
