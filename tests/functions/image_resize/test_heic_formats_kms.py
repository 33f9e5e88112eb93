"""HEIC input into several output formats, SSE-KMS buckets, and the metadata option, against moto S3."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from PIL import Image, ImageCms

from image_resize.handler import handler
from tests.functions.image_resize import corpus as C
from tests.functions.image_resize.conftest import BUCKET, REGION, Sandbox, jpeg, open_image, s3_event


def statuses(result: dict[str, Any]) -> list[str]:
    return [item["status"] for item in result["results"]]


def test_heic_upload_into_three_formats_with_one_decode(sandbox: Sandbox, lambda_context: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_FORMATS", "avif,webp,jpeg")
    key = "uploads/iphone/IMG_0001.HEIC"
    etag = sandbox.put(key, C.save(C.marked((600, 400)), "HEIF", quality=90))
    opened: list[str] = []
    original_open = Image.open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        image = original_open(*args, **kwargs)
        opened.append(str(image.format))
        return image

    monkeypatch.setattr(Image, "open", counting_open)
    result = handler(s3_event(key, etag), lambda_context)
    monkeypatch.undo()
    assert statuses(result) == ["written"]
    assert opened == ["HEIF"]  # one decode of the source for six renditions
    assert sandbox.keys("resized/") == sorted(
        f"resized/{name}/iphone/IMG_0001.{ext}" for name in ("large", "thumb") for ext in ("avif", "webp", "jpg"))
    for ext, content_type, fmt in (("avif", "image/avif", "AVIF"), ("webp", "image/webp", "WEBP"),
                                   ("jpg", "image/jpeg", "JPEG")):
        rendition = sandbox.get(f"resized/large/iphone/IMG_0001.{ext}")
        assert rendition["ContentType"] == content_type
        image = open_image(rendition["Data"])
        assert (image.format, image.size) == (fmt, (320, 213))
        pixel = image.convert("RGB").getpixel((image.width // 4, image.height // 4))
        assert all(abs(int(p) - c) < 60 for p, c in zip(pixel, C.RED, strict=True))  # upright, colours right
    (report,) = sandbox.reports()
    assert report["content"]["title"] == f"Resized {key}"


def test_original_output_of_a_heic_is_jpeg(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/IMG_0002.heic", C.save(C.marked(), "HEIF", quality=90))
    assert statuses(handler(s3_event("uploads/IMG_0002.heic", etag), lambda_context)) == ["written"]
    assert open_image(sandbox.get("resized/large/IMG_0002.jpg")["Data"]).format == "JPEG"


def test_sse_kms_buckets(sandbox: Sandbox, lambda_context: Any) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="photos")["KeyMetadata"]["KeyId"]
    sandbox.s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
        "BucketKeyEnabled": True}]})
    etag = sandbox.put("uploads/enc.jpg", jpeg())
    assert sandbox.s3.head_object(Bucket=BUCKET, Key="uploads/enc.jpg")["ServerSideEncryption"] == "aws:kms"
    assert statuses(handler(s3_event("uploads/enc.jpg", etag), lambda_context)) == ["written"]
    for key in sandbox.keys("resized/"):
        head = sandbox.s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"  # the destination bucket's default, nothing forced
        assert head["SSEKMSKeyId"].endswith(key_id)


def _exif_source() -> bytes:
    exif = Image.Exif()
    exif[0x013B] = "Ana Example"
    exif[0x8298] = "(c) 2026 Ana Example"
    exif[0x010F] = "CorpusCam"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return C.save(C.marked(), "JPEG", quality=90, exif=exif, icc_profile=profile)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_metadata_copyright_keeps_artist_copyright_and_icc_strips_gps_and_the_rest(
        fmt: str, sandbox: Sandbox, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METADATA", "copyright")
    monkeypatch.setenv("OUTPUT_FORMATS", fmt)
    etag = sandbox.put("uploads/signed.jpg", _exif_source())
    handler(s3_event("uploads/signed.jpg", etag), lambda_context)
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    image = Image.open(io.BytesIO(sandbox.get(f"resized/large/signed.{ext}")["Data"]))
    exif = image.getexif()
    assert dict(exif) == {0x013B: "Ana Example", 0x8298: "(c) 2026 Ana Example"}
    assert exif.get_ifd(0x8825) == {}
    assert image.info.get("icc_profile")


def test_metadata_strip_is_the_default(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/signed.jpg", _exif_source())
    handler(s3_event("uploads/signed.jpg", etag), lambda_context)
    image = Image.open(io.BytesIO(sandbox.get("resized/large/signed.jpg")["Data"]))
    assert dict(image.getexif()) == {}
    assert image.info.get("icc_profile")  # colours keep their profile
