"""``opsauto keys status``: the access keys key_rotation manages, and the account's old keys, read-only.

For every managed user of the settings: its secret (rotation on, last and next rotation, the key in
``AWSCURRENT`` — its id only, the secret is never printed), the user's keys with age, status and last use,
and whether the key in the secret is one of them. Then, for the whole account, the keys older than the
settings' ``warn_after_days``. Exit 1 when a managed user's rotation looks broken (rotation off, the secret's
key not the user's, or the last rotation older than ``rotation_days`` + 1 day).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from opsauto import render
from opsauto.project import OpsautoError, load_project
from shared.errors import error_code


def secret_name(prefix: str, user_name: str, configured: str | None) -> str:
    """The secret of a managed user, as the key_rotation stack names it."""
    return configured or f"{prefix}/key-rotation/{user_name}"


def _age_days(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else (now - moment).days


def _keys(iam: Any, user: str, now: datetime) -> list[dict[str, Any]]:
    keys = []
    for page in iam.get_paginator("list_access_keys").paginate(UserName=user):
        for key in page["AccessKeyMetadata"]:
            used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
            keys.append({"id": key["AccessKeyId"], "status": key["Status"],
                         "age_days": _age_days(key["CreateDate"], now),
                         "last_used": _iso(used.get("LastUsedDate")), "service": used.get("ServiceName")})
    return keys


def _current_key_id(sm: Any, secret: str) -> str | None:
    value = sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT").get("SecretString") or "{}"
    try:
        key_id = json.loads(value).get("AccessKeyId")
    except ValueError:
        return None
    return str(key_id) if key_id else None


def managed(session: boto3.Session, prefix: str, users: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    iam, sm = session.client("iam"), session.client("secretsmanager")
    rows = []
    for user in users:
        name = secret_name(prefix, user.user_name, user.secret_name)
        row: dict[str, Any] = {"user": user.user_name, "secret": name, "rotation_days": user.rotation_days,
                               "problems": []}
        try:
            described = sm.describe_secret(SecretId=name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            row["problems"].append("secret not found (is key_rotation deployed?)")
            rows.append(row)
            continue
        last = described.get("LastRotatedDate")
        row.update(rotation_enabled=bool(described.get("RotationEnabled")), last_rotated=_iso(last),
                   next_rotation=_iso(described.get("NextRotationDate")), current_key=_current_key_id(sm, name))
        try:
            row["keys"] = _keys(iam, user.user_name, now)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            row["keys"] = []
            row["problems"].append("IAM user not found")
        if not row["rotation_enabled"]:
            row["problems"].append("rotation is off")
        if row["current_key"] and row["current_key"] not in {k["id"] for k in row["keys"]}:
            row["problems"].append("the secret's key is not one of the user's keys")
        if last is not None and (now - last).days > user.rotation_days + 1:
            row["problems"].append(f"last rotation {(now - last).days} days ago")
        rows.append(row)
    return rows


def old_keys(session: boto3.Session, warn_after_days: int, now: datetime) -> Iterator[dict[str, Any]]:
    iam = session.client("iam")
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            for key_page in iam.get_paginator("list_access_keys").paginate(UserName=user["UserName"]):
                for key in key_page["AccessKeyMetadata"]:
                    age = _age_days(key["CreateDate"], now) or 0
                    if age >= warn_after_days:
                        yield {"user": user["UserName"], "id": key["AccessKeyId"], "status": key["Status"],
                               "age_days": age}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def status(session: boto3.Session, project_dir: Path | None, now: datetime | None = None) -> dict[str, Any]:
    project = load_project(project_dir)
    settings = project.settings.automations.key_rotation
    moment = now or datetime.now(UTC)
    return {
        "managed": managed(session, project.prefix, settings.managed_users, moment),
        "warn_after_days": settings.warn_after_days,
        "old_keys": list(old_keys(session, settings.warn_after_days, moment)),
    }


def text(data: dict[str, Any]) -> str:
    out = ["managed users:"]
    if not data["managed"]:
        out.append("  none (automations.key_rotation.managed_users is empty)")
    else:
        rows = [[m["user"], m["secret"], m.get("rotation_enabled"), m.get("last_rotated"), m.get("next_rotation"),
                 m.get("current_key"), ", ".join(f"{k['id']} {k['status']} {k['age_days']}d" for k in m.get("keys", []))
                 or None, m["problems"] or "ok"] for m in data["managed"]]
        out.append(render.table(["user", "secret", "rotation", "last rotated", "next", "AWSCURRENT key",
                                 "keys", "state"], rows))
    out += ["", f"keys older than {data['warn_after_days']} days: {len(data['old_keys'])}"]
    if data["old_keys"]:
        out.append(render.table(["user", "key", "status", "age (days)"],
                                [[k["user"], k["id"], k["status"], k["age_days"]] for k in data["old_keys"]]))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsauto keys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("status", help="managed users' rotation and the account's old keys (read-only)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--region")
    p.add_argument("--profile")
    p.add_argument("--project-dir", type=Path)
    args = parser.parse_args(argv)
    from opsauto.aws import Aws

    aws = Aws(boto3.Session(profile_name=args.profile, region_name=args.region))
    try:
        data = status(aws.session, args.project_dir)
    except ClientError as exc:
        raise OpsautoError(f"AWS: {exc}") from None
    print(render.as_json(data) if args.json else text(data))
    return 1 if any(m["problems"] for m in data["managed"]) else 0
