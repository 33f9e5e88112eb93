"""Settings of the `image_resize` automation (cdk.json: context.automations.image_resize)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stacks.settings.base import AutomationSettings, StrictModel

# S3 bucket naming rules (general purpose buckets): 3-63 characters, lowercase letters, digits, '.', '-'.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# A rendition name is one path segment of the output key.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_SIDE = 16_384


class Rendition(StrictModel):
    """One output size: ``<dest_prefix><name>/<source key without source_prefix>``."""

    name: str = Field(description="Path segment of the rendition's keys: letters, digits, '_', '-', '.'.")
    width: int = Field(description="Width of the box in pixels (1-16384).")
    height: int = Field(description="Height of the box in pixels (1-16384).")
    fit: Literal["contain", "cover"] = Field(
        "contain", description="contain: fit inside the box, keep aspect; cover: fill the box, centre crop."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value) or value in (".", "..") or ".." in value:
            raise ValueError(
                f"rendition name {value!r} must be 1-63 characters of letters, digits, '_', '-', '.', "
                "start with a letter or digit, and not contain '..'"
            )
        return value

    @field_validator("width", "height")
    @classmethod
    def _side(cls, value: int) -> int:
        if not 1 <= value <= MAX_SIDE:
            raise ValueError(f"must be a positive number of pixels up to {MAX_SIDE}")
        return value


def _default_renditions() -> list[Rendition]:
    return [
        Rendition(name="large", width=2048, height=2048),
        Rendition(name="medium", width=1024, height=1024),
        Rendition(name="thumb", width=256, height=256, fit="cover"),
    ]


def _check_prefix(value: str, *, allow_empty: bool) -> str:
    if value == "":
        if allow_empty:
            return value
        raise ValueError("must not be empty: name the prefix new images are uploaded under, e.g. 'uploads/'")
    if not value.endswith("/"):
        raise ValueError(f"must end with '/' (e.g. {value + '/'!r})")
    if value.startswith("/") or "//" in value:
        raise ValueError("must not start with '/' or contain '//'")
    return value


class ImageResizeSettings(AutomationSettings):
    """Resize images uploaded under ``source_prefix`` into named renditions under ``dest_prefix``."""

    memory_mb: int = Field(
        1024, ge=128, le=10240,
        description="Lambda memory size in MB (decoding a 24 MP image needs ~70 MB; more memory is more CPU).",
    )
    source_bucket_name: str = Field(
        "", description="Existing bucket to watch, imported by name; empty: the stack creates the source bucket."
    )
    source_prefix: str = Field("uploads/", description="Prefix of the keys to resize; must end with '/'.")
    dest_bucket_name: str = Field(
        "", description="Existing bucket the renditions are written to; empty: the source bucket."
    )
    dest_prefix: str = Field("resized/", description="Prefix of the rendition keys; must end with '/'.")
    renditions: list[Rendition] = Field(
        default_factory=_default_renditions,
        description="Output sizes: list of {name, width, height, fit (contain|cover)}.",
    )
    output_format: Literal["original", "jpeg", "webp", "png", "avif"] = Field(
        "original", description="Format of the renditions; original keeps the source's (TIFF becomes PNG)."
    )
    quality: int = Field(85, description="Encoder quality for JPEG, WebP and AVIF (1-100).")
    max_pixels: int = Field(
        50_000_000, description="Images with more pixels (width x height, all frames) are rejected unread."
    )
    max_bytes: int = Field(
        50 * 1024 * 1024, description="Source objects larger than this many bytes are rejected without download."
    )
    delete_renditions: bool = Field(
        False, description="Delete a source's renditions when the source is deleted."
    )
    trigger: Literal["direct", "queue"] = Field(
        "direct", description="direct: S3 notifications invoke the function; queue: S3 -> SQS -> the function."
    )
    batch_size: int = Field(5, description="queue trigger: messages per invocation (1-10).")

    @field_validator("source_bucket_name", "dest_bucket_name")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if value and (not _BUCKET_RE.fullmatch(value) or ".." in value):
            raise ValueError(
                f"{value!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')"
            )
        return value

    @field_validator("source_prefix")
    @classmethod
    def _source_prefix(cls, value: str) -> str:
        return _check_prefix(value, allow_empty=False)

    @field_validator("dest_prefix")
    @classmethod
    def _dest_prefix(cls, value: str) -> str:
        return _check_prefix(value, allow_empty=True)

    @field_validator("renditions")
    @classmethod
    def _renditions(cls, value: list[Rendition]) -> list[Rendition]:
        if not value:
            raise ValueError("name at least one rendition")
        names = [r.name for r in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rendition names must be unique; repeated: {', '.join(duplicates)}")
        return value

    @field_validator("quality")
    @classmethod
    def _quality(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise ValueError("must be between 1 and 100")
        return value

    @field_validator("max_pixels", "max_bytes")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be a positive number")
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int) -> int:
        if not 1 <= value <= 10:
            raise ValueError("must be between 1 and 10")
        return value

    @property
    def same_bucket(self) -> bool:
        return not self.dest_bucket_name or self.dest_bucket_name == self.source_bucket_name

    @model_validator(mode="after")
    def _no_loop(self) -> ImageResizeSettings:
        if self.same_bucket and (
            self.dest_prefix.startswith(self.source_prefix) or self.source_prefix.startswith(self.dest_prefix)
        ):
            raise ValueError(
                f"dest_prefix {self.dest_prefix!r} overlaps source_prefix {self.source_prefix!r} in the same "
                "bucket: renditions would trigger the function again. Use prefixes where neither is a prefix "
                "of the other (e.g. uploads/ and resized/), or a separate dest_bucket_name"
            )
        return self
