"""Run a function under its own synthesized role, with moto's IAM authorization on, and record its calls.

What moto evaluates (moto 5.2, ``moto.core.authorization`` and ``moto.iam.access_control``), once
``INITIAL_NO_AUTH_ACTION_COUNT`` is 0 (``moto.core.enable_iam_authentication``):

- the signature and the access key of every request (an assumed role's key must come with its session
  token), for every service moto serves;
- the **action** of every request (``<service>:<Operation>``; S3 by its IAM action names, e.g. HeadObject is
  ``s3:GetObject``) against the identity policies of the caller (inline and attached);
- the **resource** only for S3 (``arn:aws:s3:::bucket`` and ``…/key``), SQS (the queue's ARN), STS
  AssumeRole (the role's ARN) and IAM calls that name a role. Every other request is judged against the
  resource ``*``, which a resource-scoped statement never matches;
- **no conditions** of identity policies: moto compares them with request parameters only, and an Allow
  whose condition it cannot verify becomes a Deny;
- SQS batch calls by their operation name (``sqs:SendMessageBatch``), where IAM authorizes them with the
  single-message action (``sqs:SendMessage``), and DynamoDB transactions by theirs
  (``dynamodb:TransactWriteItems``), where IAM authorizes each item's action (``PutItem``, ``UpdateItem``...):
  the policy moto is given names both, and the recorded calls are the IAM actions;
- an action by the service's signing name (``monitoring:DescribeAlarms`` for ``cloudwatch:DescribeAlarms``):
  the policy moto is given names both.

So the role put into moto is the template's role with every statement split by service: S3, SQS and STS
statements keep their resolved resources (moto checks them), the others get ``*`` (moto checks their
actions only); conditions are left out. The template's statements themselves (resources and conditions)
are what the stack tests and cdk-nag look at; this proves the actions, and the resources where moto can.

Every call a function makes while it runs under a role is recorded by a botocore ``before-call`` /
``after-call`` hook, attributed to the role by the call's access key, with the error code when AWS (moto)
refused it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import boto3
import botocore.handlers
from botocore.credentials import Credentials
from moto.core import enable_iam_authentication
from moto.iam.access_control import IAMRequestBase
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from tests.iam.roles import FunctionRole, Resolver, Statement, function_role, load_template, role_documents

# services whose resources moto evaluates (see the module docstring)
RESOURCE_CHECKED = frozenset({"s3", "sqs", "sts"})
# botocore signing name -> IAM action prefix, where they differ
_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
# S3 operations whose IAM action has another name
_S3_ACTIONS = {
    "HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket", "ListObjectVersions": "ListBucketVersions", "DeleteObjects": "DeleteObject",
    "CopyObject": "PutObject", "GetObjectAttributes": "GetObject", "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
}

# SQS batch operations are authorized by the single-message action (moto checks them by operation name).
_SQS_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


# DynamoDB transactions are authorized by the item actions they contain (moto checks them by operation name).
_TRANSACTION_ITEMS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                      "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
_TRANSACTIONS = {"TransactWriteItems": ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"),
                 "TransactGetItems": ("GetItem",)}


def iam_actions(signing_name: str, operation: str, params: Mapping[str, Any] | None) -> list[str]:
    """The IAM actions a call needs (a DynamoDB transaction: those of its items)."""
    if signing_name == "dynamodb" and operation in _TRANSACTIONS:
        kinds = {kind for item in (params or {}).get("TransactItems", []) for kind in item}
        return sorted(f"dynamodb:{_TRANSACTION_ITEMS[kind]}" for kind in kinds if kind in _TRANSACTION_ITEMS)
    return [iam_action(signing_name, operation)]


def iam_action(signing_name: str, operation: str) -> str:
    prefix = _PREFIX.get(signing_name, signing_name)
    if prefix == "s3":
        operation = _S3_ACTIONS.get(operation, operation)
    elif prefix == "sqs":
        operation = _SQS_ACTIONS.get(operation, operation)
    return f"{prefix}:{operation}"


@dataclass
class Call:
    action: str
    error: str | None


@dataclass
class Principal:
    """A role a function ran under: what it was granted and what it called."""

    label: str  # "<automation>/<function logical id>"
    mode: str
    statements: list[Statement]
    calls: list[Call] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what moto's authorization refused it


class Recorder:
    """The calls of every role run under in this process, by (label, mode)."""

    def __init__(self) -> None:
        self.principals: dict[tuple[str, str], Principal] = {}
        self._by_key: dict[str, Principal] = {}
        self._by_role: dict[str, Principal] = {}
        self.unattributed: list[str] = []  # calls made under enforcement with keys of no recorded role

    def principal(self, label: str, mode: str, statements: list[Statement]) -> Principal:
        found = self.principals.get((label, mode))
        if found is None:
            found = self.principals[(label, mode)] = Principal(label, mode, list(statements))
        else:
            for statement in statements:  # the same role resolved against other resources
                if statement not in found.statements:
                    found.statements.append(statement)
        return found

    def refused(self, access_key: str, action: str, resource: str) -> None:
        principal = self._principal_of(access_key)
        if principal is not None:
            principal.refused.append(f"{action} on {resource}")

    def attach(self, access_key: str, principal: Principal) -> None:
        self._by_key[access_key] = principal

    def reset(self) -> None:
        """Forget every role and call recorded so far (the proof counts only its own runs)."""
        self.principals.clear()
        self._by_key.clear()
        self._by_role.clear()
        self.unattributed.clear()

    def keys(self) -> list[str]:
        """Access keys of the role sessions the functions ran with (member sessions not included)."""
        return [key for key, principal in self._by_key.items() if not principal.label.startswith("member/")]

    def attach_role(self, role_arn: str, principal: Principal) -> None:
        """Calls made with any session of ``role_arn`` (a member role the function assumes) are its."""
        self._by_role[role_arn] = principal

    def _principal_of(self, access_key: str) -> Principal | None:
        found = self._by_key.get(access_key)
        if found is None and self._by_role:
            for backends in sts_backends.values():
                for backend in backends.values():
                    for assumed in backend.assumed_roles:
                        if assumed.access_key_id == access_key and assumed.role_arn in self._by_role:
                            found = self._by_key[access_key] = self._by_role[assumed.role_arn]
        return found

    def record(self, access_key: str | None, action: str, error: str | None) -> None:
        principal = self._principal_of(access_key or "")
        if principal is not None:
            principal.calls.append(Call(action, error))
        elif _Hook.enforcing:
            self.unattributed.append(f"{action} (key {access_key})")


RECORDER = Recorder()


# The function's own clients (functions/shared/clients.py) carry this in their user agent.
FUNCTION_CLIENT_MARK = "aws-ops-automations"


class _Hook:
    installed = False
    enforcing = 0
    role_credentials: Credentials | None = None
    stale_keys: ClassVar[set[str]] = set()  # the ambient credentials and earlier runs' role sessions
    swapped: ClassVar[list[tuple[Any, Any]]] = []  # (request signer, its own credentials)


def _before_call(model: Any, params: Any = None, request_signer: Any = None, context: Any = None,
                 **_: Any) -> None:
    if context is None:
        return
    body = params.get("body") if isinstance(params, dict) else None
    if model.name in _TRANSACTIONS and isinstance(body, (bytes, str)):
        context["iam_proof_params"] = json.loads(body or "{}")
    if request_signer is None:
        return
    current = request_signer._credentials
    if (_Hook.role_credentials is not None and current is not None
            and current.get_frozen_credentials().access_key in _Hook.stale_keys):
        # A client cached before this run (the function's own cache, Powertools' parameter providers; a
        # scenario may have put a Stubber on it), with the test's or an earlier run's credentials: it signs as
        # the role for the run, as a client made in the role's Lambda would (and keeps what it cached, as a
        # warm Lambda does). Clients made with other credentials (a member role's session) are left alone.
        _Hook.swapped.append((request_signer, request_signer._credentials))
        request_signer._credentials = _Hook.role_credentials
    credentials = getattr(request_signer, "_credentials", None)
    if credentials is not None:
        context["iam_proof_key"] = credentials.get_frozen_credentials().access_key


def _after_call(model: Any, http_response: Any = None, parsed: Any = None, context: Any = None, **_: Any) -> None:
    if context is None:
        return
    if "iam_proof_key" not in context:
        config = context.get("client_config")
        if _Hook.role_credentials is None or config is None or FUNCTION_CLIENT_MARK not in (
                config.user_agent_extra or ""):
            return
        # A function's client answered by a Stubber (registered first, so before-call did not run here).
        context["iam_proof_key"] = _Hook.role_credentials.access_key
    error = None
    if http_response is not None and http_response.status_code >= 300 and isinstance(parsed, dict):
        error = str(parsed.get("Error", {}).get("Code") or http_response.status_code)
    for action in iam_actions(model.service_model.signing_name, model.name, context.get("iam_proof_params")):
        RECORDER.record(context["iam_proof_key"], action, error)


def install_hook() -> None:
    """Every botocore session made from now on records calls (as moto itself registers its handler), and
    moto's refusals are recorded with the action and resource it judged."""
    if _Hook.installed:
        return
    botocore.handlers.BUILTIN_HANDLERS.append(("before-call", _before_call))
    botocore.handlers.BUILTIN_HANDLERS.append(("after-call", _after_call))
    check = IAMRequestBase.check_action_permitted

    def recording_check(self: Any, resource: str) -> None:
        try:
            check(self, resource)
        except Exception:
            RECORDER.refused(self._access_key._access_key_id, self._action, resource)
            raise

    IAMRequestBase.check_action_permitted = recording_check  # type: ignore[method-assign]
    _Hook.installed = True


# --------------------------------------------------------------------------- the role in moto


def moto_policy(statements: list[Statement]) -> dict[str, Any]:
    """The policy moto is given for ``statements`` (see the module docstring: split by service,
    resources kept where moto checks them, conditions left out)."""
    out: list[dict[str, Any]] = []
    for statement in statements:
        by_service: dict[str, list[str]] = {}
        for action in statement.actions:
            by_service.setdefault(action.split(":", 1)[0], []).append(action)
        for service, actions in by_service.items():
            resources = list(statement.resources) if service in RESOURCE_CHECKED else ["*"]
            if service == "sqs":  # moto judges a batch call by its operation name
                actions += [f"sqs:{batch}" for batch, single in _SQS_ACTIONS.items() if f"sqs:{single}" in actions]
            # moto names an action by the signing name (monitoring:DescribeAlarms for cloudwatch:DescribeAlarms)
            actions += [f"{signing}:{a.split(':', 1)[1]}" for signing, prefix in _PREFIX.items()
                        if prefix == service for a in list(actions)]
            if service == "dynamodb":  # and a transaction by its operation name
                actions += [f"dynamodb:{name}" for name, items in _TRANSACTIONS.items()
                            if any(f"dynamodb:{item}" in actions for item in items)]
            out.append({"Effect": "Allow", "Action": actions, "Resource": resources})
    return {"Version": "2012-10-17", "Statement": out}


_LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def assume(role_name: str, policy: dict[str, Any], region: str, account: str | None = None) -> dict[str, str]:
    """Create ``role_name`` holding ``policy`` in moto (authorization off) and return its session's
    credentials as environment variables."""
    iam = boto3.client("iam", region_name=region)
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=_LAMBDA_TRUST)
    iam.put_role_policy(RoleName=role_name, PolicyName="template", PolicyDocument=json.dumps(policy))
    arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=arn, RoleSessionName=role_name[:64])["Credentials"]
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"], "AWS_SECURITY_TOKEN": credentials["SessionToken"]}


@contextlib.contextmanager
def enforced(credentials: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Within: moto authorizes every request; clients made now take ``credentials`` from the environment
    and clients cached before sign with them."""
    install_hook()
    _Hook.enforcing += 1
    _Hook.role_credentials = Credentials(credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"],
                                         credentials["AWS_SESSION_TOKEN"])
    _Hook.stale_keys = ({os.environ.get("AWS_ACCESS_KEY_ID", "")} | set(RECORDER.keys())) - {
        credentials["AWS_ACCESS_KEY_ID"]}
    default_session = boto3.DEFAULT_SESSION  # it keeps the credentials it resolved first
    boto3.DEFAULT_SESSION = None
    try:
        with enable_iam_authentication():
            yield dict(credentials)
    finally:
        _Hook.enforcing -= 1
        _Hook.role_credentials = None
        boto3.DEFAULT_SESSION = default_session
        for signer, original in reversed(_Hook.swapped):
            signer._credentials = original
        _Hook.swapped.clear()


def _moto_lookup(region: str) -> Any:
    def lookup(kind: str, name: str) -> str | None:
        if kind == "AWS::SecretsManager::Secret":
            secrets = boto3.client("secretsmanager", region_name=region)
            with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
                return str(secrets.describe_secret(SecretId=name)["ARN"])
        return None

    return lookup


# --------------------------------------------------------------------------- the demo's invocations


@dataclass
class RoleRunner:
    """``DemoContext.around_invoke``: every invocation runs under the function's synthesized role, the
    enforce-mode role or (``MODE=report``) the report-mode role, each from its own synthesized app; a
    scenario with an app of its own (``<scenario>:<mode>``, e.g. the Organization) takes its roles from it,
    and the member roles it holds in moto's accounts get the member template's policies."""

    cdk_outs: Mapping[str, Path]  # "<mode>" or "<scenario>:<mode>" -> cloud assembly
    account: str = "123456789012"
    _templates: dict[tuple[str, str], tuple[Path, str]] = field(default_factory=dict)

    def _find(self, key: str, function_id: str) -> tuple[Path, str]:
        if (key, function_id) not in self._templates:
            for path in sorted(self.cdk_outs[key].glob("*.template.json")):
                if function_id in load_template(path).get("Resources", {}):
                    self._templates[(key, function_id)] = (path, function_id)
                    break
            else:
                raise LookupError(f"{function_id} is in no template of {self.cdk_outs[key]}")
        return self._templates[(key, function_id)]

    @contextlib.contextmanager
    def __call__(self, ctx: Any, automation: str, env: Mapping[str, str]) -> Iterator[dict[str, str]]:
        mode = env.get("MODE", "enforce")
        key = f"{ctx.automation}:{mode}" if f"{ctx.automation}:{mode}" in self.cdk_outs else mode
        label = ctx.automation if key != mode else mode  # a scenario's own app: its roles are told apart
        path, function_id = self._find(key, ctx.spec(automation).logical_id)
        for member in self.cdk_outs[key].glob("*-member.template.json"):
            grant_member_roles(load_template(member), hub=self.account, region=ctx.region, mode=label)
        with run_as(function_role(load_template(path), function_id), env, region=ctx.region, account=self.account,
                    mode=label) as credentials:
            yield credentials


_ANY_PRINCIPAL_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})


def grant_member_roles(template: dict[str, Any], *, hub: str, region: str, mode: str) -> None:
    """Every role of the member template that a moto account holds (by name) gets the template's policies
    for that account; its calls are recorded as ``member/<role name>``.

    moto cannot evaluate the template's trust policy (an account principal with ``aws:PrincipalArn`` and
    ``aws:PrincipalOrgID`` conditions: it compares principal ARNs literally and turns an unverifiable condition
    into a Deny), so in moto the role's trust admits any principal; what the hub role may assume is checked
    on the hub side (its ``sts:AssumeRole`` resources). The stack tests assert the trust policy itself."""
    roles = {resource["Properties"]["RoleName"]: logical_id for logical_id, resource in
             template.get("Resources", {}).items()
             if resource.get("Type") == "AWS::IAM::Role" and isinstance(resource["Properties"].get("RoleName"), str)}
    organization = _organization_id()
    for account, backends in list(iam_backends.items()):
        backend = backends["aws"]
        for role in list(backend.roles.values()):
            if role.name not in roles:
                continue
            resolver = Resolver(template, account=account, region=region, bindings={
                ("Ref", "HubAccountId"): hub, ("Ref", "HubRegion"): region, ("Ref", "OrganizationId"): organization})
            documents, _ = role_documents(template, roles[role.name])
            statements = resolver.statements(documents)
            principal = RECORDER.principal(f"member/{role.name}", mode, statements)
            backend.put_role_policy(role.name, "template", json.dumps(moto_policy(statements)))
            role.assume_role_policy_document = _ANY_PRINCIPAL_TRUST
            RECORDER.attach_role(role.arn, principal)


def _organization_id() -> str:
    from moto.organizations.models import organizations_backends

    for backends in organizations_backends.values():
        for backend in backends.values():
            if backend.org is not None:
                return str(backend.org.id)
    return "o-none"


@contextlib.contextmanager
def run_as(role: FunctionRole, env: Mapping[str, str], *, region: str, account: str,
           mode: str) -> Iterator[dict[str, str]]:
    """Run (within) under ``role`` resolved against ``env``; yields the environment's credentials."""
    template = role.template
    if role.managed_arns:
        raise NotImplementedError(f"{role.function_id}: managed policies {role.managed_arns} are not modelled")
    resolver = Resolver(template, account=account, region=region, lookup=_moto_lookup(region))
    function_env = template["Resources"][role.function_id]["Properties"].get("Environment", {}).get("Variables", {})
    resolver.bind_environment(function_env, env)
    statements = resolver.statements(role.documents)
    label = f"{role.automation}/{role.function_id}"
    principal = RECORDER.principal(label, mode, statements)
    role_name = f"{role.function_id}-{mode}"[:64]
    credentials = assume(role_name, moto_policy(statements), region)
    RECORDER.attach(credentials["AWS_ACCESS_KEY_ID"], principal)
    with enforced(credentials) as enforced_env:
        yield enforced_env
