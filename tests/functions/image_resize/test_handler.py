"""The handler end to end against moto S3 + SNS, with real images and events shaped as AWS sends them."""

from __future__ import annotations

import io
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from image_resize import aws, handler
from tests.functions.image_resize.conftest import (
    BUCKET,
    OTHER_BUCKET,
    Sandbox,
    animated_gif,
    encode,
    eventbridge_event,
    gradient,
    jpeg,
    open_image,
    pixel_bomb,
    png_alpha,
    s3_event,
    sqs_event,
)

pytestmark = pytest.mark.usefixtures("own_role")  # every invocation under the synthesized role, moto IAM on


def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handler.handler(event, context)


def statuses(result: dict[str, Any]) -> list[str]:
    return [item["status"] for item in result["results"]]


def test_jpeg_upload_with_spaces_makes_renditions_with_metadata(sandbox: Sandbox, lambda_context: Any) -> None:
    key = "uploads/2026/My Photo.JPG"
    etag = sandbox.put(key, jpeg((600, 400), orientation=6, gps=True))
    result = run(s3_event(key, etag), lambda_context)
    assert statuses(result) == ["written"]
    assert sandbox.keys("resized/") == ["resized/large/2026/My Photo.JPG", "resized/thumb/2026/My Photo.JPG"]
    large = sandbox.get("resized/large/2026/My Photo.JPG")
    assert large["ContentType"] == "image/jpeg"
    assert large["Metadata"] == {"source-key": "uploads/2026/My%20Photo.JPG", "source-etag": etag,
                                 "rendition": "large"}
    image = open_image(large["Data"])
    assert image.size == (213, 320)  # rotated by EXIF orientation 6, fit in 320x320
    assert dict(image.getexif()) == {}
    thumb = open_image(sandbox.get("resized/thumb/2026/My Photo.JPG")["Data"])
    assert thumb.size == (64, 64)
    (report,) = sandbox.reports()
    assert report["content"]["title"] == f"Resized {key}"
    assert report["metadata"]["eventType"] == "ImageResized"
    assert "resized/thumb/2026/My Photo.JPG" in report["content"]["description"]


def test_output_format_changes_extension(sandbox: Sandbox, lambda_context: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_FORMATS", "webp")
    key = "uploads/2026/My Photo.JPG"
    etag = sandbox.put(key, jpeg())
    run(s3_event(key, etag), lambda_context)
    assert sandbox.keys("resized/") == ["resized/large/2026/My Photo.webp", "resized/thumb/2026/My Photo.webp"]
    assert sandbox.get("resized/thumb/2026/My Photo.webp")["ContentType"] == "image/webp"


@pytest.mark.parametrize(
    ("name", "data", "content_type", "mode"),
    [
        ("alpha.png", png_alpha(), "image/png", "RGBA"),
        ("anim.gif", animated_gif(), "image/gif", None),
        ("pic.webp", encode(gradient((300, 200), "RGBA"), "WEBP"), "image/webp", "RGBA"),
        ("scan.tif", encode(gradient((300, 200)).convert("CMYK"), "TIFF"), "image/png", "RGB"),
        ("pic.avif", encode(gradient((300, 200)), "AVIF"), "image/avif", "RGB"),
    ],
)
def test_formats_end_to_end(sandbox: Sandbox, lambda_context: Any, name: str, data: bytes, content_type: str,
                            mode: str | None) -> None:
    key = f"uploads/{name}"
    etag = sandbox.put(key, data)
    assert statuses(run(s3_event(key, etag), lambda_context)) == ["written"]
    out_key = "resized/large/" + (name.replace(".tif", ".png"))
    rendition = sandbox.get(out_key)
    assert rendition["ContentType"] == content_type
    if mode:
        assert open_image(rendition["Data"]).mode == mode


def test_animated_gif_rendition_is_animated(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/anim.gif", animated_gif(frames=4))
    run(s3_event("uploads/anim.gif", etag), lambda_context)
    image = Image.open(io.BytesIO(sandbox.get("resized/thumb/anim.gif")["Data"]))
    assert image.n_frames == 4


def test_alpha_png_to_jpeg_is_flattened_on_white(sandbox: Sandbox, lambda_context: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_FORMATS", "jpeg")
    etag = sandbox.put("uploads/logo.png", png_alpha())
    run(s3_event("uploads/logo.png", etag), lambda_context)
    image = open_image(sandbox.get("resized/large/logo.jpg")["Data"])
    assert image.mode == "RGB"
    assert image.getpixel((1, 1)) == pytest.approx((255, 255, 255), abs=3)


def test_unicode_key(sandbox: Sandbox, lambda_context: Any) -> None:
    key = "uploads/ünï cødé/фото №1+2.png"
    etag = sandbox.put(key, png_alpha())
    assert statuses(run(s3_event(key, etag), lambda_context)) == ["written"]
    rendition = sandbox.get("resized/thumb/ünï cødé/фото №1+2.png")
    from urllib.parse import unquote

    assert unquote(rendition["Metadata"]["source-key"]) == key


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.jpg", b"", "zero bytes"),
        ("notes.jpg", b"just some text, not a picture\n", "unrecognised magic bytes"),
        ("bomb.png", pixel_bomb(8000, 8000), "pixel bomb"),
        ("huge.png", pixel_bomb(100_000, 100_000), "pixel bomb"),
        ("cut.jpg", encode(Image.effect_noise((300, 300), 80).convert("RGB"), "JPEG")[:3000], "truncated"),
    ],
)
def test_bad_input_rejected_reported_not_retried(sandbox: Sandbox, lambda_context: Any, name: str, data: bytes,
                                                 reason: str) -> None:
    key = f"uploads/{name}"
    etag = sandbox.put(key, data)
    result = run(s3_event(key, etag, size=len(data)), lambda_context)  # no exception: not retried
    assert statuses(result) == ["rejected"]
    assert reason in result["results"][0]["reason"]
    assert sandbox.keys("resized/") == []
    (report,) = sandbox.reports()
    assert report["metadata"]["eventType"] == "ImageRejected"
    assert report["metadata"]["additionalContext"]["severity"] == "warning"


def test_over_max_bytes_rejected_without_download(sandbox: Sandbox, lambda_context: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BYTES", "1000")
    data = jpeg((400, 300))
    etag = sandbox.put("uploads/big.jpg", data)
    with mock.patch.object(aws.S3Store, "read", side_effect=AssertionError("downloaded")), \
            mock.patch.object(aws.S3Store, "read_start", side_effect=AssertionError("downloaded")):
        result = run(s3_event("uploads/big.jpg", etag), lambda_context)
    assert statuses(result) == ["rejected"]
    assert "over the limit of 1000" in result["results"][0]["reason"]


def test_event_for_the_destination_prefix_is_ignored(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("resized/thumb/a.jpg", jpeg())
    result = run(s3_event("resized/thumb/a.jpg", etag), lambda_context)
    assert statuses(result) == ["ignored"]
    assert "destination prefix" in result["results"][0]["reason"]
    assert sandbox.keys("resized/") == ["resized/thumb/a.jpg"]
    assert sandbox.reports() == []


def test_object_with_the_rendition_marker_is_ignored(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/copy.jpg", jpeg(), Metadata={"source-etag": "x", "source-key": "uploads/a.jpg"})
    result = run(s3_event("uploads/copy.jpg", etag), lambda_context)
    assert statuses(result) == ["ignored"]
    assert "marker" in result["results"][0]["reason"]


def test_repeated_event_does_not_rewrite(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/a.jpg", jpeg())
    event = s3_event("uploads/a.jpg", etag)
    assert statuses(run(event, lambda_context)) == ["written"]
    sandbox.reports()
    with mock.patch.object(aws.S3Store, "write", side_effect=AssertionError("rewritten")), \
            mock.patch.object(aws.S3Store, "read", side_effect=AssertionError("downloaded again")):
        assert statuses(run(event, lambda_context)) == ["skipped"]
    assert sandbox.reports() == []
    # A new upload (new ETag) to the same key is resized again.
    new_etag = sandbox.put("uploads/a.jpg", jpeg((500, 500)))
    assert new_etag != etag
    assert statuses(run(s3_event("uploads/a.jpg", new_etag), lambda_context)) == ["written"]
    assert sandbox.get("resized/large/a.jpg")["Metadata"]["source-etag"] == new_etag


def test_only_missing_renditions_are_made(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/a.jpg", jpeg())
    run(s3_event("uploads/a.jpg", etag), lambda_context)
    sandbox.s3.delete_object(Bucket=BUCKET, Key="resized/thumb/a.jpg")
    result = run(s3_event("uploads/a.jpg", etag), lambda_context)
    assert result["results"][0]["renditions"] == ["resized/thumb/a.jpg"]


def test_sqs_batch_reports_partial_failures(sandbox: Sandbox, lambda_context: Any) -> None:
    good = sandbox.put("uploads/good.jpg", jpeg())
    flaky = sandbox.put("uploads/flaky.jpg", jpeg())
    event = sqs_event(
        s3_event("uploads/good.jpg", good),
        s3_event("uploads/flaky.jpg", flaky),
        "this body is not JSON",
        '{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"photos-example"}',
    )
    original = aws.S3Store.read

    def throttled(self: aws.S3Store, bucket: str, key: str, etag: str) -> bytes | None:
        if key == "uploads/flaky.jpg":
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
                              "GetObject")
        return original(self, bucket, key, etag)

    with mock.patch.object(aws.S3Store, "read", throttled):
        response = run(event, lambda_context)
    # Only the throttled message is retried; the bad body and S3's test event are consumed.
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    assert sandbox.keys("resized/large/") == ["resized/large/good.jpg"]


def test_eventbridge_object_created(sandbox: Sandbox, lambda_context: Any) -> None:
    key = "uploads/2026/My Photo.JPG"
    etag = sandbox.put(key, jpeg())
    result = run(eventbridge_event(key, etag), lambda_context)
    assert statuses(result) == ["written"]
    assert "resized/large/2026/My Photo.JPG" in sandbox.keys("resized/")


def test_eventbridge_url_encoded_key_falls_back_to_decoded(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/My Photo.jpg", jpeg())
    result = run(eventbridge_event("uploads/My+Photo.jpg", etag), lambda_context)
    assert statuses(result) == ["written"]


@pytest.mark.own_role_settings(source_bucket_name=BUCKET, dest_bucket_name=OTHER_BUCKET)
def test_other_destination_bucket(sandbox: Sandbox, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEST_BUCKET", OTHER_BUCKET)
    etag = sandbox.put("uploads/a.jpg", jpeg())
    run(s3_event("uploads/a.jpg", etag), lambda_context)
    assert sandbox.keys("resized/", bucket=OTHER_BUCKET) == ["resized/large/a.jpg", "resized/thumb/a.jpg"]
    assert sandbox.keys("resized/") == []


def test_deleting_the_source_deletes_its_renditions(sandbox: Sandbox, lambda_context: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_FORMATS", "webp")
    key = "uploads/2026/My Photo.JPG"
    etag = sandbox.put(key, jpeg())
    other = sandbox.put("uploads/2026/My Photo 2.JPG", jpeg())
    run(s3_event(key, etag), lambda_context)
    run(s3_event("uploads/2026/My Photo 2.JPG", other), lambda_context)
    sandbox.reports()
    sandbox.s3.delete_object(Bucket=BUCKET, Key=key)
    result = run(s3_event(key, name="ObjectRemoved:Delete"), lambda_context)
    assert statuses(result) == ["deleted"]
    assert sorted(result["results"][0]["deleted"]) == ["resized/large/2026/My Photo.webp",
                                                        "resized/thumb/2026/My Photo.webp"]
    assert sandbox.keys("resized/") == ["resized/large/2026/My Photo 2.webp", "resized/thumb/2026/My Photo 2.webp"]
    (report,) = sandbox.reports()
    assert report["metadata"]["eventType"] == "RenditionsDeleted"
    # Repeated delete event: nothing left to delete, nothing reported.
    assert statuses(run(s3_event(key, name="ObjectRemoved:Delete"), lambda_context)) == ["ignored"]
    assert sandbox.reports() == []


def test_delete_event_keeps_renditions_when_source_was_uploaded_again(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/a.jpg", jpeg())
    run(s3_event("uploads/a.jpg", etag), lambda_context)
    result = run(eventbridge_event("uploads/a.jpg", deleted=True), lambda_context)
    assert statuses(result) == ["skipped"]  # the source exists: its renditions are checked, already up to date
    assert len(sandbox.keys("resized/")) == 2


def test_delete_event_ignored_when_deleting_is_off(sandbox: Sandbox, lambda_context: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELETE_RENDITIONS", "false")
    etag = sandbox.put("uploads/a.jpg", jpeg())
    run(s3_event("uploads/a.jpg", etag), lambda_context)
    sandbox.s3.delete_object(Bucket=BUCKET, Key="uploads/a.jpg")
    assert statuses(run(s3_event("uploads/a.jpg", name="ObjectRemoved:Delete"), lambda_context)) == ["ignored"]
    assert len(sandbox.keys("resized/")) == 2


def test_object_gone_before_processing_is_ignored(sandbox: Sandbox, lambda_context: Any) -> None:
    assert statuses(run(s3_event("uploads/gone.jpg", "abc"), lambda_context)) == ["ignored"]


def test_transient_s3_error_raises_for_retry(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/a.jpg", jpeg())
    error = ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}},
                        "PutObject")
    with mock.patch.object(aws.S3Store, "write", side_effect=error), pytest.raises(ClientError):
        run(s3_event("uploads/a.jpg", etag), lambda_context)


def test_unknown_event_is_logged_not_raised(sandbox: Sandbox, lambda_context: Any) -> None:
    assert run({"hello": "world"}, lambda_context)["results"] == []
