"""The image pipeline over a generated corpus of camera and broken files, and the defects it found.

Every sample gives correct renditions (upright size, orientation, alpha, frames) or a permanent
rejection (``imaging.Rejected``): no other exception, whatever the file holds, and within a time bound
(a hang guard, not a speed claim). ``LIFETIME=long`` runs the bigger corpus.
"""

from __future__ import annotations

import contextlib
import io
import signal
import struct
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from PIL import GifImagePlugin, Image, ImageFile

from image_resize import imaging, vips
from image_resize.planning import RenditionSpec
from tests.functions.image_resize import corpus as C
from tests.lifetime.kit import is_long

BOX = RenditionSpec("large", 160, 160)
THUMB = RenditionSpec("thumb", 48, 48, "cover")
SAMPLES = C.corpus(long=is_long())
TIME_BOUND_S = 20  # one small file; far above the ~10 ms they take: only a hang or a runaway trips it
ALPHA_OUTPUTS = ("PNG", "WEBP", "AVIF", "GIF")


@contextlib.contextmanager
def time_bound(seconds: int) -> Iterator[None]:
    def expired(*_: Any) -> None:
        raise AssertionError(f"not finished within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def render(data: bytes, output: str = "original", specs: list[RenditionSpec] | None = None) -> list[imaging.Rendered]:
    return imaging.render(data, specs or [BOX, THUMB], output=output, quality=85, max_pixels=50_000_000)


def contain(size: tuple[int, int], box: RenditionSpec) -> tuple[int, int]:
    target = imaging.fit_size(size[0], size[1], box)
    return target.size


def near(pixel: Any, colour: tuple[int, int, int], tolerance: int = 60) -> bool:
    return all(abs(int(p) - c) <= tolerance for p, c in zip(pixel[:3], colour, strict=True))


def check_rendition(sample: C.Sample, result: imaging.Rendered) -> None:
    image = Image.open(io.BytesIO(result.data))
    assert (image.width, image.height) == contain(sample.upright, BOX), f"{sample.name}: {image.size}"
    assert getattr(image, "n_frames", 1) == sample.frames, f"{sample.name}: frames"
    frame = image.convert("RGBA")
    w, h = frame.size
    if sample.marked:
        assert near(frame.getpixel((w // 4, h // 4)), C.RED), f"{sample.name}: top-left is not red (turned?)"
        assert near(frame.getpixel((3 * w // 4, h // 4)), C.BLUE), f"{sample.name}: top-right is not blue"
    if sample.alpha and result.format in ALPHA_OUTPUTS:
        if sample.frames > 1:  # the last frame: the first may be opaque
            image.seek(sample.frames - 1)
            frame = image.convert("RGBA")
        assert frame.getpixel((7 * w // 8, 7 * h // 8))[3] < 64, f"{sample.name}: transparency lost"
        assert frame.getpixel((w // 8, h // 8))[3] > 192, f"{sample.name}: opaque part lost"


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_corpus_sample_renders_or_is_rejected(sample: C.Sample) -> None:
    for output in ("original", "webp"):
        with time_bound(TIME_BOUND_S):
            try:
                results = render(sample.data, output)
            except imaging.Rejected as exc:
                assert sample.expect != "renders", f"{sample.name} rejected: {exc.reason}"
                assert exc.reason
                continue
        assert sample.expect != "rejects", f"{sample.name} rendered, expected a rejection"
        assert [r.name for r in results] == ["large", "thumb"]
        assert (results[1].width, results[1].height) == (48, 48) or sample.expect == "either"
        if sample.expect == "renders":
            check_rendition(sample, results[0])


def test_corpus_covers_what_cameras_and_pillow_write() -> None:
    names = {s.name for s in SAMPLES}
    for fmt in ("jpeg", "tiff", "png", "webp", "avif"):
        assert {f"orient-{fmt}-{o}" for o in range(1, 9)} <= names
    assert {"heic", "heic-alpha", "heic-exif-orientation-6"} <= names
    assert {"mpo-orient-6", "png-16bit", "png-rgb-trns", "png-l-trns", "gif-animated-first-opaque",
            "webp-animated", "png-animated"} <= names
    Image.init()
    written = {s.source_format for s in SAMPLES}
    # Every format Pillow can write is in (EPS, WMF, BUFR, GRIB, HDF5 need external tools or handlers).
    assert set(Image.SAVE) - {"EPS", "WMF", "BUFR", "GRIB", "HDF5", "MPO", "AVIF"} <= written | {"AVIF"}
    assert sum(1 for s in SAMPLES if s.expect == "either") >= 300


# ------------------------------------------------------------------------------------------ defects


def test_tiff_orientation_6_is_not_squashed() -> None:
    """A 300x200 TIFF with EXIF orientation 6 is a 200x300 picture: its 160 px box is 107x160."""
    exif = Image.Exif()
    exif[0x0112] = 6
    for stored in (C.marked((300, 200)), C.marked((300, 200)).convert("CMYK")):
        large, thumb = render(C.save(stored, "TIFF", exif=exif))
        assert (large.width, large.height) == (107, 160)
        assert (thumb.width, thumb.height) == (48, 48)


def test_mpo_camera_jpeg_is_one_rotated_still_not_an_animation() -> None:
    data = C.mpo(6)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    for output in ("original", "webp", "png"):
        large, _ = render(data, output)
        assert large.frames == 1
        image = Image.open(io.BytesIO(large.data))
        assert getattr(image, "n_frames", 1) == 1
        assert image.size == (160, 107)  # upright 300x200


DECODER_ERRORS = [TypeError("bad operand"), IndexError("list index out of range"), RuntimeError("decode failed"),
                  SyntaxError("not a GIF"), struct.error("unpack_from requires a buffer"), KeyError(7),
                  ZeroDivisionError("division by zero"), Image.DecompressionBombError("too many pixels")]


@pytest.mark.parametrize("error", DECODER_ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("stage", ["open", "probe", "load", "frame"])
def test_whatever_the_decoder_raises_is_a_rejection(stage: str, error: Exception) -> None:
    data = C.animation("GIF")

    def boom(*_: Any, **__: Any) -> Any:
        raise error

    targets = {
        "open": mock.patch.object(Image, "open", boom),
        "probe": mock.patch.object(Image.Image, "getexif", boom),
        "load": mock.patch.object(ImageFile.ImageFile, "load", boom),
        "frame": mock.patch.object(GifImagePlugin.GifImageFile, "_seek", boom),
    }
    with targets[stage], pytest.raises(imaging.Rejected) as caught:
        render(data, "webp")
    assert caught.value.reason


@pytest.mark.parametrize("engine", imaging.ENGINES)
def test_a_bug_of_the_function_itself_still_raises(engine: str) -> None:
    """Only the decoder's work is turned into rejections: an error while resizing or encoding is raised."""
    data = C.save(C.marked(), "PNG")

    def run() -> None:
        imaging.render(data, [BOX, THUMB], output="original", quality=85, max_pixels=50_000_000, engine=engine)

    with mock.patch.object(imaging, "encode", side_effect=TypeError("a bug")), pytest.raises(TypeError):
        run()
    # libvips scales the largest rendition while it decodes; the smaller ones are scaled afterwards.
    owner, name = (imaging, "resize") if engine == "pillow" else (vips, "scaled")
    with mock.patch.object(owner, name, side_effect=IndexError("a bug")), pytest.raises(IndexError):
        run()
    with mock.patch.object(vips, "to_pillow", side_effect=IndexError("a bug")), pytest.raises(IndexError):
        imaging.render(data, [BOX], output="original", quality=85, max_pixels=50_000_000, engine="libvips")


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_colour_key_transparency_is_kept(mode: str) -> None:
    data = C.colour_key_png(mode)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    for output in ("original", "webp"):
        image = Image.open(io.BytesIO(render(data, output)[0].data)).convert("RGBA")
        assert image.getpixel((image.width - 1, image.height - 1))[3] == 0
        assert image.getpixel((0, 0))[3] == 255


def test_animated_gif_keeps_transparency_when_its_first_frame_is_opaque() -> None:
    data = C.animation("GIF", first_opaque=True)
    for output in ("original", "webp"):
        large = render(data, output)[0]
        image = Image.open(io.BytesIO(large.data))
        assert image.n_frames == 3
        image.seek(2)
        frame = image.convert("RGBA")
        assert frame.getpixel((frame.width - 5, frame.height - 5))[3] == 0, output
        assert frame.getpixel((5, 5))[3] == 255, output
