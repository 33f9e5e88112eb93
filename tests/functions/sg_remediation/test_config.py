"""The settings contract: cdk.json settings -> function_environment() -> Config.from_env, one parser per setting."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sg_remediation.config import OWN_REGION, Config
from sg_remediation.policy import World, parse_allowed_ports, parse_exempt_tag
from shared.config import ConfigError
from stacks.settings import SettingsError, load_settings
from stacks.settings.sg_remediation import SgRemediationSettings

TOPIC = "arn:aws:sns:eu-central-1:123456789012:opsauto-ops"
FUNCTION_REGION = "eu-central-1"

ports = st.integers(0, 65535)
icmp_numbers = st.integers(0, 255)
port_items = st.one_of(
    ports.map(str),
    st.tuples(ports, ports).map(lambda pair: f"{min(pair)}-{max(pair)}"),
    st.tuples(st.sampled_from(["tcp", "udp", "UDP"]), ports).map(lambda pair: f"{pair[0]}:{pair[1]}"),
    st.sampled_from(["icmp", "icmpv6"]),
    st.tuples(st.sampled_from(["icmp", "icmpv6"]), icmp_numbers).map(lambda pair: f"{pair[0]}:{pair[1]}"),
    st.tuples(st.sampled_from(["icmp", "icmpv6"]), icmp_numbers, icmp_numbers).map(
        lambda t: f"{t[0]}:{t[1]}:{t[2]}"),
)
allowed_texts = st.one_of(st.just("none"), st.lists(port_items, min_size=1, max_size=6).map(",".join))
tag_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_.:/+\-@]{0,40}", fullmatch=True).filter(
    lambda key: not key.lower().startswith("aws:"))
tag_values = st.from_regex(r"[A-Za-z0-9_.:/+\-@]{0,40}", fullmatch=True)
region_names = st.builds(lambda geo, area, n: f"{geo}-{area}-{n}", st.sampled_from(["us", "eu", "ap", "sa", "ca"]),
                         st.sampled_from(["east", "west", "central", "north", "south", "southeast"]),
                         st.integers(1, 9))
valid_settings = st.fixed_dictionaries({
    "mode": st.sampled_from(["enforce", "report"]),
    "allowed_public_ports": allowed_texts,
    "exempt_tag": st.builds(lambda k, v: f"{k}={v}", tag_keys, tag_values),
    "regions": st.lists(region_names, unique=True, max_size=4),
    "max_changes": st.integers(1, 1000),
    "max_prefix_v4": st.integers(0, 8),
    "max_prefix_v6": st.integers(0, 32),
    "egress": st.sampled_from(["off", "report", "enforce"]),
})


def environment(model: SgRemediationSettings) -> dict[str, str]:
    """What the function gets: the model's environment, plus what the stack and Lambda add themselves."""
    return {**model.function_environment(), "NOTIFY_TOPIC_ARN": TOPIC, "AWS_REGION": FUNCTION_REGION}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=valid_settings)
def test_any_valid_settings_reach_the_function_unchanged(raw: dict[str, Any]) -> None:
    model = load_settings({"automations": {"sg_remediation": raw}}).automations.sg_remediation
    config = Config.from_env(environment(model))
    assert config.mode == raw["mode"]
    assert config.allowed == parse_allowed_ports(raw["allowed_public_ports"])
    assert config.exempt == parse_exempt_tag(raw["exempt_tag"])
    assert config.regions == (tuple(raw["regions"]) or (FUNCTION_REGION,))
    assert config.max_changes == raw["max_changes"]
    assert config.world == World(raw["max_prefix_v4"], raw["max_prefix_v6"])
    assert config.egress == raw["egress"]
    assert config.topic_arn == TOPIC


def test_every_variable_is_required() -> None:
    env = environment(SgRemediationSettings())
    assert env["REGIONS"] == OWN_REGION
    Config.from_env(env)
    for name in ("MODE", "ALLOWED_PUBLIC_PORTS", "EXEMPT_TAG", "MAX_PREFIX_V4", "MAX_PREFIX_V6", "EGRESS", "REGIONS",
                 "MAX_CHANGES", "NOTIFY_TOPIC_ARN"):
        missing = {key: value for key, value in env.items() if key != name}
        with pytest.raises(ConfigError, match=name):
            Config.from_env(missing)


bad_ports = st.one_of(
    st.integers(65536, 999999).map(str),
    st.tuples(st.integers(1, 65535), st.integers(0, 65534)).filter(lambda p: p[0] > p[1]).map(
        lambda p: f"{p[0]}-{p[1]}"),
    st.sampled_from(["", " ", "ssh", "80,,443", "80-", "-1", "+5", "icmp:x", "tcp/22", "udp:", "icmp:256",
                     "icmpv6:1:1000", "sctp:9"]),
)


@settings(max_examples=60, deadline=None)
@given(text=bad_ports)
def test_bad_allowed_ports_fail_at_synth_with_the_key_path(text: str) -> None:
    with pytest.raises(SettingsError, match=re.escape("automations.sg_remediation.allowed_public_ports")):
        load_settings({"automations": {"sg_remediation": {"allowed_public_ports": text}}})


@pytest.mark.parametrize(("key", "value"), [
    ("exempt_tag", "NoEquals"),
    ("exempt_tag", "aws:cloudformation:stack-name=x"),
    ("exempt_tag", "=value"),
    ("regions", ["moon-1"]),
    ("regions", ["us-east-1", "us-east-1"]),
    ("max_changes", 0),
    ("max_changes", 1001),
    ("max_prefix_v4", 9),
    ("max_prefix_v6", 33),
    ("max_prefix_v4", -1),
    ("egress", "block"),
    ("mode", "dry-run"),
])
def test_bad_values_fail_at_synth_with_the_key_path(key: str, value: Any) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"automations.sg_remediation.{key}")):
        load_settings({"automations": {"sg_remediation": {key: value}}})


def test_the_function_rejects_what_the_settings_reject() -> None:
    env = environment(SgRemediationSettings())
    for name, value in (("ALLOWED_PUBLIC_PORTS", "80,http"), ("EXEMPT_TAG", "aws:x=y"), ("REGIONS", "moon-1"),
                        ("MAX_CHANGES", "0"), ("MODE", "dry-run"), ("MAX_PREFIX_V4", "9"),
                        ("MAX_PREFIX_V6", "x"), ("EGRESS", "block")):
        with pytest.raises(ConfigError, match=name):
            Config.from_env({**env, name: value})
