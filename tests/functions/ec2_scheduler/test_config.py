"""One settings contract: cdk.json settings -> function_environment() -> Config.from_env, the same values."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ec2_scheduler.config import Config
from ec2_scheduler.schedule import (
    DAY_NAMES,
    MONTH_NAMES,
    days_label,
    parse_day_spec,
    parse_monthdays,
    parse_months,
    parse_skip_entry,
)
from shared.config import ConfigError
from stacks.settings import SettingsError, load_settings
from stacks.settings.ec2_scheduler import Ec2SchedulerSettings

TOPIC = "arn:aws:sns:eu-central-1:123456789012:opsauto-ops"
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]

hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
nth = st.tuples(st.sampled_from(DAY_NAMES), st.sampled_from(["1", "2", "3", "4", "5", "L"])).map("#".join)
days = st.one_of(
    st.just("*"),
    st.sets(st.integers(0, 6), min_size=1).map(days_label),
    st.tuples(st.sampled_from(DAY_NAMES), st.sampled_from(DAY_NAMES)).map(lambda p: f"{p[0]}-{p[1]}"),
    st.lists(nth, min_size=1, max_size=2).map(",".join),
    st.tuples(st.sets(st.integers(0, 6), min_size=1).map(days_label), nth).map(",".join),
)
monthdays = st.one_of(st.just("L"), st.integers(1, 31).map(str),
                      st.tuples(st.integers(1, 15), st.integers(15, 31)).map(lambda p: f"{p[0]}-{p[1]}"),
                      st.lists(st.integers(1, 28), min_size=1, max_size=3).map(lambda d: ",".join(map(str, d))))
months = st.one_of(st.sampled_from(MONTH_NAMES),
                   st.tuples(st.sampled_from(MONTH_NAMES), st.sampled_from(MONTH_NAMES)).map("-".join))
skip_entries = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.tuples(st.dates(max_value=date(9000, 1, 1)), st.integers(0, 400)).map(
        lambda p: f"{p[0].isoformat()}..{(p[0] + timedelta(days=p[1])).isoformat()}"),
    st.dates(min_value=date(2028, 1, 1), max_value=date(2028, 12, 31))
    .map(lambda d: f"*-{d:%m-%d}"),
)
calendars_ = st.sampled_from(["s3://ops-calendars/holidays.ics", "s3://ops.cal/de/2026.ics", "ssm:release-freeze"])


@st.composite
def periods(draw: st.DrawFn) -> dict[str, str]:
    period = {"days": draw(days)} if draw(st.booleans()) else {}
    for key, values in (("monthdays", monthdays), ("months", months)):
        if draw(st.integers(0, 3)) == 0:
            period[key] = draw(values)
    start, stop = draw(st.one_of(st.none(), hhmm)), draw(st.one_of(st.none(), hhmm))
    if (start is None and stop is None) or start == stop:
        start, stop = "08:00", "18:00"
    if start is not None:
        period["start"] = start
    if stop is not None:
        period["stop"] = stop
    return period


def _with_retain_running(raw: dict[str, Any]) -> dict[str, Any]:
    """retain_running on some of the schedules that are not enforced (the two contradict)."""
    if raw.get("maintenance_window") and not raw.get("enforced"):
        return {**raw, "retain_running": True}
    return raw


schedule = st.fixed_dictionaries({
    "timezone": st.sampled_from(ZONES),
    "periods": st.lists(periods(), min_size=1, max_size=3),
}, optional={
    "skip_dates": st.lists(skip_entries, max_size=3), "calendar": calendars_,
    "enforced": st.booleans(), "stop_new_instances": st.booleans(), "hibernate": st.booleans(),
    "maintenance_window": st.booleans(),
}).map(_with_retain_running)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).filter(
    lambda n: n[0].isalnum())
raw_settings = st.fixed_dictionaries({
    "schedules": st.dictionaries(names, schedule, min_size=1, max_size=3),
    "tag_key": st.sampled_from(["Schedule", "ops:schedule", "Power Schedule"]),
    "mode": st.sampled_from(["enforce", "report"]),
    "regions": st.lists(st.sampled_from(["eu-central-1", "us-east-1", "ap-south-1"]), unique=True, max_size=3),
    "max_changes": st.integers(0, 10_000),
    "include_rds": st.booleans(),
    "include_asg": st.booleans(),
    "schedules_parameter": st.one_of(st.none(), st.sampled_from(["/opsauto/schedules", "schedules", "a/b.c-d_e"])),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_settings)
def test_settings_environment_config_round_trip(raw: dict[str, Any]) -> None:
    model = Ec2SchedulerSettings(**raw)
    env = {**model.function_environment(), "NOTIFY_TOPIC_ARN": TOPIC, "AWS_REGION": "eu-west-3"}
    config = Config.from_env(env)
    assert config.bad_schedules == {}
    assert config.tag_key == raw["tag_key"] and config.mode == raw["mode"]
    assert config.regions == (tuple(raw["regions"]) or ("eu-west-3",))
    assert config.max_changes == raw["max_changes"] and config.include_rds == raw["include_rds"]
    assert config.include_asg == raw["include_asg"]
    assert config.schedules_parameter == (raw["schedules_parameter"] or "")
    assert config.topic_arn == TOPIC
    assert set(config.schedules) == set(raw["schedules"])
    for name, given_schedule in raw["schedules"].items():
        parsed = config.schedules[name]
        assert parsed.timezone.key == given_schedule["timezone"]
        for period, given_period in zip(parsed.periods, given_schedule["periods"], strict=True):
            default = "*" if "monthdays" in given_period else "mon-fri"
            assert (period.days, period.nth) == parse_day_spec(given_period.get("days", default))
            assert period.monthdays == (parse_monthdays(given_period["monthdays"]) if "monthdays" in given_period
                                        else None)
            assert period.months == (parse_months(given_period["months"]) if "months" in given_period else None)
        assert [(p.start and f"{p.start:%H:%M}", p.stop and f"{p.stop:%H:%M}") for p in parsed.periods] == [
            (p.get("start"), p.get("stop")) for p in given_schedule["periods"]]
        entries = [parse_skip_entry(e) for e in given_schedule.get("skip_dates", [])]
        assert parsed.skip_dates == {e for e in entries if not isinstance(e, tuple)}
        assert set(parsed.skip_ranges) == {e for e in entries if isinstance(e, tuple) and not isinstance(e[0], int)}
        assert parsed.skip_yearly == {e for e in entries if isinstance(e, tuple) and isinstance(e[0], int)}
        assert parsed.calendar == given_schedule.get("calendar")
        for flag, default in (("enforced", False), ("stop_new_instances", True), ("hibernate", False),
                              ("retain_running", False), ("maintenance_window", False)):
            assert getattr(parsed, flag) == given_schedule.get(flag, default)


def test_every_variable_is_required() -> None:
    env = {**Ec2SchedulerSettings().function_environment(), "NOTIFY_TOPIC_ARN": TOPIC}
    assert Config.from_env({**env, "AWS_REGION": "eu-west-3"}).regions == ("eu-west-3",)
    for name in env:
        missing = {k: v for k, v in env.items() if k != name} | {"AWS_REGION": "eu-west-3"}
        with pytest.raises(ConfigError, match=name):
            Config.from_env(missing)


@pytest.mark.parametrize(("settings_", "path"), [
    ({"schedules": {"office": {"periods": [{"days": "mon-fry", "start": "08:00"}]}}},
     "automations.ec2_scheduler.schedules.office.periods.0.days"),
    ({"schedules": {"office": {"periods": [{"days": "mon", "start": "08:00", "stop": "08:00"}]}}},
     "automations.ec2_scheduler.schedules.office.periods.0"),
    ({"schedules": {"office": {"timezone": "Mars/Olympus", "periods": [{"start": "08:00"}]}}},
     "automations.ec2_scheduler.schedules.office.timezone"),
    ({"schedules": {"office": {"periods": [{"start": "08:00"}], "skip_dates": ["2026-02-30"]}}},
     "automations.ec2_scheduler.schedules.office.skip_dates"),
    ({"schedules": {"office": {"periods": [{"days": "mon#0", "start": "08:00"}]}}},
     "automations.ec2_scheduler.schedules.office.periods.0.days"),
    ({"schedules": {"office": {"periods": [{"monthdays": "L-1", "start": "08:00"}]}}},
     "automations.ec2_scheduler.schedules.office.periods.0.monthdays"),
    ({"schedules": {"office": {"periods": [{"months": "sept", "start": "08:00"}]}}},
     "automations.ec2_scheduler.schedules.office.periods.0.months"),
    ({"schedules": {"office": {"periods": [{"start": "08:00"}], "skip_dates": ["*-13-01"]}}},
     "automations.ec2_scheduler.schedules.office.skip_dates"),
    ({"schedules": {"office": {"periods": [{"start": "08:00"}], "calendar": "s3://x"}}},
     "automations.ec2_scheduler.schedules.office.calendar"),
    ({"schedules_parameter": "has space"}, "automations.ec2_scheduler.schedules_parameter"),
    ({"tag_key": "aws:x"}, "automations.ec2_scheduler.tag_key"),
    ({"regions": ["eu-central-1", "eu-central-1"]}, "automations.ec2_scheduler.regions"),
    ({"regions": ["Frankfurt"]}, "automations.ec2_scheduler.regions"),
    ({"max_changes": -1}, "automations.ec2_scheduler.max_changes"),
])
def test_invalid_settings_name_the_key_path(settings_: dict[str, Any], path: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"automations": {"ec2_scheduler": settings_}})
    assert f"{path}:" in str(info.value)


@settings(max_examples=30, deadline=None)
@given(st.fixed_dictionaries({
    "enabled": st.just(True),
    "organizational_units": st.lists(st.sampled_from(["ou-ab12-cd34ef56", "ou-ab12-77aa88bb", "r-ab12"]),
                                     unique=True, max_size=2),
    "accounts": st.lists(st.sampled_from(["111122223333", "444455556666"]), unique=True, max_size=2),
    "regions": st.lists(st.sampled_from(["eu-west-1", "us-east-1"]), unique=True, max_size=2),
}).filter(lambda org: org["organizational_units"] or org["accounts"]),
    st.lists(st.sampled_from(["eu-central-1", "ap-south-1"]), unique=True, max_size=2))
def test_organization_environment_round_trip(org: dict[str, Any], own_regions: list[str]) -> None:
    from stacks.settings.organization import OrganizationSettings

    model = Ec2SchedulerSettings(regions=own_regions)
    env = {**model.function_environment(),
           **OrganizationSettings(**org).function_environment("opsauto", "ec2_scheduler", own_regions),
           "NOTIFY_TOPIC_ARN": TOPIC, "AWS_REGION": "eu-west-3"}
    config = Config.from_env(env)
    assert config.regions == (tuple(own_regions) or tuple(org["regions"]) or ("eu-west-3",))
    assert config.targets.regions == config.regions and not config.targets.local_only
    assert config.targets.accounts == tuple(org["accounts"])
    assert config.targets.parents == tuple(org["organizational_units"])
    assert config.targets.role_name == "opsauto-member-ec2-scheduler"
    assert config.fanout is None  # the work queue's variables come from the stack's Fanout construct


def test_without_organization_the_function_works_in_its_own_account() -> None:
    config = Config.from_env({**Ec2SchedulerSettings().function_environment(), "NOTIFY_TOPIC_ARN": TOPIC,
                              "AWS_REGION": "eu-west-3"})
    assert config.targets.local_only and config.targets.regions == ("eu-west-3",) and config.fanout is None


def test_a_schedule_name_that_cannot_be_a_tag_value_is_malformed_not_fatal() -> None:
    """The function applies the same name rule as synth: such a schedule is reported, the others still run."""
    from ec2_scheduler.config import parse_schedules_setting

    period = [{"days": "*", "start": "08:00", "stop": "18:00"}]
    raw = {"office": {"timezone": "UTC", "periods": period}, "-bad*name": {"timezone": "UTC", "periods": period}}
    schedules, bad = parse_schedules_setting(raw)
    assert list(schedules) == ["office"]
    assert "must be a tag value" in bad["-bad*name"]
