"""The two engines behind ``imaging.render``: Pillow, and libvips for JPEG, PNG, WebP, HEIC. Same renditions.

Same names, sizes, formats and content types; the same orientation (the red marker of the corpus' pictures
stays top-left); pixels within a small tolerance (the resampling kernels differ in rounding); the same ICC
and EXIF policy. And the choice: which sources go to libvips, which stay with Pillow.
"""

from __future__ import annotations

import io
from typing import Any
from unittest import mock

import pytest
from PIL import Image, ImageChops, ImageCms, ImageFile, ImageStat

from image_resize import imaging, vips
from image_resize.planning import RenditionSpec
from tests.functions.image_resize import corpus as C

SPECS = [RenditionSpec("large", 160, 160), RenditionSpec("medium", 90, 90),
         RenditionSpec("thumb", 48, 48, "cover")]
OUTPUTS = ["png", "webp", "jpeg"]
LIMIT = 50_000_000


def render(data: bytes, engine: str | None, *, metadata: str = "strip", max_pixels: int = LIMIT,
           output: list[str] | None = None) -> list[imaging.Rendered]:
    return imaging.render(data, SPECS, output=output or OUTPUTS, quality=90, max_pixels=max_pixels,
                          metadata=metadata, engine=engine)


def _pixels(rendered: imaging.Rendered) -> Image.Image:
    return Image.open(io.BytesIO(rendered.data)).convert("RGBA")


def assert_same_renditions(pillow: list[imaging.Rendered], libvips: list[imaging.Rendered]) -> None:
    assert [(r.name, r.format, r.content_type, r.width, r.height) for r in pillow] == [
        (r.name, r.format, r.content_type, r.width, r.height) for r in libvips]
    for a, b in zip(pillow, libvips, strict=True):
        image_a, image_b = _pixels(a), _pixels(b)
        assert image_a.size == image_b.size == (a.width, a.height)
        # What is seen (over white; the colour of fully transparent pixels is not) and the alpha channel.
        seen_a, seen_b = (Image.alpha_composite(Image.new("RGBA", i.size, "white"), i) for i in (image_a, image_b))
        difference = ImageStat.Stat(ImageChops.difference(seen_a, seen_b)).mean
        assert max(difference) < 4, (a.name, a.format, difference)


def _source(fmt: str, mode: str, orientation: int) -> bytes:
    params: dict[str, Any] = {"quality": 95} if fmt != "PNG" else {}
    if orientation != 1:
        return C.oriented(fmt, orientation, **params)
    return C.save(C.marked(mode=mode), fmt, **params)


CASES = [(fmt, mode, 1) for fmt in ("PNG", "WEBP", "JPEG", "HEIF") for mode in ("RGB", "RGBA", "L")
         if not (fmt == "JPEG" and mode == "RGBA")]
CASES += [(fmt, "RGB", orientation) for fmt in ("PNG", "WEBP", "JPEG") for orientation in (3, 5, 6, 8)]


@pytest.mark.parametrize(("fmt", "mode", "orientation"), CASES)
def test_both_engines_give_the_same_renditions(fmt: str, mode: str, orientation: int) -> None:
    data = _source(fmt, mode, orientation)
    pillow, libvips = render(data, "pillow"), render(data, "libvips")
    assert_same_renditions(pillow, libvips)
    large = _pixels(libvips[0])
    assert (large.width > large.height) == (C.UPRIGHT[0] > C.UPRIGHT[1])  # upright
    if mode != "L":
        assert C.RED[:2] == pytest.approx(large.getpixel((large.width // 4, large.height // 4))[:2], abs=40)
    if mode == "RGBA":  # alpha kept where the output has it (the clear quarter stays clear)
        png = _pixels(next(r for r in libvips if r.format == "PNG"))
        assert png.getpixel((png.width - 2, png.height - 2))[3] == 0


def _signed(fmt: str) -> bytes:
    """A wide-gamut profile (so a profile that is applied instead of kept would show) and EXIF with GPS."""
    exif = Image.Exif()
    exif[0x013B] = "Ana Example"
    exif[0x8298] = "(c) 2026 Ana Example"
    exif[0x010F] = "CorpusCam"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}
    params: dict[str, Any] = {"quality": 95} if fmt != "PNG" else {}
    return C.save(C.marked(), fmt, exif=exif, icc_profile=_PROFILE, **params)


_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_heic_exif_orientation_is_not_applied_twice_by_either_engine() -> None:
    """libheif applies HEIF's irot/imir; an EXIF Orientation inside the file is informational."""
    data = C.oriented("HEIF", 6, quality=90)
    pillow, libvips = render(data, "pillow"), render(data, "libvips")
    assert_same_renditions(pillow, libvips)
    assert (libvips[0].width, libvips[0].height) == (107, 160)  # the stored 200 x 300, not turned again


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
@pytest.mark.parametrize("metadata", ["strip", "copyright"])
def test_both_engines_keep_the_icc_profile_and_the_same_exif(fmt: str, metadata: str) -> None:
    data = _signed(fmt)
    pillow = render(data, "pillow", metadata=metadata)
    libvips = render(data, "libvips", metadata=metadata)
    assert_same_renditions(pillow, libvips)
    for rendered in libvips:
        image = Image.open(io.BytesIO(rendered.data))
        assert image.info.get("icc_profile") == _PROFILE, rendered.format
        kept = dict(image.getexif())
        if metadata == "strip":
            assert kept == {}
        else:
            assert kept == {0x013B: "Ana Example", 0x8298: "(c) 2026 Ana Example"}
        assert image.getexif().get_ifd(0x8825) == {}
    for a, b in zip(pillow, libvips, strict=True):
        assert dict(Image.open(io.BytesIO(a.data)).getexif()) == dict(Image.open(io.BytesIO(b.data)).getexif())


def _engine_used(data: bytes) -> str:
    with mock.patch.object(vips, "load_scaled", wraps=vips.load_scaled) as load:
        imaging.render(data, SPECS, output="original", quality=85, max_pixels=LIMIT)
    return "libvips" if load.called else "pillow"


@pytest.mark.parametrize(("source", "engine"), [
    (lambda: C.save(C.marked(), "PNG"), "libvips"),
    (lambda: C.save(C.marked(mode="RGBA"), "PNG"), "libvips"),
    (lambda: C.save(C.marked(mode="L"), "PNG"), "libvips"),
    (lambda: C.save(C.marked(), "WEBP", quality=90), "libvips"),
    (lambda: C.save(C.marked(mode="RGBA"), "WEBP", quality=90), "libvips"),
    (lambda: C.save(C.marked(), "JPEG", quality=90), "libvips"),
    (lambda: C.save(C.marked(mode="L"), "JPEG", quality=90), "libvips"),
    (lambda: C.save(C.marked().convert("CMYK"), "JPEG"), "pillow"),  # CMYK -> sRGB through LittleCMS
    (lambda: C.mpo(6), "pillow"),  # a camera JPEG with a second picture
    (lambda: C.save(C.marked(), "HEIF", quality=90), "libvips"),  # libheif decodes, libvips scales
    (lambda: C.save(C.marked(mode="RGBA"), "HEIF", quality=90), "libvips"),
    (lambda: C.save(C.marked(), "AVIF", quality=90), "pillow"),
    (lambda: C.save(C.marked(), "TIFF"), "pillow"),
    (lambda: C.save(C.marked().convert("P"), "GIF"), "pillow"),
    (C.sixteen_bit_png, "pillow"),
    (lambda: C.palette_png(True), "pillow"),
    (lambda: C.colour_key_png("RGB"), "pillow"),
    (lambda: C.save(C.marked(mode="RGBA").convert("LA"), "PNG"), "pillow"),
    (lambda: C.animation("PNG"), "pillow"),
    (lambda: C.animation("WEBP"), "pillow"),
])
def test_which_engine_a_source_goes_to(source: Any, engine: str) -> None:
    assert _engine_used(source()) == engine


def test_the_libvips_engine_decodes_no_pixel_with_pillow() -> None:
    """Pillow only reads the headers (size, bombs, EXIF): its PNG reader would otherwise decode the whole
    picture to look for an eXIf chunk after the pixel data."""
    data = C.oriented("PNG", 6)
    with mock.patch.object(ImageFile.ImageFile, "load", side_effect=AssertionError("Pillow decoded pixels")):
        large = render(data, None)[0]
    assert (large.width, large.height) == (160, 107)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_truncated_file_is_rejected_by_libvips_too(fmt: str) -> None:
    data = C.save(Image.effect_noise((400, 300), 60).convert("RGB"), fmt, **({"quality": 90} if fmt == "WEBP"
                                                                             else {}))
    # Pillow's WebP reader needs the whole file to read the headers; PNG's are read, libvips finds the cut.
    with pytest.raises(imaging.Rejected, match="truncated or corrupt" if fmt == "PNG" else "WEBP"):
        render(data[: len(data) * 2 // 3], "libvips")


def test_a_pixel_bomb_never_reaches_libvips() -> None:
    data = C.save(C.marked(), "PNG")
    with mock.patch.object(vips, "load_scaled", side_effect=AssertionError("decoded")), \
            pytest.raises(imaging.Rejected, match="pixel bomb"):
        render(data, None, max_pixels=10_000)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heic_and_avif_pixel_bombs_are_refused_from_the_headers(fmt: str) -> None:
    from pillow_heif.as_plugin import HeifImageFile

    data = C.save(C.marked((600, 400)), fmt, quality=80)
    decoded = AssertionError("pixels decoded")
    with mock.patch.object(ImageFile.ImageFile, "load", side_effect=decoded), \
            mock.patch.object(HeifImageFile, "load", side_effect=decoded), \
            pytest.raises(imaging.Rejected, match="pixel bomb: 600x400"):
        render(data, None, max_pixels=200_000)


def test_an_unknown_engine_is_an_error() -> None:
    with pytest.raises(ValueError, match="engine 'gpu'"):
        render(C.save(C.marked(), "PNG"), "gpu")


def test_a_missing_libvips_is_raised_not_taken_for_a_bad_file() -> None:
    vips.pyvips.cache_clear()
    try:
        with mock.patch.dict("sys.modules", {"pyvips": None}), pytest.raises(ImportError):
            render(C.save(C.marked(), "PNG"), None)
    finally:
        vips.pyvips.cache_clear()
