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
  whose condition it cannot verify becomes a Deny.

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
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import boto3
import botocore.handlers
from botocore.credentials import Credentials
from moto.core import enable_iam_authentication

from tests.iam.roles import FunctionRole, Resolver, Statement, function_role, load_template

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
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                          "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException"})


def iam_action(signing_name: str, operation: str) -> str:
    prefix = _PREFIX.get(signing_name, signing_name)
    if prefix == "s3":
        operation = _S3_ACTIONS.get(operation, operation)
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


class Recorder:
    """The calls of every role run under in this process, by (label, mode)."""

    def __init__(self) -> None:
        self.principals: dict[tuple[str, str], Principal] = {}
        self._by_key: dict[str, Principal] = {}
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

    def attach(self, access_key: str, principal: Principal) -> None:
        self._by_key[access_key] = principal

    def record(self, access_key: str | None, action: str, error: str | None) -> None:
        principal = self._by_key.get(access_key or "")
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
    swapped: ClassVar[list[tuple[Any, Any]]] = []  # (request signer, its own credentials)


def _before_call(model: Any, request_signer: Any = None, context: Any = None, **_: Any) -> None:
    if context is None or request_signer is None:
        return
    config = context.get("client_config")
    if (_Hook.role_credentials is not None and config is not None
            and FUNCTION_CLIENT_MARK in (config.user_agent_extra or "")
            and request_signer._credentials is not _Hook.role_credentials):
        # A client the function cached before this run (a scenario may have put a Stubber on it): it signs
        # as the role for the run, as a client made in the role's Lambda would.
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
    action = iam_action(model.service_model.signing_name, model.name)
    RECORDER.record(context["iam_proof_key"], action, error)


def install_hook() -> None:
    """Every botocore session made from now on records calls (as moto itself registers its handler)."""
    if _Hook.installed:
        return
    botocore.handlers.BUILTIN_HANDLERS.append(("before-call", _before_call))
    botocore.handlers.BUILTIN_HANDLERS.append(("after-call", _after_call))
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


def _forget_cached_providers() -> None:
    """Powertools' parameter providers keep the client they made first (with other credentials)."""
    base = sys.modules.get("aws_lambda_powertools.utilities.parameters.base")
    if base is not None:
        base.DEFAULT_PROVIDERS.clear()


@contextlib.contextmanager
def enforced(credentials: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Within: moto authorizes every request; clients made now take ``credentials`` from the environment
    and the function's cached clients sign with them."""
    install_hook()
    _forget_cached_providers()
    _Hook.enforcing += 1
    _Hook.role_credentials = Credentials(credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"],
                                         credentials["AWS_SESSION_TOKEN"])
    try:
        with enable_iam_authentication():
            yield dict(credentials)
    finally:
        _Hook.enforcing -= 1
        _Hook.role_credentials = None
        for signer, original in reversed(_Hook.swapped):
            signer._credentials = original
        _Hook.swapped.clear()
        _forget_cached_providers()


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
    enforce-mode role or (``MODE=report``) the report-mode role, each from its own synthesized app."""

    cdk_outs: Mapping[str, Path]  # mode -> cloud assembly
    account: str = "123456789012"
    _templates: dict[tuple[str, str], tuple[Path, str]] = field(default_factory=dict)

    def _find(self, mode: str, function_id: str) -> tuple[Path, str]:
        key = (mode, function_id)
        if key not in self._templates:
            for path in sorted(self.cdk_outs[mode].glob("*.template.json")):
                if function_id in load_template(path).get("Resources", {}):
                    self._templates[key] = (path, function_id)
                    break
            else:
                raise LookupError(f"{function_id} is in no template of {self.cdk_outs[mode]}")
        return self._templates[key]

    @contextlib.contextmanager
    def __call__(self, ctx: Any, automation: str, env: Mapping[str, str]) -> Iterator[dict[str, str]]:
        mode = env.get("MODE", "enforce")
        path, function_id = self._find(mode, ctx.spec(automation).logical_id)
        with run_as(function_role(path, function_id), env, region=ctx.region, account=self.account,
                    mode=mode) as credentials:
            yield credentials


@contextlib.contextmanager
def run_as(role: FunctionRole, env: Mapping[str, str], *, region: str, account: str,
           mode: str) -> Iterator[dict[str, str]]:
    """Run (within) under ``role`` resolved against ``env``; yields the environment's credentials."""
    template = load_template(role.template_path)
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
