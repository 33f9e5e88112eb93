"""checkov skips: the one way a finding of checkov (run by `make test` over every synthesized template) is
accepted, scoped to one resource and always with the reason (docs/security.md lists them).

checkov reads ``Metadata: {"checkov": {"skip": [{"id": ..., "comment": ...}]}}`` of a CloudFormation resource.
"""

from __future__ import annotations

import re

from aws_cdk import CfnResource
from constructs import IConstruct

_CHECK_ID = re.compile(r"^CKV2?_AWS_\d+$")


def skip_check(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skip checkov's ``check_id`` on ``construct``'s CloudFormation resource (itself or its default child)."""
    if not _CHECK_ID.match(check_id):
        raise ValueError(f"not a checkov AWS check id: {check_id!r}")
    if not reason.strip():
        raise ValueError(f"{check_id}: a skip needs its reason")
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path}: no CloudFormation resource to put a checkov skip on")
    metadata = resource.get_metadata("checkov") or {}
    skips = [skip for skip in metadata.get("skip", []) if skip["id"] != check_id]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check_id, "comment": reason}]})
