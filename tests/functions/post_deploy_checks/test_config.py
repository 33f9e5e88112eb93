"""The settings contract: settings -> function_environment() -> Config.from_env gives the same values; bad
values fail at settings validation with the key path named; a missing variable fails naming it."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from post_deploy_checks.config import DEFAULT_HOOK, HOOK_NAMES, Config, HookChecks
from post_deploy_checks.spec import METHODS, parse_config
from shared.config import ConfigError
from stacks.settings import SettingsError, load_settings

TOPIC = "arn:aws:sns:us-east-1:123456789012:opsauto-ops"
TOKEN_KEY_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:opsauto-token-key-AbCdEf"
KEY = "automations.post_deploy_checks"

secret_names = st.text(string.ascii_letters + string.digits + "/_+=.@-", min_size=1, max_size=40).filter(
    lambda name: not name.startswith("arn:"))
header_values = st.text(string.ascii_letters + string.digits + " -_.:/=", max_size=30)
json_values = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=20))


@st.composite
def check_specs(draw: st.DrawFn, name: str, secrets: list[str]) -> dict[str, Any]:
    host = draw(st.from_regex(r"[a-z][a-z0-9-]{0,15}\.example", fullmatch=True))
    path = draw(st.from_regex(r"(/[a-z0-9]{1,8}){0,3}", fullmatch=True))
    spec: dict[str, Any] = {"name": name, "url": f"{draw(st.sampled_from(['http', 'https']))}://{host}{path}"}
    if draw(st.booleans()):
        spec["method"] = draw(st.sampled_from(METHODS))
    if draw(st.booleans()):
        spec["expect_status"] = draw(st.lists(st.integers(100, 599), min_size=1, max_size=3))
    if draw(st.booleans()):
        spec["body_contains"] = draw(st.text(min_size=1, max_size=20))
    if draw(st.booleans()):
        spec["json"] = {"path": draw(st.from_regex(r"[a-z]{1,5}(\.[a-z0-9]{1,5}){0,2}", fullmatch=True)),
                        "equals": draw(json_values)}
    if spec.get("method") == "HEAD":  # HEAD gets no body: a body check is refused
        spec.pop("body_contains", None)
        spec.pop("json", None)
    if draw(st.booleans()):
        spec["max_latency_ms"] = draw(st.integers(1, 600_000))
    headers: dict[str, Any] = {}
    for header in draw(st.lists(st.sampled_from(["X-Env", "Authorization", "X-Api-Key"]), unique=True, max_size=2)):
        if secrets and draw(st.booleans()):
            headers[header] = {"secret": draw(st.sampled_from(secrets))}
        else:
            headers[header] = draw(header_values)
    if headers:
        spec["headers"] = headers
    return spec


@st.composite
def valid_settings(draw: st.DrawFn) -> dict[str, Any]:
    secrets = draw(st.lists(secret_names, max_size=3))
    raw: dict[str, Any] = {"header_secrets": secrets,
                           "secrets_max_age_seconds": draw(st.integers(0, 86_400))}
    if draw(st.booleans()):
        if draw(st.booleans()):  # one checks object for every hook
            raw["checks"] = draw(checks_objects(secrets))
        else:  # a map by hook name
            hooks = draw(st.lists(st.sampled_from([*HOOK_NAMES, DEFAULT_HOOK]), unique=True, min_size=1, max_size=3))
            raw["checks"] = {hook: draw(checks_objects(secrets)) for hook in hooks}
    return raw


@st.composite
def checks_objects(draw: st.DrawFn, secrets: list[str]) -> dict[str, Any]:
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), unique=True, max_size=4))
    alarms = draw(st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True), min_size=0 if names else 1,
                           max_size=3))
    return {"checks": [draw(check_specs(name, secrets)) for name in names], "alarms": alarms,
            "attempts": draw(st.integers(1, 10)),
            "interval_seconds": draw(st.floats(0, 300, allow_nan=False)),
            "timeout_seconds": draw(st.floats(0.1, 60, allow_nan=False))}


def expected_hook_checks(raw: dict[str, Any] | None) -> HookChecks | None:
    if raw is None:
        return None
    if "checks" in raw or "alarms" in raw:
        return HookChecks({DEFAULT_HOOK: parse_config(raw, source="CHECKS")})
    return HookChecks({hook: parse_config(value, source=f"CHECKS.{hook}") for hook, value in raw.items()})


@settings(max_examples=60, deadline=None)
@given(valid_settings())
def test_settings_round_trip_through_the_environment(raw: dict[str, Any]) -> None:
    model = load_settings({"automations": {"post_deploy_checks": raw}}).automations.post_deploy_checks
    environment = model.function_environment()
    assert all(isinstance(value, str) for value in environment.values())
    config = Config.from_env(environment | {"NOTIFY_TOPIC_ARN": TOPIC, "TOKEN_KEY_SECRET_ARN": TOKEN_KEY_ARN})
    assert config.hook_checks == expected_hook_checks(raw.get("checks"))
    assert config.header_secrets == tuple(dict.fromkeys(raw["header_secrets"]))
    assert config.secrets_max_age_seconds == raw["secrets_max_age_seconds"]
    assert config.notify_topic_arn == TOPIC and config.token_key_secret == TOKEN_KEY_ARN


@pytest.mark.parametrize(("raw", "path", "message"), [
    ({"header_secrets": ["ok", "arn:aws:secretsmanager:eu-west-1:1:secret:x"]}, f"{KEY}.header_secrets.1",
     "give the name, not the ARN"),
    ({"header_secrets": ["has space"]}, f"{KEY}.header_secrets.0", "is not a Secrets Manager secret name"),
    ({"secrets_max_age_seconds": 90_000}, f"{KEY}.secrets_max_age_seconds", "less than or equal to 86400"),
    ({"codedeploy_applications": ["shop", "bad app"]}, f"{KEY}.codedeploy_applications.1",
     "is not a CodeDeploy application name"),
    ({"checks": {"checks": [{"name": "a", "url": "nope"}]}}, f"{KEY}.checks",
     "checks[0] (a).url: required, an http:// or https:// URL with a host (got 'nope')"),
    ({"checks": {"alarms": ["a"], "stabilize_seconds": 30}}, f"{KEY}.checks", "stabilize_seconds is only for "
     "CodePipeline"),
    ({"example_user_parameters": {"alarms": ["a"], "attempts": 0}}, f"{KEY}.example_user_parameters",
     "attempts: must be a whole number from 1 to 10 (got 0)"),
])
def test_invalid_settings_name_the_key_path(raw: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"automations": {"post_deploy_checks": raw}})
    line = next(line for line in str(info.value).splitlines() if line.strip().startswith(path + ":"))
    assert message in line


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=20).filter(lambda text: any(c not in string.ascii_letters + string.digits
                                                                   + "/_+=.@-" for c in text)))
def test_any_bad_secret_name_fails_at_its_index(name: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"automations": {"post_deploy_checks": {"header_secrets": ["fine", name]}}})
    assert f"{KEY}.header_secrets.1:" in str(info.value)


FULL_ENV = {"CHECKS": "", "HEADER_SECRETS": "", "SECRETS_MAX_AGE_SECONDS": "300", "NOTIFY_TOPIC_ARN": TOPIC,
            "TOKEN_KEY_SECRET_ARN": TOKEN_KEY_ARN}


@pytest.mark.parametrize("missing", sorted(FULL_ENV))
def test_every_variable_is_required(missing: str) -> None:
    env = {name: value for name, value in FULL_ENV.items() if name != missing}
    with pytest.raises(ConfigError, match=f"environment variable {missing} is required"):
        Config.from_env(env)


def test_empty_checks_and_secrets_mean_none() -> None:
    config = Config.from_env(FULL_ENV)
    assert config.hook_checks is None and config.header_secrets == ()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CHECKS", "{not json", "CHECKS is not valid JSON"),
    ("HEADER_SECRETS", "a,arn:aws:secretsmanager:x", "HEADER_SECRETS: 'arn:aws:secretsmanager:x' is not"),
    ("SECRETS_MAX_AGE_SECONDS", "soon", "SECRETS_MAX_AGE_SECONDS='soon' is not a whole number"),
])
def test_bad_variables_fail_naming_them(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config.from_env(FULL_ENV | {name: value})
