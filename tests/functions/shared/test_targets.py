"""shared.targets + shared.targets_aws: the environment, the Organization walked on moto, member roles assumed.

The world: a hub (moto's default account) and an Organization with OUs prod and dev (dev holding a nested
sandbox OU); alpha in prod and beta in dev carry their member role, gamma in sandbox does not, delta in prod
is suspended. Two regions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from moto import mock_aws

from shared.config import ConfigError
from shared.targets import Account, Target, TargetSpec, plan_targets, refusal
from shared.targets_aws import (
    AccountNames,
    CachedTargets,
    MemberRoleError,
    Organization,
    Sessions,
    own_account_id,
    resolve_targets,
)
from tests.conftest import FakeContext
from tests.functions.shared.org_world import HUB, OrgWorld, refuse_missing_roles
from tests.lifetime.kit import FaultInjector

ROLE = "opsauto-member-ec2-scheduler"
REGIONS = ("us-east-1", "eu-west-1")


# --------------------------------------------------------------------------- the environment (pure)


def test_unset_means_the_own_account_only() -> None:
    spec = TargetSpec.from_env({"AWS_REGION": "eu-west-1"})
    assert spec.local_only and spec.regions == ("eu-west-1",)
    assert plan_targets(spec, HUB).targets == [Target(HUB, "eu-west-1")]


def test_explicit_accounts_and_the_organization_together() -> None:
    spec = TargetSpec.from_env({"TARGET_ACCOUNTS": "organization, 111122223333", "TARGET_OUS": "ou-ab12-cd34ef56",
                                "MEMBER_ROLE_NAME": ROLE, "REGIONS": "us-east-1,eu-west-1"})
    assert spec.accounts == ("111122223333",) and spec.parents == ("ou-ab12-cd34ef56",)
    listed = [Account("222233334444", "prod"), Account("111122223333", "dup"), Account("333344445555", "old",
                                                                                     "SUSPENDED")]
    planned = plan_targets(spec, HUB, listed)
    assert planned.accounts == ["111122223333", "222233334444"]
    assert len(planned.targets) == 4
    assert planned.skipped == {"333344445555": "SUSPENDED"}
    assert planned.names["222233334444"] == "prod"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"TARGET_ACCOUNTS": "organization", "MEMBER_ROLE_NAME": ROLE}, "TARGET_OUS is required"),
        ({"TARGET_ACCOUNTS": "111122223333"}, "MEMBER_ROLE_NAME"),
        ({"TARGET_ACCOUNTS": "1111", "MEMBER_ROLE_NAME": ROLE}, "TARGET_ACCOUNTS: '1111'"),
        ({"TARGET_ACCOUNTS": "organization", "TARGET_OUS": "ou-x", "MEMBER_ROLE_NAME": ROLE}, "TARGET_OUS: 'ou-x'"),
        ({"TARGET_OUS": "r-ab12"}, "set TARGET_ACCOUNTS=organization"),
        ({"REGIONS": "mars-1"}, "REGIONS: .mars-1. is not an AWS region name"),
        ({"TARGET_ACCOUNTS": "111122223333", "MEMBER_ROLE_NAME": "a b"}, "MEMBER_ROLE_NAME"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        TargetSpec.from_env({"AWS_REGION": "us-east-1", **env})


def test_events_from_accounts_that_are_not_targets_are_refused() -> None:
    spec = TargetSpec.from_env({"TARGET_ACCOUNTS": "111122223333", "MEMBER_ROLE_NAME": ROLE, "REGIONS": "us-east-1"})
    planned = plan_targets(spec, HUB)
    assert refusal(spec, planned, Target("111122223333", "us-east-1"), HUB) is None
    assert "not one of REGIONS" in str(refusal(spec, planned, Target("111122223333", "eu-west-1"), HUB))
    assert "neither in TARGET_ACCOUNTS" in str(refusal(spec, planned, Target("999988887777", "us-east-1"), HUB))
    local = TargetSpec.from_env({"AWS_REGION": "us-east-1"})
    assert refusal(local, plan_targets(local, HUB), Target(HUB, "us-east-1"), HUB) is None
    assert refusal(local, plan_targets(local, HUB), Target("111122223333", "us-east-1"), HUB) is not None


def test_own_account_from_the_lambda_context() -> None:
    assert own_account_id(FakeContext()) == "123456789012"


# --------------------------------------------------------------------------- the Organization on moto


@dataclass
class World:
    org: OrgWorld
    prod: str
    dev: str
    alpha: str
    beta: str
    gamma: str
    delta: str
    faults: FaultInjector

    def spec(self) -> TargetSpec:
        return TargetSpec.from_env({"TARGET_ACCOUNTS": "organization", "TARGET_OUS": f"{self.prod},{self.dev}",
                                    "MEMBER_ROLE_NAME": ROLE, "REGIONS": ",".join(REGIONS)})


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(), FaultInjector() as faults:
        org = OrgWorld()
        prod, dev = org.ou("prod"), org.ou("dev")
        sandbox = org.ou("sandbox", dev)
        alpha = org.account("alpha", prod, member_roles=(ROLE,))
        beta = org.account("beta", dev, member_roles=(ROLE,))
        gamma = org.account("gamma", sandbox)  # the member stack never reached it
        delta = org.account("delta", prod, member_roles=(ROLE,))
        org.suspend(delta)
        refuse_missing_roles(faults)
        yield World(org, prod, dev, alpha, beta, gamma, delta, faults)


def test_active_accounts_under_the_ous_recursively(world: World) -> None:
    planned = resolve_targets(world.spec(), HUB)
    assert sorted(planned.accounts) == sorted([world.alpha, world.beta, world.gamma])
    assert len(planned.targets) == 6
    assert {t.region for t in planned.targets} == set(REGIONS)
    assert planned.skipped == {world.delta: "SUSPENDED"}
    assert planned.names[world.alpha] == "alpha"


def test_listing_paginates(world: World) -> None:
    for index in range(25):
        world.org.account(f"extra{index}", world.prod)
    organization = Organization()
    accounts = organization.accounts_under([world.prod])
    assert len(accounts) == 27  # alpha, delta and the 25 extra
    assert world.faults.count("organizations.ListAccountsForParent") > 1  # more than one page


def test_clients_reach_each_target_and_the_hub_without_assuming(world: World) -> None:
    queue = world.org.client("sqs", world.alpha, "eu-west-1").create_queue(QueueName="only-in-alpha")["QueueUrl"]
    spec = TargetSpec.from_env({"TARGET_ACCOUNTS": f"organization,{HUB}", "TARGET_OUS": world.prod,
                                "MEMBER_ROLE_NAME": ROLE, "REGIONS": ",".join(REGIONS)})
    sessions = Sessions(spec, HUB, "opsauto-ec2-scheduler")
    with world.faults.active():
        found = {target: sessions.client("sqs", target).list_queues().get("QueueUrls", [])
                 for target in resolve_targets(spec, HUB).targets}
        whoami = {target.account: sessions.client("sts", target).get_caller_identity()["Account"]
                  for target in found}
    assert whoami == {world.alpha: world.alpha, HUB: HUB}
    assert found[Target(world.alpha, "eu-west-1")] == [queue]
    assert found[Target(world.alpha, "us-east-1")] == []
    assert found[Target(HUB, "eu-west-1")] == []
    assert sessions.assumed == 1  # alpha once, for both regions; the hub with its own credentials
    assumed = [c for c in world.faults.calls if c.operation == "AssumeRole" and ROLE in c.params["RoleArn"]]
    assert [c.params["RoleArn"] for c in assumed] == [f"arn:aws:iam::{world.alpha}:role/{ROLE}"]


def test_a_missing_member_role_fails_that_account_only(world: World) -> None:
    sessions = Sessions(world.spec(), HUB, "opsauto-ec2-scheduler")
    outcomes: dict[str, str] = {}
    with world.faults.active():
        for target in resolve_targets(world.spec(), HUB).targets:
            try:
                account = sessions.client("sts", target).get_caller_identity()["Account"]
                outcomes[target.key] = "ok" if account == target.account else f"wrong account {account}"
            except MemberRoleError as exc:
                outcomes[target.key] = str(exc)
    failed = {key: why for key, why in outcomes.items() if why != "ok"}
    assert set(failed) == {f"{world.gamma}:us-east-1", f"{world.gamma}:eu-west-1"}
    why = failed[f"{world.gamma}:us-east-1"]
    assert f"arn:aws:iam::{world.gamma}:role/{ROLE}" in why and "AccessDenied" in why and "member stack" in why
    assert sum(1 for v in outcomes.values() if v == "ok") == 4


def test_an_account_added_to_an_ou_between_two_runs_is_covered(world: World) -> None:
    first = resolve_targets(world.spec(), HUB)
    epsilon = world.org.account("epsilon", world.dev, member_roles=(ROLE,))
    second = resolve_targets(world.spec(), HUB)
    assert epsilon not in first.accounts
    assert epsilon in second.accounts
    assert set(second.accounts) - set(first.accounts) == {epsilon}


def test_account_names_are_looked_up_once(world: World) -> None:
    names = AccountNames()
    assert names.label(world.beta) == f"{world.beta} (beta)"
    assert names.label(world.beta) == f"{world.beta} (beta)"
    assert world.faults.count("organizations.DescribeAccount") == 1
    assert names.label("999988887777") == "999988887777"  # not in the Organization: the bare id
    names.seed({world.alpha: "alpha"})
    assert names.name(world.alpha) == "alpha"
    assert world.faults.count("organizations.DescribeAccount") == 2


def test_event_driven_functions_admit_only_targets_and_see_new_accounts(world: World) -> None:
    cached = CachedTargets(world.spec(), HUB)
    assert cached.refusal(world.alpha, "eu-west-1") is None
    assert "SUSPENDED" in str(cached.refusal(world.delta, "eu-west-1"))
    assert "not one of REGIONS" in str(cached.refusal(world.alpha, "ap-south-1"))
    outsider = world.org.account("outsider")  # in the Organization, not under the OUs
    assert "neither in TARGET_ACCOUNTS nor ACTIVE under TARGET_OUS" in str(cached.refusal(outsider, "us-east-1"))
    listings = world.faults.count("organizations.ListAccountsForParent")
    assert cached.refusal(world.beta, "us-east-1") is None
    assert world.faults.count("organizations.ListAccountsForParent") == listings  # served from the cache
