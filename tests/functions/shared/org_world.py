"""An AWS Organization on moto: OUs, member accounts with (or without) their member role, suspended accounts.

moto serves every account: a client made with credentials from ``sts.assume_role`` talks to the account of
the role's ARN. moto does not check that the role exists, so ``refuse_missing_roles(faults)`` adds the
check AWS makes: AssumeRole of a role that is not there fails with AccessDenied (a kit ``Fault``).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto.iam.models import iam_backends

from tests.lifetime.kit import Fault, FaultInjector

HUB = "123456789012"  # moto's default account: the hub the functions run in
ADMIN_ROLE = "OrganizationAccountAccessRole"  # what Organizations creates in every new account


class OrgWorld:
    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.orgs = boto3.client("organizations", region_name=region)
        self.org_id = self.orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        self.root = self.orgs.list_roots()["Roots"][0]["Id"]
        self.names: dict[str, str] = {}
        self._base = boto3.session.Session(region_name=region)  # one loader: each service model parsed once
        self._credentials: dict[str, dict[str, str]] = {}

    def ou(self, name: str, parent: str | None = None) -> str:
        unit = self.orgs.create_organizational_unit(ParentId=parent or self.root, Name=name)
        return str(unit["OrganizationalUnit"]["Id"])

    def account(self, name: str, ou: str | None = None, *, member_roles: tuple[str, ...] = ()) -> str:
        """A new account (moved into ``ou``) holding the given member roles."""
        status = self.orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        account_id = str(status["AccountId"])
        if ou is not None:
            self.orgs.move_account(AccountId=account_id, SourceParentId=self.root, DestinationParentId=ou)
        self.names[account_id] = name
        for role in member_roles:
            self.add_role(account_id, role)
        return account_id

    def standard(self, role: str) -> tuple[str, str, dict[str, str]]:
        """The organization tests' world: OU prod holds alpha and delta, OU dev holds beta and gamma; every
        account has ``role`` but gamma (the StackSet has not reached it). Returns (prod, dev, accounts by name);
        the tests suspend delta themselves, after putting what they need in it."""
        prod, dev = self.ou("prod"), self.ou("dev")
        accounts = {
            "alpha": self.account("alpha", prod, member_roles=(role,)),
            "beta": self.account("beta", dev, member_roles=(role,)),
            "gamma": self.account("gamma", dev),
            "delta": self.account("delta", prod, member_roles=(role,)),
        }
        return prod, dev, accounts

    def credentials(self, account: str) -> dict[str, str]:
        """Credentials in ``account`` as an administrator (Organizations' access role); none for the hub."""
        if account == HUB:
            return {}
        if account not in self._credentials:
            credentials = self._base.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName="setup")["Credentials"]
            self._credentials[account] = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"]}
        return self._credentials[account]

    def add_role(self, account: str, role: str) -> None:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}}]}
        self.client("iam", account, self.region).create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))

    def suspend(self, account: str) -> None:
        self.orgs.close_account(AccountId=account)

    def client(self, service: str, account: str, region: str) -> Any:
        return self._base.client(service, region_name=region, **self.credentials(account))  # type: ignore[call-overload]


def role_exists(role_arn: str) -> bool:
    """Whether moto's IAM of the ARN's account holds that role (the check AWS makes on AssumeRole)."""
    parts = role_arn.split(":")
    account, name = parts[4], parts[5].split("/")[-1]
    if name == ADMIN_ROLE:
        return True
    return any(role.name == name for role in iam_backends[account]["aws"].roles.values())


def refuse_missing_roles(faults: FaultInjector) -> Fault:
    """AssumeRole of a missing role fails as on AWS (only inside ``faults.active()``)."""
    return faults.add(Fault(
        "sts.AssumeRole", "AccessDenied", status=403,
        message="User: arn:aws:sts::123456789012:assumed-role/opsauto-fn/opsauto is not authorized to perform: "
                "sts:AssumeRole on resource",
        when=lambda params: not role_exists(str(params.get("RoleArn", ""))),
    ))
