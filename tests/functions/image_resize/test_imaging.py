"""The pure image pipeline: formats, orientation, metadata, colour, alpha, animation, bad input."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageCms

from image_resize import imaging
from image_resize.planning import RenditionSpec
from tests.functions.image_resize.conftest import (
    animated_gif,
    encode,
    gradient,
    jpeg,
    open_image,
    pixel_bomb,
    png_alpha,
)

SPECS = [RenditionSpec("large", 160, 160), RenditionSpec("thumb", 48, 48, "cover")]
LIMIT = 50_000_000


def render(data: bytes, output: str = "original", specs: list[RenditionSpec] | None = None,
           max_pixels: int = LIMIT) -> list[imaging.Rendered]:
    return imaging.render(data, specs or SPECS, output=output, quality=85, max_pixels=max_pixels)


SOURCES = {
    "JPEG": lambda: jpeg(),
    "PNG": lambda: png_alpha(),
    "GIF": lambda: encode(gradient((300, 200)).convert("P"), "GIF"),
    "WEBP": lambda: encode(gradient((300, 200), "RGBA"), "WEBP", quality=90),
    "TIFF": lambda: encode(gradient((300, 200)), "TIFF"),
    "AVIF": lambda: encode(gradient((300, 200)), "AVIF", quality=80),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("output", ["original", "jpeg", "webp", "png", "avif"])
def test_every_format_into_every_output(source: str, output: str) -> None:
    data = SOURCES[source]()
    assert imaging.sniff(data[:64]) == source
    results = render(data, output)
    expected = imaging.output_format(source, output)
    assert [r.name for r in results] == ["large", "thumb"]
    for result in results:
        image = open_image(result.data)
        assert image.format == expected
        assert result.content_type == Image.MIME[expected]
        assert (image.width, image.height) == (result.width, result.height)
    large, thumb = results
    assert max(large.width, large.height) == 160  # contain: the long side fills the box
    assert (thumb.width, thumb.height) == (48, 48)  # cover: fills the box, centre-cropped


def test_original_keeps_format_except_tiff_becomes_png() -> None:
    assert imaging.output_format("JPEG", "original") == "JPEG"
    assert imaging.output_format("TIFF", "original") == "PNG"
    assert imaging.output_format("PNG", "webp") == "WEBP"


def test_never_upscales() -> None:
    small = jpeg((40, 30))
    large, thumb = render(small)
    assert (large.width, large.height) == (40, 30)
    assert (thumb.width, thumb.height) == (40, 30)  # cover of a smaller image: no upscale, no crop needed


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied_then_exif_and_gps_stripped(orientation: int) -> None:
    data = jpeg((300, 200), orientation=orientation, gps=True)
    source = open_image(data)
    assert source.getexif().get(0x0112) == orientation
    assert source.getexif().get_ifd(0x8825)
    large = render(data)[0]
    image = open_image(large.data)
    if orientation in (6, 8):
        assert (image.width, image.height) == (107, 160)  # 200x300 once rotated
    else:
        assert (image.width, image.height) == (160, 107)
    assert "exif" not in image.info
    assert dict(image.getexif()) == {}
    # The pixels are the transposed source, not the stored orientation.
    from PIL import ImageOps

    expected = ImageOps.exif_transpose(source).resize(image.size)
    difference = ImageChops.difference(expected.convert("RGB"), image.convert("RGB"))
    assert max(high for _, high in difference.getextrema()) < 60


def test_cmyk_becomes_rgb() -> None:
    cmyk = gradient((200, 120)).convert("CMYK")
    large = render(encode(cmyk, "JPEG", quality=90), "original")[0]
    assert open_image(large.data).mode == "RGB"


def test_cmyk_with_an_unusable_icc_profile_falls_back_to_plain_conversion() -> None:
    # No CMYK ICC profile ships with Pillow or this machine (ImageCms can only create sRGB/LAB/XYZ), so the
    # LittleCMS path is not exercised here: a damaged profile must still give an RGB rendition, without it.
    cmyk = gradient((200, 120)).convert("CMYK")
    data = encode(cmyk, "TIFF", icc_profile=b"not really a profile")
    large = render(data, "jpeg")[0]
    image = open_image(large.data)
    assert image.mode == "RGB"
    assert "icc_profile" not in image.info


def test_rgb_icc_profile_is_kept() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(gradient((200, 120)), "JPEG", quality=90, icc_profile=profile)
    for output in ("original", "png", "webp"):
        large = render(data, output)[0]
        assert open_image(large.data).info.get("icc_profile") == profile


def test_alpha_flattened_onto_white_for_jpeg_and_kept_for_png_webp_avif() -> None:
    data = png_alpha((240, 160))  # transparent border, opaque centre
    as_jpeg = open_image(render(data, "jpeg")[0].data).convert("RGB")
    assert as_jpeg.getpixel((2, 2)) == pytest.approx((255, 255, 255), abs=3)
    for output in ("png", "webp", "avif"):
        image = open_image(render(data, output)[0].data)
        assert image.mode == "RGBA", output
        assert image.getpixel((2, 2))[3] < 10
        assert image.getpixel((80, 53))[3] > 245


def test_palette_with_transparency_keeps_alpha() -> None:
    image = gradient((120, 80), "RGBA").convert("P")  # Pillow stores alpha as a transparency index/table
    data = encode(image, "PNG")
    result = open_image(render(data, "png")[0].data)
    assert result.mode in ("RGBA", "P")


def test_animated_gif_keeps_every_frame_as_gif_and_webp() -> None:
    data = animated_gif(frames=4)
    for output, fmt in (("original", "GIF"), ("webp", "WEBP")):
        large, thumb = render(data, output)
        for result in (large, thumb):
            image = Image.open(io.BytesIO(result.data))
            assert image.format == fmt
            assert getattr(image, "n_frames", 1) == 4
            assert result.frames == 4
        assert (thumb.width, thumb.height) == (48, 48)


def test_animated_gif_to_jpeg_png_avif_takes_the_first_frame() -> None:
    data = animated_gif(frames=3)
    for output in ("jpeg", "png", "avif"):
        large = render(data, output)[0]
        assert large.frames == 1
        image = open_image(large.data).convert("RGB")
        assert image.getpixel((10, 10)) == pytest.approx((0, 255, 40), abs=8)


def test_animation_over_the_pixel_budget_falls_back_to_the_first_frame() -> None:
    data = animated_gif((100, 100), frames=5)  # 50,000 pixels over all frames
    large = render(data, "original", max_pixels=30_000)[0]
    assert large.frames == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is a text file named photo.jpg\n", "unrecognised magic bytes"),
        (jpeg()[:400], "JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PNG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "cannot read the HEIF headers"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00isommp42", "video and other ISO media"),
    ],
    ids=["zero-bytes", "text", "truncated-jpeg-header", "png-garbage", "heic-header-only", "mp4"],
)
def test_bad_input_is_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(imaging.Rejected, match=reason):
        render(data)


def test_truncated_pixel_data_is_rejected() -> None:
    data = encode(Image.effect_noise((400, 400), 80).convert("RGB"), "JPEG", quality=95)
    with pytest.raises(imaging.Rejected, match="truncated or corrupt"):
        render(data[: len(data) // 2])


def test_pixel_bomb_over_the_limit_is_rejected_before_decoding() -> None:
    bomb = pixel_bomb(8000, 8000)  # 64 MP claimed by a 70-byte file
    assert len(bomb) < 200
    with pytest.raises(imaging.Rejected, match="pixel bomb: 8000x8000"):
        render(bomb)


def test_huge_pixel_bomb_stopped_by_pillow_check_too() -> None:
    with pytest.raises(imaging.Rejected, match="pixel bomb"):
        render(pixel_bomb(100_000, 100_000))


def test_jpeg_draft_mode_decodes_at_reduced_scale() -> None:
    data = jpeg((1600, 1200))
    image = Image.open(io.BytesIO(data))
    info = imaging.probe(image, "JPEG", LIMIT)
    targets = imaging._targets(info.width, info.height, SPECS)
    decoded = imaging._decode(image, info, targets)
    assert decoded.size == (200, 150)  # 1/8 scale still covers the 160 px box
    large = render(data)[0]
    assert (large.width, large.height) == (160, 120)


@pytest.mark.parametrize(("source_size", "size"), [((2400, 1800), (1000, 750)), ((3000, 2000), (2048, 1365))])
def test_banded_resize_matches_a_whole_resize(source_size: tuple[int, int], size: tuple[int, int]) -> None:
    source = Image.effect_noise(source_size, 60).convert("RGB")
    banded = imaging.resize(source, size)
    whole = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    extrema = ImageChops.difference(banded, whole).getextrema()
    assert max(high for _, high in extrema) <= 1  # float rounding only: no seams


SIDES = st.integers(min_value=1, max_value=5000)


@settings(max_examples=150, deadline=None)
@given(width=SIDES, height=SIDES, box_w=SIDES, box_h=SIDES, fit=st.sampled_from(["contain", "cover"]))
def test_fit_size_never_upscales_and_respects_the_box(width: int, height: int, box_w: int, box_h: int,
                                                       fit: str) -> None:
    spec = RenditionSpec("r", box_w, box_h, fit)  # type: ignore[arg-type]
    target = imaging.fit_size(width, height, spec)
    scaled_w, scaled_h = target.size
    assert 1 <= scaled_w <= width and 1 <= scaled_h <= height
    final = (target.crop[2] - target.crop[0], target.crop[3] - target.crop[1]) if target.crop else target.size
    if fit == "contain":
        assert target.crop is None
        assert scaled_w <= box_w or scaled_w == 1
        assert scaled_h <= box_h or scaled_h == 1
    else:
        assert final[0] <= box_w and final[1] <= box_h
        assert final[0] == min(box_w, scaled_w) and final[1] == min(box_h, scaled_h)


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"]),
    output=st.sampled_from(["original", "jpeg", "png", "webp"]),
)
def test_every_image_mode_renders(mode: str, output: str) -> None:
    image = gradient((64, 48)).convert("RGBA" if mode in ("LA", "RGBA") else "RGB")
    image = image.convert(mode) if mode not in ("I;16", "I", "F") else image.convert("L").convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I;16", "I", "F", "YCbCr", "LA") else "PNG"
    results = render(encode(image, fmt), output)
    assert open_image(results[0].data).size == (64, 48)
