"""Settings: defaults, each kind of bad value, -c enable, and cdk.json staying in step with the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.settings import AUTOMATION_NAMES, SettingsError, defaults, load_settings, parse_enable

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_have_every_automation_disabled() -> None:
    settings = load_settings({})
    assert settings.automations.enabled() == []
    assert settings.architecture == "arm64"
    assert settings.log_retention_days == 30


def test_cdk_json_carries_every_default() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    assert context["automations"] == defaults()["automations"], "run `make settings` to refresh cdk.json"
    assert {k: v for k, v in defaults().items() if k != "automations"} == context["project"]
    assert set(context["automations"]) == set(AUTOMATION_NAMES)


@pytest.mark.parametrize(
    ("enable", "expected"),
    [(None, []), ("", []), ("all", list(AUTOMATION_NAMES)), ("alerts, image_resize", ["alerts", "image_resize"])],
)
def test_parse_enable(enable: str | None, expected: list[str]) -> None:
    assert parse_enable(enable) == expected


def test_enable_switches_on_without_editing_files() -> None:
    settings = load_settings({"automations": {"alerts": {"enabled": False}}}, "alerts")
    assert settings.automations.enabled() == ["alerts"]


def test_unknown_automation_in_enable_names_allowed_values() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({}, "alerts,bogus")
    assert "bogus" in str(error.value)
    assert "allowed values: all, image_resize" in str(error.value)


@pytest.mark.parametrize(
    ("context", "path", "fragment"),
    [
        ({"project": {"architecture": "arm"}}, "architecture", "'arm64' or 'x86_64'"),
        ({"project": {"log_retention_days": 31}}, "log_retention_days", "must be one of 1, 3, 5"),
        ({"project": {"log_level": "loud"}}, "log_level", "allowed values"),
        ({"project": {"prefix": "Bad Prefix"}}, "prefix", "pattern"),
        ({"project": {"tags": {"aws:reserved": "x"}}}, "tags", "must be 1-128 characters"),
        ({"project": {"ops_topic": {"email_subscriptions": ["not-an-email"]}}}, "ops_topic.email_subscriptions",
         "is not an email address"),
        ({"project": {"colour": "blue"}}, "colour", "unknown setting"),
        ({"automations": {"alerts": {"enabeld": True}}}, "automations.alerts.enabeld", "unknown setting"),
        ({"automations": {"alerts": {"memory_mb": 64}}}, "automations.alerts.memory_mb", "greater than or equal"),
        ({"automations": {"nonsense": {}}}, "automations.nonsense", "unknown setting"),
    ],
)
def test_bad_values_name_the_key_path(context: dict, path: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(context)
    message = str(error.value)
    assert f"  {path}:" in message
    assert fragment in message
    assert "Traceback" not in message


def test_automations_must_be_an_object() -> None:
    with pytest.raises(SettingsError, match="automations: must be an object"):
        load_settings({"automations": ["alerts"]})
