"""context.project.organization: defaults, each bad value named by its key path, and the function environment
reading back through the function's own parser (shared.targets.TargetSpec.from_env)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.targets import TargetSpec
from stacks.settings import SettingsError, load_settings

OU = "ou-ab12-cd34ef56"
ROOT_ID = "r-ab12"


def org(**values: object) -> dict:
    return {"project": {"organization": values}}


def test_defaults_keep_every_automation_in_its_own_account() -> None:
    settings_ = load_settings({}).organization
    assert settings_.enabled is False
    assert settings_.max_concurrency == 10
    assert settings_.role_base("opsauto") == "opsauto-member"
    assert settings_.role_name("opsauto", "ec2_scheduler") == "opsauto-member-ec2-scheduler"
    assert settings_.function_environment("opsauto", "ec2_scheduler") == {}
    assert settings_.function_environment("opsauto", "ec2_scheduler", ["eu-west-1"]) == {"REGIONS": "eu-west-1"}


def test_member_role_name_follows_the_prefix() -> None:
    project = load_settings({"project": {"prefix": "acme", "organization": {"enabled": True, "accounts": [
        "111122223333"]}}})
    env = project.organization.function_environment(project.prefix, "sg_remediation")
    assert env == {"TARGET_ACCOUNTS": "111122223333", "MEMBER_ROLE_NAME": "acme-member-sg-remediation"}


def test_ous_and_accounts_together() -> None:
    project = load_settings(org(enabled=True, organizational_units=[OU, ROOT_ID], accounts=["111122223333"],
                                regions=["eu-west-1", "us-east-1"], member_role_name="ops-spoke"))
    env = project.organization.function_environment(project.prefix, "key_rotation")
    assert env == {
        "TARGET_ACCOUNTS": "organization,111122223333",
        "TARGET_OUS": f"{OU},{ROOT_ID}",
        "MEMBER_ROLE_NAME": "ops-spoke-key-rotation",
        "REGIONS": "eu-west-1,us-east-1",
    }
    # The automation's own regions win over the organization's.
    assert project.organization.function_environment(project.prefix, "key_rotation", ["ap-south-1"])[
        "REGIONS"] == "ap-south-1"


@pytest.mark.parametrize(
    ("values", "path", "fragment"),
    [
        ({"organizational_units": ["ou-bad"]}, "organization.organizational_units", "give an OU id"),
        ({"organizational_units": [OU, OU]}, "organization.organizational_units", "listed more than once"),
        ({"accounts": ["12345"]}, "organization.accounts", "an account id is 12 digits"),
        ({"regions": ["Europe"]}, "organization.regions", "is not an AWS region name"),
        ({"member_role_name": "has space"}, "organization.member_role_name", "not an IAM role name"),
        ({"member_role_name": "x" * 50}, "organization.member_role_name", "too long"),
        ({"max_concurrency": 1}, "organization.max_concurrency", "greater than or equal to 2"),
        ({"max_concurrency": 1001}, "organization.max_concurrency", "less than or equal to 1000"),
        ({"enabled": True}, "organization", "list organizational_units and/or accounts"),
        ({"ous": [OU]}, "organization.ous", "unknown setting"),
    ],
)
def test_bad_values_name_the_key(values: dict, path: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(org(**values))
    message = str(error.value)
    assert f"  {path}:" in message
    assert fragment in message


ous = st.lists(st.from_regex(r"ou-[0-9a-z]{4}-[a-z0-9]{8}", fullmatch=True), max_size=3, unique=True)
accounts = st.lists(st.from_regex(r"[0-9]{12}", fullmatch=True), max_size=3, unique=True)
regions = st.lists(st.sampled_from(["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"]), max_size=3,
                   unique=True)


@settings(max_examples=60, deadline=None)
@given(ous=ous, accounts=accounts, regions=regions, role=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
       automation=st.sampled_from(["ec2_scheduler", "sg_remediation", "key_rotation"]))
def test_round_trip_to_the_function(ous: list[str], accounts: list[str], regions: list[str], role: str,
                                    automation: str) -> None:
    enabled = bool(ous or accounts)
    project = load_settings(org(enabled=enabled, organizational_units=ous, accounts=accounts, regions=regions,
                                member_role_name=role))
    env = project.organization.function_environment(project.prefix, automation)
    spec = TargetSpec.from_env({"AWS_REGION": "eu-north-1", **env})
    if not enabled:  # the organization's regions apply only when it is enabled
        assert spec.local_only
        assert spec.regions == ("eu-north-1",)
        return
    assert spec.regions == tuple(regions or ["eu-north-1"])
    assert not spec.local_only
    assert spec.accounts == tuple(accounts)
    assert spec.parents == tuple(ous)
    assert spec.role_name == f"{role}-{automation.replace('_', '-')}"
