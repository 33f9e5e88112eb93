"""A function's role as the synthesized template defines it, resolved against the resources a test made.

``function_role(cdk_out, logical_id)`` finds the function's role in its template and collects every
policy attached to it: the role's inline ``Policies``, the ``AWS::IAM::Policy`` and
``AWS::IAM::ManagedPolicy`` resources that name it, and its ``ManagedPolicyArns``.

``Resolver`` turns the policies' CloudFormation expressions (``Ref``, ``Fn::GetAtt``, ``Fn::Join``,
``Fn::Sub``, ``Fn::Select``, ``Fn::Split``, ``Fn::ImportValue``, ``Fn::If`` and the pseudo parameters) into
plain strings. What a reference stands for comes from the function's environment at run time: a template
variable ``DEST_BUCKET = {"Ref": "SourceBucket…"}`` run with ``DEST_BUCKET=demo-images`` binds that bucket
to ``demo-images`` (and its ``Arn`` to ``arn:aws:s3:::demo-images``). A reference nothing binds (the
function's own log group, its failure queue) gets the ARN CloudFormation would give a resource of that
type named after its logical id, so a call to it is still judged against a real-looking ARN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARTITION = "aws"

# Resource type -> (service, ARN tail from the physical name) for references nothing bound.
_ARN_FORMS: dict[str, tuple[str, str, bool]] = {
    # type: (service, resource part, regional+account)
    "AWS::S3::Bucket": ("s3", "{name}", False),
    "AWS::SQS::Queue": ("sqs", "{name}", True),
    "AWS::SNS::Topic": ("sns", "{name}", True),
    "AWS::KMS::Key": ("kms", "key/{name}", True),
    "AWS::Logs::LogGroup": ("logs", "log-group:{name}:*", True),
    "AWS::DynamoDB::Table": ("dynamodb", "table/{name}", True),
    "AWS::SecretsManager::Secret": ("secretsmanager", "secret:{name}", True),
    "AWS::IAM::Role": ("iam", "role/{name}", False),
    "AWS::Lambda::Function": ("lambda", "function:{name}", True),
    "AWS::Events::EventBus": ("events", "event-bus/{name}", True),
    "AWS::StepFunctions::StateMachine": ("states", "stateMachine:{name}", True),
}


# Resource type -> the property holding its physical name (when the template sets one).
_NAME_PROPERTIES = {"AWS::SecretsManager::Secret": "Name", "AWS::S3::Bucket": "BucketName",
                    "AWS::SQS::Queue": "QueueName", "AWS::SNS::Topic": "TopicName",
                    "AWS::DynamoDB::Table": "TableName", "AWS::IAM::Role": "RoleName"}
# (resource type, physical name) -> ARN, for resources whose ARN CloudFormation cannot know (a secret's suffix)
Lookup = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Statement:
    """One resolved Allow statement: its actions, resources (strings) and conditions."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Any]
    sid: str
    policy: str  # logical id of the policy it came from


@dataclass
class FunctionRole:
    """A function's role in one template: where its policies are, before resolution."""

    template: dict[str, Any]
    function_id: str
    role_id: str
    automation: str
    documents: dict[str, Any] = field(default_factory=dict)  # policy name -> PolicyDocument (unresolved)
    managed_arns: list[Any] = field(default_factory=list)


def load_template(path: Path) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(path.read_text())
    return template


def role_documents(template: dict[str, Any], role_id: str) -> tuple[dict[str, Any], list[Any]]:
    """Every policy document attached to the role ``role_id`` of ``template``, and its managed policy ARNs."""
    resources = template.get("Resources", {})
    role = resources[role_id]["Properties"]
    documents: dict[str, Any] = {}
    for inline in role.get("Policies", []) or []:
        documents[f"{role_id}/{inline['PolicyName']}"] = inline["PolicyDocument"]
    for logical_id, resource in resources.items():
        if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and \
                {"Ref": role_id} in (resource["Properties"].get("Roles") or []):
            documents[logical_id] = resource["Properties"]["PolicyDocument"]
    return documents, list(role.get("ManagedPolicyArns") or [])


def function_role(template: dict[str, Any], function_id: str) -> FunctionRole:
    """The role of the Lambda function ``function_id`` in ``template``."""
    props = template["Resources"][function_id]["Properties"]
    role_ref = props["Role"]
    if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
        raise ValueError(f"{function_id}: its role is not a role of this template ({role_ref})")
    role_id = role_ref["Fn::GetAtt"][0]
    automation = props.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME", function_id)
    documents, managed = role_documents(template, role_id)
    return FunctionRole(template, function_id, role_id, str(automation), documents, managed)


def main_function(template: dict[str, Any], automation: str) -> str:
    """The logical id of ``automation``'s function in ``template`` (its POWERTOOLS_SERVICE_NAME)."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Lambda::Function" and resource["Properties"].get(
                "Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == automation:
            return logical_id
    raise LookupError(f"no function of {automation} in the template")


class Unresolvable(ValueError):
    pass


class Resolver:
    """Resolves CloudFormation expressions of one template to strings.

    ``bindings`` maps ``("Ref", id)``, ``("GetAtt", id, attribute)`` and ``("Import", export)`` to values.
    """

    def __init__(self, template: dict[str, Any], *, account: str, region: str,
                 bindings: Mapping[tuple[str, ...], str] | None = None, lookup: Lookup | None = None) -> None:
        self.template = template
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {})
        self.conditions: dict[str, Any] = template.get("Conditions", {})
        self.account = account
        self.region = region
        self.bindings: dict[tuple[str, ...], str] = dict(bindings or {})
        self.lookup = lookup

    # -- binding from the function's environment
    def bind_environment(self, template_env: Mapping[str, Any], actual_env: Mapping[str, str]) -> None:
        """Bind every reference of the template's environment to the value the function runs with."""
        for key, expression in template_env.items():
            value = actual_env.get(key)
            if value is None or isinstance(expression, str):
                continue
            if isinstance(expression, dict) and len(expression) == 1:
                ((function, argument),) = expression.items()
                if function == "Ref":
                    self.bindings[("Ref", argument)] = value
                elif function == "Fn::GetAtt":
                    self.bindings[("GetAtt", argument[0], argument[1])] = value
                elif function == "Fn::ImportValue" and isinstance(argument, str):
                    self.bindings[("Import", argument)] = value

    # -- resolution
    def resolve(self, value: Any) -> Any:  # noqa: C901  one branch per CloudFormation function
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            target, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._get_att(target, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(part) for part in self.resolve(parts))
        if function == "Fn::Sub":
            return self._sub(argument)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if function == "Fn::ImportValue":
            name = self.resolve(argument)
            return self.bindings.get(("Import", name), f"arn:{PARTITION}:unbound:{self.region}:{self.account}:{name}")
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false)
        if function == "Condition":
            return self.condition(argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.conditions[name]))

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            ((function, argument),) = expression.items()
            if function == "Fn::Equals":
                left, right = (self._evaluate(item) for item in argument)
                return left == right
            if function == "Fn::Not":
                return not self._evaluate(argument[0])
            if function == "Fn::And":
                return all(self._evaluate(item) for item in argument)
            if function == "Fn::Or":
                return any(self._evaluate(item) for item in argument)
            if function == "Condition":
                return self.condition(argument)
        return self.resolve(expression)

    def _ref(self, name: str) -> Any:
        pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": PARTITION,
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "stack", "AWS::NoValue": _NO_VALUE}
        if name in pseudo:
            return pseudo[name]
        if ("Ref", name) in self.bindings:
            return self.bindings[("Ref", name)]
        if name in self.parameters:
            default = self.parameters[name].get("Default")
            if default is None:
                raise Unresolvable(f"parameter {name} has no default and nothing binds it")
            return default
        kind = self.resources.get(name, {}).get("Type", "")
        arn = self._arn_of(name, kind)
        if kind in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret", "AWS::IAM::ManagedPolicy"):
            return arn
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self._name_of(name)}"
        return self._name_of(name)

    def _get_att(self, target: str, attribute: str) -> Any:
        if ("GetAtt", target, attribute) in self.bindings:
            return self.bindings[("GetAtt", target, attribute)]
        kind = self.resources.get(target, {}).get("Type", "")
        if attribute == "Arn":
            return self._arn_of(target, kind)
        if attribute in ("QueueName", "TopicName"):
            return self._name_of(target)
        if attribute == "QueueUrl":
            return self._ref(target)
        raise Unresolvable(f"Fn::GetAtt {target}.{attribute} is neither bound nor derivable")

    def _name_of(self, logical_id: str) -> str:
        """The physical name of a resource: from its bound Ref (or Arn), else its logical id."""
        bound = self.bindings.get(("Ref", logical_id)) or self.bindings.get(("GetAtt", logical_id, "Arn"))
        if bound is None:
            resource = self.resources.get(logical_id, {})
            named = resource.get("Properties", {}).get(_NAME_PROPERTIES.get(resource.get("Type", ""), ""))
            return named if isinstance(named, str) else logical_id
        if bound.startswith("https://"):  # a queue URL
            return bound.rstrip("/").rsplit("/", 1)[-1]
        if bound.startswith("arn:"):
            tail = bound.split(":", 5)[5]
            return tail.split("/")[-1] if "/" in tail else tail.split(":")[-1]
        return bound

    def _arn_of(self, logical_id: str, kind: str) -> str:
        bound = self.bindings.get(("GetAtt", logical_id, "Arn"))
        if bound is not None:
            return bound
        bound_ref = self.bindings.get(("Ref", logical_id))
        if bound_ref is not None and bound_ref.startswith("arn:"):
            return bound_ref
        if self.lookup is not None:
            found = self.lookup(kind, self._name_of(logical_id))
            if found is not None:
                return found
        service, tail, regional = _ARN_FORMS.get(kind, ("unbound", "{name}", True))
        resource = tail.format(name=self._name_of(logical_id))
        if not regional:
            return f"arn:{PARTITION}:{service}:::{resource}" if service == "s3" else \
                f"arn:{PARTITION}:{service}::{self.account}:{resource}"
        return f"arn:{PARTITION}:{service}:{self.region}:{self.account}:{resource}"

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved_variables = {key: self.resolve(item) for key, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in resolved_variables:
                return str(resolved_variables[name])
            if "." in name:
                target, attribute = name.split(".", 1)
                return str(self._get_att(target, attribute))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # -- statements
    def statements(self, documents: Mapping[str, Any]) -> list[Statement]:
        """Every Allow statement of ``documents`` with its actions and resources as strings."""
        found: list[Statement] = []
        for policy, document in documents.items():
            raw = document["Statement"]
            for index, statement in enumerate(raw if isinstance(raw, list) else [raw]):
                if statement.get("Effect") != "Allow":
                    continue
                actions = _strings(statement.get("Action", []))
                resources = _strings(self.resolve(statement.get("Resource", "*")))
                found.append(Statement(tuple(actions), tuple(resources), self.resolve(statement.get("Condition", {})),
                                       str(statement.get("Sid") or f"#{index}"), policy))
        return found


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE: Any = _NoValue()


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise Unresolvable(f"not resolved to a string: {item!r}")
    return list(items)
