"""Pure decisions: which keys to act on, where renditions go, whether they are up to date.

No boto3, no environment: everything arrives as arguments, every decision carries a ``reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "AVIF": "image/avif",
    "TIFF": "image/tiff",
}
# The first extension is the one written when the key's own does not fit the output format.
EXTENSIONS = {
    "JPEG": (".jpg", ".jpeg", ".jpe"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "GIF": (".gif",),
    "AVIF": (".avif",),
}
# User metadata on every rendition (S3 returns the keys lower-cased, without the x-amz-meta- prefix).
META_SOURCE_KEY = "source-key"
META_SOURCE_ETAG = "source-etag"
META_RENDITION = "rendition"


@dataclass(frozen=True)
class RenditionSpec:
    name: str
    width: int
    height: int
    fit: Literal["contain", "cover"] = "contain"


@dataclass(frozen=True)
class Skip:
    """The object is not for us; ``reason`` says why (logged, counted, never retried)."""

    reason: str


def check_key(key: str, bucket: str, *, source_prefix: str, dest_bucket: str, dest_prefix: str) -> Skip | None:
    """None when ``key`` in ``bucket`` is a source image to act on; else why not."""
    if bucket == dest_bucket and dest_prefix and key.startswith(dest_prefix):
        return Skip(f"key is under the destination prefix {dest_prefix!r} (a rendition): ignored to avoid a loop")
    if not key.startswith(source_prefix):
        return Skip(f"key is outside the source prefix {source_prefix!r}")
    if key.endswith("/"):
        return Skip("key is a folder marker")
    if key == source_prefix:
        return Skip("key is the source prefix itself")
    return None


def is_rendition(metadata: Mapping[str, str]) -> bool:
    """A rendition carries our metadata marker; such objects are never resized again."""
    return META_SOURCE_ETAG in {k.lower() for k in metadata}


def relative_key(key: str, source_prefix: str) -> str:
    return key[len(source_prefix) :] if key.startswith(source_prefix) else key


def split_extension(path: str) -> tuple[str, str]:
    """``("2026/My Photo", ".JPG")``; the extension is only looked for in the last path segment."""
    slash = path.rfind("/")
    dot = path.rfind(".")
    if dot <= slash + 1:  # no dot, or a dot-file such as ".hidden"
        return path, ""
    return path[:dot], path[dot:]


def output_key(source_key: str, rendition: str, out_format: str, *, source_prefix: str, dest_prefix: str) -> str:
    """``<dest_prefix><rendition>/<key without source_prefix>``, extension changed when it does not fit.

    ``uploads/2026/My Photo.JPG`` as WEBP -> ``resized/thumb/2026/My Photo.webp``; as JPEG it keeps ``.JPG``.
    """
    stem, extension = split_extension(relative_key(source_key, source_prefix))
    allowed = EXTENSIONS[out_format]
    if extension.lower() not in allowed:
        extension = allowed[0]
    return f"{dest_prefix}{rendition}/{stem}{extension}"


def rendition_stem(source_key: str, rendition: str, *, source_prefix: str, dest_prefix: str) -> str:
    """The rendition key without its extension (to find renditions of a deleted source of unknown format)."""
    stem, _ = split_extension(relative_key(source_key, source_prefix))
    return f"{dest_prefix}{rendition}/{stem}"


def matches_stem(key: str, stem: str) -> bool:
    """``key`` is ``stem`` plus at most an extension (``stem + '.webp'``), not a longer name."""
    if not key.startswith(stem):
        return False
    rest = key[len(stem) :]
    return rest == "" or (rest.startswith(".") and "/" not in rest and rest.count(".") == 1)


def clean_etag(etag: str | None) -> str:
    return (etag or "").strip().strip('"')


def rendition_metadata(source_key: str, etag: str, rendition: str) -> dict[str, str]:
    """S3 user metadata must be ASCII: the source key is percent-encoded (``unquote`` gives it back)."""
    return {
        META_SOURCE_KEY: quote(source_key, safe="/"),
        META_SOURCE_ETAG: clean_etag(etag),
        META_RENDITION: rendition,
    }


def metadata_source_key(metadata: Mapping[str, str]) -> str | None:
    value = {k.lower(): v for k, v in metadata.items()}.get(META_SOURCE_KEY)
    return unquote(value) if value is not None else None


def is_up_to_date(metadata: Mapping[str, str] | None, etag: str) -> bool:
    """An existing rendition already made from this ETag of the source."""
    if metadata is None:
        return False
    lowered = {k.lower(): v for k, v in metadata.items()}
    return lowered.get(META_SOURCE_ETAG) == clean_etag(etag)


def check_size(size: int, max_bytes: int) -> str | None:
    """A rejection reason for the object's byte size, or None."""
    if size <= 0:
        return "the object is empty (zero bytes)"
    if size > max_bytes:
        return f"the object has {size} bytes, over the limit of {max_bytes} (MAX_BYTES)"
    return None
