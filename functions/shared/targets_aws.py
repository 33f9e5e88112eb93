"""The adapter of ``shared.targets``: lists Organization accounts and gives clients in each target.

- ``Organization``: the ACTIVE and other accounts under OUs / the root, walked recursively, every list call
  paginated; account names for alerts (``AccountNames``, cached per process).
- ``Sessions``: boto3 clients per (account, region). The function's own account uses its own credentials;
  any other assumes ``arn:<partition>:iam::<id>:role/<MEMBER_ROLE_NAME>`` (credentials cached until five
  minutes before they expire). A refused AssumeRole (the member stack is not deployed there, or its trust does
  not name this function's role) is a ``MemberRoleError``: permanent for that target, never for the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from shared.clients import RETRY_CONFIG, client
from shared.errors import error_code, is_transient
from shared.targets import (
    Account,
    Target,
    TargetList,
    TargetSpec,
    assumed_role,
    plan_targets,
    refusal,
    role_arn,
)

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_sts import STSClient

# Credentials are refreshed this long before they expire (a run never holds them near the end).
REFRESH_SECONDS = 300
SESSION_SECONDS = 3600
# AssumeRole refusals that no retry fixes: the role is missing, or its trust policy does not name us.
REFUSED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "RegionDisabledException",
                           "InvalidClientTokenId", "ExpiredTokenException"})
# Organizations answers for accounts it cannot describe to us.
NAME_UNKNOWN_CODES = frozenset({"AccessDeniedException", "AccessDenied", "AccountNotFoundException",
                                "AWSOrganizationsNotInUseException"})


class MemberRoleError(Exception):
    """The member role of one account could not be assumed. Permanent: reported, not retried."""

    def __init__(self, account: str, arn: str, code: str, message: str) -> None:
        self.account = account
        self.role_arn = arn
        self.code = code
        super().__init__(
            f"account {account}: cannot assume {arn} ({code}: {message}). Is the member stack deployed in this "
            "account (a StackSet instance of <prefix>-member), and does its trust name this function's role?"
        )


class Organization:
    """Accounts of the Organization, through the Organizations API (management or delegated admin account)."""

    def __init__(self, organizations: OrganizationsClient | None = None) -> None:
        self._client: OrganizationsClient = organizations or client("organizations")
        self.calls = 0

    def accounts_under(self, parents: Iterable[str]) -> list[Account]:
        """Every account under ``parents`` (OU or root ids), recursively, each once, with its status."""
        found: dict[str, Account] = {}
        pending = list(parents)
        seen: set[str] = set()
        while pending:
            parent = pending.pop(0)
            if parent in seen:
                continue
            seen.add(parent)
            for page in self._client.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                self.calls += 1
                for item in page.get("Accounts", []):
                    status = str(item.get("State") or item.get("Status") or "ACTIVE")
                    found.setdefault(item["Id"], Account(item["Id"], item.get("Name", ""), status))
            units = self._client.get_paginator("list_organizational_units_for_parent")
            for unit_page in units.paginate(ParentId=parent):
                self.calls += 1
                pending.extend(unit["Id"] for unit in unit_page.get("OrganizationalUnits", []))
        return list(found.values())

    def account_name(self, account_id: str) -> str | None:
        """The account's name, or None when Organizations cannot tell (not in the org, no permission)."""
        try:
            self.calls += 1
            return str(self._client.describe_account(AccountId=account_id)["Account"].get("Name", "")) or None
        except ClientError as exc:
            if error_code(exc) in NAME_UNKNOWN_CODES:
                return None
            raise


class AccountNames:
    """Account id -> name for messages, cached per process (``ttl_seconds``); None where unknown."""

    def __init__(self, organization: Organization | None = None, ttl_seconds: float = 3600) -> None:
        self._organization = organization
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[str | None, float]] = {}

    def seed(self, names: dict[str, str]) -> None:
        """Names already known (e.g. from listing the OUs) skip the lookup."""
        now = time.monotonic()
        for account_id, name in names.items():
            self._cache[account_id] = (name, now)

    def name(self, account_id: str) -> str | None:
        cached = self._cache.get(account_id)
        if cached is not None and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        if self._organization is None:
            self._organization = Organization()
        name = self._organization.account_name(account_id)
        self._cache[account_id] = (name, time.monotonic())
        return name

    def label(self, account_id: str) -> str:
        """``"111122223333 (prod)"``, or the bare id when the name is unknown."""
        name = self.name(account_id)
        return f"{account_id} ({name})" if name else account_id


def resolve_targets(spec: TargetSpec, own_account: str, organization: Organization | None = None) -> TargetList:
    """The run's targets: explicit accounts plus the accounts under the OUs, listed now."""
    listed: list[Account] = []
    if spec.uses_organization:
        listed = (organization or Organization()).accounts_under(spec.parents)
    return plan_targets(spec, own_account, listed)


class CachedTargets:
    """The targets, listed at most every ``ttl_seconds`` (event-driven functions check each event's account).

    ``refusal(account, region)``: why an event from there must not be acted on, or None (``shared.targets``).
    An account not found in a listing older than a minute is looked up again once, so an account added to an
    OU is admitted without waiting for the cache to expire.
    """

    def __init__(self, spec: TargetSpec, own_account: str, organization: Organization | None = None,
                 ttl_seconds: float = 300) -> None:
        self.spec = spec
        self.own_account = own_account
        self._organization = organization
        self._ttl = ttl_seconds
        self._listed: TargetList | None = None
        self._at = 0.0

    def get(self, *, max_age: float | None = None) -> TargetList:
        age = time.monotonic() - self._at
        if self._listed is None or age >= (self._ttl if max_age is None else max_age):
            if self.spec.uses_organization and self._organization is None:
                self._organization = Organization()
            self._listed = resolve_targets(self.spec, self.own_account, self._organization)
            self._at = time.monotonic()
        return self._listed

    def refusal(self, account: str, region: str) -> str | None:
        target = Target(account, region)
        why = refusal(self.spec, self.get(), target, self.own_account)
        if why is not None and self.spec.uses_organization:
            why = refusal(self.spec, self.get(max_age=60), target, self.own_account)
        return why


def own_account_id(context: Any = None) -> str:
    """The function's account: from the Lambda context's function ARN, else STS GetCallerIdentity."""
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    parts = arn.split(":")
    if len(parts) > 4 and parts[4].isdigit():
        return parts[4]
    return str(client("sts").get_caller_identity()["Account"])


@dataclass
class _Held:
    credentials: dict[str, str]  # empty for the own account: the function's own credentials
    expires: float  # time.time() when the credentials expire (inf for the own account)


class Sessions:
    """Clients per target account; ``client(service, target)`` is what adapters take.

    Every client comes from one boto3 session, with the target's credentials passed to the client: the
    session's loader parses each service model once, however many accounts there are.
    """

    def __init__(self, spec: TargetSpec, own_account: str, session_name: str,
                 sts: STSClient | None = None) -> None:
        self.spec = spec
        self.own_account = own_account
        self.session_name = session_name[:64]
        self._sts: STSClient = sts or client("sts")
        self._base = boto3.session.Session()
        self._held: dict[str, _Held] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self.assumed = 0

    def partition(self, region: str) -> str:
        return self._base.get_partition_for_region(region)

    def _credentials(self, account: str, region: str) -> dict[str, str]:
        held = self._held.get(account)
        if held is not None and held.expires - time.time() > REFRESH_SECONDS:
            return held.credentials
        name = assumed_role(self.spec, account, self.own_account)
        held = _Held({}, float("inf")) if name is None else self._assume(
            account, role_arn(self.partition(region), account, name))
        self._held[account] = held
        for key in [key for key in self._clients if key[0] == account]:
            del self._clients[key]
        return held.credentials

    def _assume(self, account: str, arn: str) -> _Held:
        try:
            response = self._sts.assume_role(RoleArn=arn, RoleSessionName=self.session_name,
                                             DurationSeconds=SESSION_SECONDS)
        except ClientError as exc:
            if is_transient(exc) or error_code(exc) not in REFUSED_CODES:
                raise
            message = str(exc.response.get("Error", {}).get("Message", ""))
            raise MemberRoleError(account, arn, error_code(exc), message) from None
        self.assumed += 1
        credentials = response["Credentials"]
        return _Held({
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }, credentials["Expiration"].timestamp())

    def client(self, service: str, target: Target) -> Any:
        """A client for ``service`` in the target's account and region (adaptive retries, reused)."""
        credentials = self._credentials(target.account, target.region)
        key = (target.account, service, target.region)
        if key not in self._clients:
            self._clients[key] = self._base.client(  # type: ignore[call-overload]
                service, region_name=target.region, config=RETRY_CONFIG, **credentials)
        return self._clients[key]
