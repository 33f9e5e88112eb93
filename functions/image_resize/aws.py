"""The adapter: the only module of image_resize that calls AWS (S3, SNS).

"Not found" and "changed meanwhile" come back as None / False; every other error (throttling, 5xx, access
denied) is raised so the event is retried and, in the end, kept in the failure destination.

Renditions are written and deleted conditionally (S3 conditional requests): a write names the rendition's
ETag seen when it was checked (or that there was none), so two invocations racing on one source (an
overwrite while an older version is being resized) cannot leave the older version's renditions on top.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.clients import client
from shared.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
# 412: the condition failed; 409: a concurrent conditional write to the same key won.
_CHANGED = frozenset({"412", "PreconditionFailed", "409", "ConditionalRequestConflict"})


@dataclass(frozen=True)
class ObjectHead:
    size: int
    etag: str
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


class S3Store:
    """S3 calls with the project's retrying client."""

    def __init__(self, s3: S3Client | None = None) -> None:
        self._s3: S3Client = s3 if s3 is not None else client("s3")

    def head(self, bucket: str, key: str) -> ObjectHead | None:
        try:
            response = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND:
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
        return self._get(bucket, key, etag, f"bytes=0-{length - 1}")

    def read(self, bucket: str, key: str, etag: str) -> bytes | None:
        """The whole object, only if it still has ``etag`` (None when it was replaced or deleted meanwhile)."""
        return self._get(bucket, key, etag, None)

    def _get(self, bucket: str, key: str, etag: str, byte_range: str | None) -> bytes | None:
        try:
            if byte_range is None:
                response = self._s3.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
            else:
                response = self._s3.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"', Range=byte_range)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND | _CHANGED:
                return None
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def write(self, bucket: str, key: str, data: bytes, content_type: str, metadata: dict[str, str],
              *, replaces: str | None) -> bool:
        """Write ``key`` if it is still as checked: ``replaces`` is its ETag then, None when it did not exist.

        False when another invocation wrote or deleted it meanwhile (nothing written).
        """
        condition: dict[str, Any] = {"IfMatch": f'"{replaces}"'} if replaces else {"IfNoneMatch": "*"}
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata,
                                **condition)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND | _CHANGED:
                return False
            raise
        return True

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def delete(self, bucket: str, key: str, etag: str) -> bool:
        """Delete ``key`` if it still has ``etag``; False when it changed or vanished meanwhile."""
        try:
            self._s3.delete_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
        except ClientError as error:
            if error_code(error) in _NOT_FOUND | _CHANGED:
                return False
            raise
        return True


def sns_client() -> Any:
    return client("sns")
