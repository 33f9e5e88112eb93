"""The settings contract of alerts: settings -> function_environment() -> Config.from_env, one round trip."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.config import Config
from shared.config import ConfigError
from shared.reports import SEVERITIES
from stacks.settings import SettingsError, load_settings
from stacks.settings.alerts import AlertsSettings

RESOURCES = {"DESTINATIONS_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:d-AbCdEf",
             "DELIVERY_TABLE_NAME": "opsauto-alerts-deliveries",
             "UNDELIVERED_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/undelivered",
             "AWS_REGION": "eu-west-1"}

valid = st.fixed_dictionaries({
    "min_severity": st.sampled_from(SEVERITIES),
    "ops_topic_min_severity": st.sampled_from(SEVERITIES),
    "max_log_lines": st.integers(1, 200),
    "http_timeout_seconds": st.integers(1, 30),
    "retry_attempts": st.integers(0, 2),
})


@settings(max_examples=60, deadline=None)
@given(valid)
def test_settings_round_trip_to_config(values: dict[str, Any]) -> None:
    model = AlertsSettings.model_validate(values)
    config = Config.from_env({**model.function_environment(), **RESOURCES})
    assert (config.min_severity, config.max_log_lines, config.http_timeout_seconds, config.delivery_attempts) == (
        values["min_severity"], values["max_log_lines"], values["http_timeout_seconds"], values["retry_attempts"] + 1)
    assert (config.secret_arn, config.delivery_table, config.undelivered_queue_url, config.region) == (
        RESOURCES["DESTINATIONS_SECRET_ARN"], RESOURCES["DELIVERY_TABLE_NAME"], RESOURCES["UNDELIVERED_QUEUE_URL"],
        "eu-west-1")


def test_environment_is_every_variable_config_reads() -> None:
    env = {**AlertsSettings().function_environment(), **RESOURCES}
    Config.from_env(env)
    for name in env:
        with pytest.raises(ConfigError, match=name):
            Config.from_env({key: value for key, value in env.items() if key != name})


invalid = st.one_of(
    st.tuples(st.just("min_severity"), st.text(max_size=8).filter(lambda s: s.strip().lower() not in SEVERITIES)),
    st.tuples(st.just("ops_topic_min_severity"), st.sampled_from(["all", "error", "", "none"])),
    st.tuples(st.just("max_log_lines"), st.one_of(st.integers(max_value=0), st.integers(min_value=201))),
    st.tuples(st.just("http_timeout_seconds"), st.one_of(st.integers(max_value=0), st.integers(min_value=31))),
    st.tuples(st.just("retry_attempts"), st.one_of(st.integers(max_value=-1), st.integers(min_value=3))),
)


@settings(max_examples=60, deadline=None)
@given(invalid)
def test_invalid_values_fail_at_synth_with_the_key_path(case: tuple[str, Any]) -> None:
    key, value = case
    with pytest.raises(SettingsError) as caught:
        load_settings({"automations": {"alerts": {"enabled": True, key: value}}})
    assert f"automations.alerts.{key}" in str(caught.value)


@pytest.mark.parametrize(("name", "value"), [("MIN_SEVERITY", "loud"), ("MAX_LOG_LINES", "0"),
                                             ("HTTP_TIMEOUT_SECONDS", "x"), ("DELIVERY_ATTEMPTS", "4")])
def test_a_bad_variable_names_itself(name: str, value: str) -> None:
    env = {**AlertsSettings().function_environment(), **RESOURCES, name: value}
    with pytest.raises(ConfigError, match=name):
        Config.from_env(env)
