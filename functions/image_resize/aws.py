"""The adapter: the only module of image_resize that calls AWS (S3, SNS).

"Not found" and "changed meanwhile" come back as None; every other error (throttling, 5xx, access
denied) is raised so the event is retried and, in the end, kept in the failure destination.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from shared.clients import client

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_CHANGED = {"412", "PreconditionFailed"}


@dataclass(frozen=True)
class ObjectHead:
    size: int
    etag: str
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Store:
    """S3 calls with the project's retrying client."""

    def __init__(self, s3: Any | None = None) -> None:
        self._s3 = s3 if s3 is not None else client("s3")

    def head(self, bucket: str, key: str) -> ObjectHead | None:
        try:
            response = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _code(error) in _NOT_FOUND:
                return None
            raise
        return ObjectHead(
            size=int(response.get("ContentLength", 0)),
            etag=str(response.get("ETag", "")).strip('"'),
            content_type=str(response.get("ContentType", "")),
            metadata=dict(response.get("Metadata") or {}),
        )

    def read_start(self, bucket: str, key: str, etag: str, length: int) -> bytes | None:
        """The first ``length`` bytes of the object (None when it was replaced or deleted meanwhile)."""
        return self._get(bucket, key, etag, Range=f"bytes=0-{length - 1}")

    def read(self, bucket: str, key: str, etag: str) -> bytes | None:
        """The whole object, only if it still has ``etag`` (None when it was replaced or deleted meanwhile)."""
        return self._get(bucket, key, etag)

    def _get(self, bucket: str, key: str, etag: str, **extra: str) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"', **extra)
        except ClientError as error:
            if _code(error) in _NOT_FOUND | _CHANGED:
                return None
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def write(self, bucket: str, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata)

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def delete(self, bucket: str, key: str) -> None:
        self._s3.delete_object(Bucket=bucket, Key=key)


def sns_client() -> Any:
    return client("sns")
