"""Where a function works: its own account, or accounts and regions of an AWS Organization.

The function environment (written by ``context.project.organization`` in cdk.json):

- ``TARGET_ACCOUNTS``: comma list of 12-digit account ids, or ``organization`` (the ACTIVE accounts under
  ``TARGET_OUS``, listed with the Organizations API at run time, so accounts added to an OU later are
  covered without a redeploy); both may be given together (``organization,111122223333``). Unset: the
  function's own account only.
- ``TARGET_OUS``: comma list of OU ids (``ou-...``) or the root id (``r-...``), walked recursively; required
  with ``organization``.
- ``MEMBER_ROLE_NAME``: the role assumed in each target account (``arn:<partition>:iam::<id>:role/<name>``);
  required with ``TARGET_ACCOUNTS``. The function's own account is used without assuming a role.
- ``REGIONS``: comma list; default the function's own region.

This module is pure (no boto3): the parsers the settings models call too, and the target model.
``shared.targets_aws`` lists accounts and assumes the member roles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared import names
from shared.config import ConfigError, env_list, env_regions
from shared.config import parsed as _env_parsed
from shared.names import REGION_PATTERN

ORGANIZATION = "organization"
ACCOUNT_RE = re.compile(r"^\d{12}$")
PARENT_RE = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
REGION_RE = re.compile(REGION_PATTERN)
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
# Longest suffix a member role gets after the base name ("-post-deploy-checks").
ROLE_SUFFIX_MAX = 19


def _unique(kind: str, values: Iterable[str]) -> tuple[str, ...]:
    items = [value.strip() for value in values]
    repeated = sorted({value for value in items if items.count(value) > 1})
    if repeated:
        raise ValueError(f"{kind} listed more than once: {', '.join(repeated)}")
    return tuple(items)


def parse_account_ids(values: Iterable[str]) -> tuple[str, ...]:
    """12-digit AWS account ids, each once."""
    items = _unique("account", values)
    bad = [value for value in items if not ACCOUNT_RE.fullmatch(value)]
    if bad:
        raise ValueError(f"{', '.join(repr(v) for v in bad)}: an account id is 12 digits, e.g. '111122223333'")
    return items


def parse_parent_ids(values: Iterable[str]) -> tuple[str, ...]:
    """Organizational unit ids (``ou-ab12-cd34ef56``) or the root id (``r-ab12``), each once."""
    items = _unique("organizational unit", values)
    bad = [value for value in items if not PARENT_RE.fullmatch(value)]
    if bad:
        raise ValueError(
            f"{', '.join(repr(v) for v in bad)}: give an OU id ('ou-ab12-cd34ef56') or the root id ('r-ab12')"
        )
    return items


def parse_regions(values: Iterable[str]) -> tuple[str, ...]:
    """Region names (``eu-west-1``), each once (``shared.names``, as every automation's ``regions``)."""
    return tuple(names.parse_regions([value.strip() for value in values]))


def parse_role_name(value: str, *, suffix_room: int = 0) -> str:
    """An IAM role name (1-64 of letters, digits and ``+=,.@_-``), leaving ``suffix_room`` characters free."""
    name = value.strip()
    if not ROLE_NAME_RE.fullmatch(name):
        raise ValueError(f"{value!r} is not an IAM role name (1-64 letters, digits and +=,.@_-)")
    if len(name) + suffix_room > 64:
        raise ValueError(f"{value!r} is too long: at most {64 - suffix_room} characters (a suffix per automation "
                         "is added)")
    return name


def member_role_name(base: str, automation: str) -> str:
    """The member role of one automation: ``<base>-<automation with dashes>``."""
    return f"{base}-{automation.replace('_', '-')}"


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


@dataclass(frozen=True, order=True)
class Target:
    """One (account, region) the function works in."""

    account: str
    region: str

    @property
    def key(self) -> str:
        return f"{self.account}:{self.region}"

    @classmethod
    def from_key(cls, key: str) -> Target:
        account, _, region = key.partition(":")
        if not ACCOUNT_RE.fullmatch(account) or not REGION_RE.fullmatch(region):
            raise ValueError(f"{key!r} is not '<account id>:<region>'")
        return cls(account, region)


@dataclass(frozen=True)
class TargetSpec:
    """What the environment names: explicit accounts, OUs to list, the member role and the regions."""

    regions: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()  # OU / root ids listed with Organizations (TARGET_ACCOUNTS=organization)
    role_name: str | None = None
    local_only: bool = True  # TARGET_ACCOUNTS unset: the function's own account, as before

    @property
    def uses_organization(self) -> bool:
        return bool(self.parents)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TargetSpec:
        """Read ``TARGET_ACCOUNTS`` / ``TARGET_OUS`` / ``MEMBER_ROLE_NAME`` / ``REGIONS``; ConfigError names the
        variable."""
        regions = _env_parsed("REGIONS", parse_regions, env_regions(env=env))
        items = env_list("TARGET_ACCOUNTS", [], env=env)
        if not items:
            if env_list("TARGET_OUS", [], env=env):
                raise ConfigError("TARGET_OUS is set but TARGET_ACCOUNTS is not: set TARGET_ACCOUNTS=organization")
            return cls(regions=regions)
        wants_org = ORGANIZATION in [item.lower() for item in items]
        accounts = _env_parsed("TARGET_ACCOUNTS", parse_account_ids,
                               [item for item in items if item.lower() != ORGANIZATION])
        parents: tuple[str, ...] = ()
        if wants_org:
            parents = _env_parsed("TARGET_OUS", parse_parent_ids, env_list("TARGET_OUS", [], env=env))
            if not parents:
                raise ConfigError("environment variable TARGET_OUS is required with TARGET_ACCOUNTS=organization")
        role = env_list("MEMBER_ROLE_NAME", [], env=env)
        if len(role) != 1:
            raise ConfigError("environment variable MEMBER_ROLE_NAME (one role name) is required with TARGET_ACCOUNTS")
        role_name = _env_parsed("MEMBER_ROLE_NAME", parse_role_name, role[0])
        return cls(regions=regions, accounts=accounts, parents=parents, role_name=role_name, local_only=False)


@dataclass(frozen=True)
class Account:
    """An account of the Organization as ``ListAccountsForParent`` returns it."""

    id: str
    name: str = ""
    status: str = "ACTIVE"  # ACTIVE | SUSPENDED | PENDING_CLOSURE

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


@dataclass
class TargetList:
    """The (account, region) targets of one run, and the accounts left out (not ACTIVE) with their status."""

    targets: list[Target] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # account id -> status ("SUSPENDED", ...)
    names: dict[str, str] = field(default_factory=dict)  # account id -> name, where Organizations told

    @property
    def accounts(self) -> list[str]:
        return list(dict.fromkeys(target.account for target in self.targets))


def plan_targets(spec: TargetSpec, own_account: str, listed: Iterable[Account] = ()) -> TargetList:
    """Targets from the spec: the explicit accounts plus the ACTIVE listed ones, times every region.

    ``listed`` are the accounts found under ``spec.parents``; accounts that are not ACTIVE are skipped and
    named in ``skipped``. With ``spec.local_only`` the own account is the only one.
    """
    result = TargetList()
    accounts: list[str] = [own_account] if spec.local_only else list(spec.accounts)
    for account in listed:
        if account.name:
            result.names[account.id] = account.name
        if not account.active:
            result.skipped[account.id] = account.status
        elif account.id not in accounts:
            accounts.append(account.id)
    accounts = [account for account in accounts if account not in result.skipped]
    result.targets = [Target(account, region) for account in accounts for region in spec.regions]
    return result


def assumed_role(spec: TargetSpec, account: str, own_account: str) -> str | None:
    """The role name to assume in ``account``: None for the function's own account (its own credentials)."""
    if account == own_account or spec.role_name is None:
        return None
    return spec.role_name


def refusal(spec: TargetSpec, target_list: TargetList, target: Target, own_account: str) -> str | None:
    """Why an event from ``target`` must not be acted on (None: it is a target).

    Event-driven automations call this before assuming the member role of the event's account.
    """
    if target.region not in spec.regions:
        return f"region {target.region} is not one of REGIONS ({', '.join(spec.regions)})"
    if spec.local_only:
        return None if target.account == own_account else (
            f"account {target.account} is not this function's account and TARGET_ACCOUNTS is not set")
    if target.account in target_list.skipped:
        return f"account {target.account} is {target_list.skipped[target.account]} in the Organization"
    if any(t.account == target.account for t in target_list.targets):
        return None
    return f"account {target.account} is neither in TARGET_ACCOUNTS nor ACTIVE under TARGET_OUS"
