"""Pure image work with Pillow: sniff the type, check the size, decode once, derive every rendition.

No AWS and no environment here. The pipeline for one source image:

1. ``sniff`` the type from the magic bytes (the key's extension is never trusted);
2. open lazily (headers only) and reject pixel bombs before anything is decoded;
3. for JPEG, ask the decoder for DCT scaling (``draft``) to the smallest size that still covers the
   largest rendition, so a 24 MP photo is decoded at 1/2, 1/4 or 1/8 of its size;
4. apply the EXIF orientation, normalise the colour (CMYK -> sRGB, palettes -> RGB/RGBA, 16-bit -> 8-bit);
5. resize largest rendition first, deriving each smaller one from the previous result when it is big
   enough (``resize(..., reducing_gap=2.0)`` runs ``reduce()`` before the final Lanczos pass);
6. encode without EXIF/XMP (GPS included); keep the ICC profile of RGB/grey sources.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image, ImageCms, ImageOps, ImageSequence

from image_resize import vips
from image_resize.planning import CONTENT_TYPES, RenditionSpec

SNIFF_BYTES = 64
WHITE = (255, 255, 255)
ANIMATED_OUTPUTS = ("GIF", "WEBP")
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)
# Readers that apply the EXIF orientation themselves: their ``size`` is already upright.
_SELF_ORIENTING = ("TIFF", "HEIF")
# Readers whose extra frames are not an animation (the second picture of a camera's MPO JPEG, TIFF pages).
_STILL_FORMATS = ("MPO", "TIFF", "HEIF")
# What ImageOps.exif_transpose does for each orientation (applied per frame of an animation).
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_MAX_FRAMES = 1000
BAND_ROWS = 256
BAND_MIN_PIXELS = 4_000_000
# The engine that decodes and resizes each source format, chosen by the figures of
# benchmarks/image_resize.py (docs/image_resize.md): libvips for JPEG, PNG, WebP and HEIC/HEIF (libheif
# decodes, libvips scales), faster than the Pillow engine on each and with less memory on PNG, WebP and HEIC;
# Pillow for the rest (TIFF, GIF, AVIF, animations, and the modes _uses_vips leaves to it).
VIPS_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "HEIF"})
ENGINES = ("pillow", "libvips")


class Rejected(Exception):
    """The input is permanently unusable (not an image, truncated, a pixel bomb ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextlib.contextmanager
def decoding(what: str) -> Iterator[None]:
    """Pillow's decoders at work on untrusted bytes: whatever they raise means a bad file (``Rejected``).

    Pillow's readers answer hostile files with OSError and ValueError, but also TypeError, IndexError,
    KeyError, RuntimeError (AVIF), SyntaxError, struct.error, ZeroDivisionError and DecompressionBombError
    (seeking a frame). Only decoder calls run inside this block (open, headers, pixels, frames, EXIF), so
    an error of the function itself (resizing, encoding, S3) is still raised. MemoryError is raised too:
    more memory may help, and the event is kept in the failure destination.
    """
    try:
        yield
    except (Rejected, MemoryError):
        raise
    except Image.DecompressionBombError as exc:
        raise Rejected(f"pixel bomb: {exc}") from None
    except Exception as exc:  # any decoder error is a property of the file (see the docstring)
        raise Rejected(f"{what}: {type(exc).__name__}: {exc}"[:500]) from None


@dataclass(frozen=True)
class Rendered:
    """One encoded rendition."""

    name: str
    data: bytes
    width: int
    height: int
    format: str
    content_type: str
    frames: int = 1


@dataclass(frozen=True)
class Target:
    """Where a rendition ends up: the whole image scaled to ``size``, then cropped to ``crop`` (or not)."""

    spec: RenditionSpec
    size: tuple[int, int]
    crop: tuple[int, int, int, int] | None


def sniff(head: bytes) -> str | None:
    """The Pillow format name of ``head`` (the first bytes of a file), or None when it is no supported image."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[0:4], "big")
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)]
        if b"avif" in brands or b"avis" in brands:
            return "AVIF"
        if any(brand in HEIF_BRANDS for brand in brands):
            return "HEIF"
    return None


# HEIF image brands (ISO/IEC 23008-12): HEVC-coded images and sequences, and the structural brands.
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})


@functools.cache
def _register_heif() -> None:
    """pillow-heif (libheif + libde265) as Pillow's HEIF reader; imported only for HEIF sources (cold start)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def describe_unknown(head: bytes) -> str:
    """A reason for a file ``sniff`` did not recognise."""
    if not head:
        return "the object is empty (zero bytes)"
    if head[4:8] == b"ftyp":
        return f"ISO media of brand {head[8:12].decode('latin-1')!r} (video and other ISO media are not supported)"
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        return "BigTIFF is not supported"
    return "not a supported image (JPEG, PNG, GIF, WebP, TIFF, AVIF, HEIC/HEIF): unrecognised magic bytes"


def fit_size(width: int, height: int, spec: RenditionSpec) -> Target:
    """Size of the whole image for ``spec`` (never larger than the source) and the centre crop for ``cover``."""
    if spec.fit == "cover":
        scale = min(max(spec.width / width, spec.height / height), 1.0)
    else:
        scale = min(spec.width / width, spec.height / height, 1.0)
    size = (max(1, min(width, round(width * scale))), max(1, min(height, round(height * scale))))
    crop = None
    if spec.fit == "cover":
        cw, ch = min(spec.width, size[0]), min(spec.height, size[1])
        if (cw, ch) != size:
            left, top = (size[0] - cw) // 2, (size[1] - ch) // 2
            crop = (left, top, left + cw, top + ch)
    return Target(spec=spec, size=size, crop=crop)


@dataclass(frozen=True)
class Probe:
    """What the headers say, before any pixel is decoded. ``width``/``height`` are the upright size."""

    format: str
    width: int
    height: int
    frames: int
    orientation: int
    stored_size: tuple[int, int] = (0, 0)


def _open(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    # Pillow refuses to open images over 2 x MAX_IMAGE_PIXELS (and warns over 1x); our own check runs
    # next with the configured limit, so let Pillow's sit above it.
    Image.MAX_IMAGE_PIXELS = max(max_pixels, 1)
    if fmt == "HEIF":
        _register_heif()
    with decoding(f"cannot read the {fmt} headers"), warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)  # Pillow's "corrupt EXIF" warnings: the file is judged here
        return Image.open(BytesIO(data), formats=[fmt])


def _exif(image: Image.Image, headers_only: bool) -> Image.Exif:
    """The EXIF block; ``headers_only``: the one the headers carried, without decoding any pixel (Pillow's
    PNG reader otherwise decodes the whole picture to look for an eXIf chunk after the pixel data)."""
    return Image.Image.getexif(image) if headers_only else image.getexif()


def probe(image: Image.Image, fmt: str, max_pixels: int, *, headers_only: bool = False) -> Probe:
    width, height = image.size
    if width < 1 or height < 1:
        raise Rejected(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise Rejected(f"pixel bomb: {width}x{height} = {width * height} pixels is over the limit of {max_pixels}")
    with decoding(f"corrupt {fmt} structure"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frames = 1 if image.format in _STILL_FORMATS else int(getattr(image, "n_frames", 1))
        orientation = int(_exif(image, headers_only).get(0x0112, 1) or 1)
    if orientation not in range(1, 9):
        orientation = 1
    stored = (width, height)
    if orientation in _TRANSPOSED_ORIENTATIONS and fmt not in _SELF_ORIENTING:
        width, height = height, width
    return Probe(format=fmt, width=width, height=height, frames=frames, orientation=orientation,
                 stored_size=stored)



@dataclass(frozen=True)
class Decoded:
    """A source decoded once and resized for every spec: a still picture or the frames of an animation."""

    stills: dict[str, Image.Image]  # spec name -> the rendition's pixels (the first frame of an animation)
    icc: bytes | None
    kept_exif: bytes | None  # the EXIF fields kept by the metadata option, or None
    frames: dict[str, list[Image.Image]] | None = None  # spec name -> every frame, when animated
    durations: tuple[int, ...] = ()
    loop: int = 0


def render(
    data: bytes,
    specs: Sequence[RenditionSpec],
    *,
    output: str | Sequence[str],
    quality: int,
    max_pixels: int,
    metadata: str = "strip",
    engine: str | None = None,
) -> list[Rendered]:
    """Every rendition of ``data`` (an image file's bytes) in each ``output`` format ('original' keeps the
    source's), decoded once. ``metadata``: ``strip`` writes no EXIF/XMP; ``copyright`` keeps the Copyright
    and Artist EXIF fields (the ICC profile of RGB and grey sources is kept either way). ``engine``:
    ``pillow`` or ``libvips`` to decode and resize with; None: the one chosen for the format
    (``VIPS_FORMATS``). Both give the same renditions.

    Raises ``Rejected`` for input that will never work. The result is ordered by spec, then by format.
    """
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is None:
        raise Rejected(describe_unknown(data[:SNIFF_BYTES]))
    outputs = [output] if isinstance(output, str) else list(output)
    formats = list(dict.fromkeys(output_format(fmt, o) for o in outputs))
    with _open(data, fmt, max_pixels) as image:
        with_vips = _uses_vips(image, fmt, engine)
        info = probe(image, fmt, max_pixels, headers_only=with_vips)
        animate = (
            info.frames > 1
            and any(_animates(out, fmt) for out in formats)
            and info.frames <= _MAX_FRAMES
            and info.frames * info.width * info.height <= max_pixels
        )
        if animate:
            decoded = _decode_animation(image, info, specs)
        elif with_vips:
            decoded = _decode_still_vips(data, image, info, specs)
        else:
            decoded = _decode_still(image, info, specs)
        kept = _kept_exif(image, headers_only=with_vips) if metadata == "copyright" else None
    decoded = Decoded(decoded.stills, decoded.icc, kept, decoded.frames, decoded.durations, decoded.loop)
    return [_encoded(spec, out, decoded, fmt, quality) for spec in specs for out in formats]


def _animates(out_format: str, source_format: str) -> bool:
    return out_format in ANIMATED_OUTPUTS or out_format == source_format == "PNG"  # APNG stays APNG


# EXIF fields the ``copyright`` metadata option keeps: Artist, Copyright.
KEPT_EXIF_TAGS = (0x013B, 0x8298)


def _kept_exif(image: Image.Image, *, headers_only: bool = False) -> bytes | None:
    with decoding("corrupt EXIF"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        source = _exif(image, headers_only)
        kept = Image.Exif()
        for tag in KEPT_EXIF_TAGS:
            value = source.get(tag)
            if isinstance(value, str) and value.strip():
                kept[tag] = value
    return kept.tobytes() if len(kept) else None


def _encoded(spec: RenditionSpec, out_format: str, decoded: Decoded, source_format: str, quality: int) -> Rendered:
    if decoded.frames is not None and _animates(out_format, source_format):
        frames = decoded.frames[spec.name]
        data = encode_animation(frames, out_format, quality, list(decoded.durations), decoded.loop,
                                exif=decoded.kept_exif)
        first = frames[0]
        return Rendered(name=spec.name, data=data, width=first.width, height=first.height, format=out_format,
                        content_type=CONTENT_TYPES[out_format], frames=len(frames))
    still = decoded.stills[spec.name]
    data = encode(still, out_format, quality, decoded.icc, exif=decoded.kept_exif)
    return Rendered(name=spec.name, data=data, width=still.width, height=still.height, format=out_format,
                    content_type=CONTENT_TYPES[out_format])


def output_format(source_format: str, setting: str) -> str:
    """The Pillow format a rendition is written in (TIFF sources become PNG; HEIF ones JPEG, for browsers)."""
    if setting == "original":
        return {"TIFF": "PNG", "HEIF": "JPEG"}.get(source_format, source_format)
    return setting.upper()


def _targets(width: int, height: int, specs: Sequence[RenditionSpec]) -> list[Target]:
    targets = [fit_size(width, height, spec) for spec in specs]
    return sorted(targets, key=lambda t: t.size[0] * t.size[1], reverse=True)


def _decode(image: Image.Image, info: Probe, targets: list[Target]) -> Image.Image:
    """Load the first frame, at reduced scale when the decoder can (JPEG DCT scaling)."""
    largest = targets[0].size
    if info.format == "JPEG":
        if info.orientation in _TRANSPOSED_ORIENTATIONS:
            largest = (largest[1], largest[0])
        # draft() picks the largest DCT scale (1/1, 1/2, 1/4, 1/8) whose result still covers the request.
        image.draft(image.mode, (max(1, largest[0]), max(1, largest[1])))
    with decoding(f"truncated or corrupt {info.format} data"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # reads the (untrusted) EXIF block
    return image


# Mode -> (mode to convert to, whether the ICC profile still applies). L, RGB and RGBA stay as they are.
_CONVERSIONS = {"LA": ("RGBA", False), "La": ("RGBA", False), "1": ("L", True), "F": ("L", True),
                "RGBa": ("RGBA", True)}


def _cmyk_to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            converted = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None
        if isinstance(converted, Image.Image):
            return converted
    return image.convert("RGB")


def _normalise(image: Image.Image) -> tuple[Image.Image, bytes | None]:
    """Colours in L / RGB / RGBA; returns the ICC profile to keep (None: sRGB)."""
    icc = image.info.get("icc_profile") or None
    mode = image.mode
    if mode in ("L", "RGB", "1") and "transparency" in image.info:
        # A tRNS colour key: the key colour becomes transparent (Pillow's convert applies it).
        return image.convert("RGBA"), icc if mode == "RGB" else None
    if mode == "CMYK":
        return _cmyk_to_srgb(image, icc), None
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB"), None
    if mode.startswith("I;16") or mode == "I":
        return image.convert("I").point(lambda v: v / 256).convert("L"), icc
    if mode in ("L", "RGB", "RGBA"):
        return image, icc
    target, keeps_icc = _CONVERSIONS.get(mode, ("RGB", False))
    return image.convert(target), icc if keeps_icc else None


def resize(source: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Lanczos resize with ``reduce()`` first where the ratio allows, in horizontal bands for big sources.

    Pillow resizes in two passes and keeps a (new width x old height) intermediate; in bands that
    intermediate stays small. The ``box`` argument keeps the bands seamless: the filter still reads the
    rows around each band, so the result matches one whole-image resize (to +-1 from float rounding).
    """
    width, height = size
    if source.width * source.height <= BAND_MIN_PIXELS or height < 2 * BAND_ROWS:
        return source.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(source.mode)
    work = source.convert(premultiplied) if premultiplied else source
    out = Image.new(work.mode, size)
    # Bands of at least BAND_ROWS rows: for very short outputs Pillow runs its two passes in the other
    # order, which rounds differently.
    count = max(1, height // BAND_ROWS)
    edges = [round(i * height / count) for i in range(count + 1)]
    for top, bottom in itertools.pairwise(edges):
        box_top = top * source.height / height
        box_bottom = source.height if bottom == height else bottom * source.height / height
        band = work.resize(
            (width, bottom - top), Image.Resampling.LANCZOS, box=(0, box_top, source.width, box_bottom),
            reducing_gap=2.0,
        )
        out.paste(band, (0, top))
    return out.convert(source.mode) if premultiplied else out


def _resize_chain(base: Image.Image, targets: list[Target]) -> dict[str, Image.Image]:
    """Largest first; each rendition resized from the smallest already-made image that still covers it."""
    results: dict[str, Image.Image] = {}
    made: list[Image.Image] = [base]
    for target in targets:
        source = base
        for candidate in reversed(made):
            if candidate.width >= target.size[0] and candidate.height >= target.size[1]:
                source = candidate
                break
        if source.size == target.size:
            scaled = source
        else:
            scaled = resize(source, target.size)
            made.append(scaled)
        results[target.spec.name] = scaled.crop(target.crop) if target.crop else scaled
    return results


def _uses_vips(image: Image.Image, fmt: str, engine: str | None) -> bool:
    """Whether libvips decodes and resizes this source: 8-bit L/RGB/RGBA still pictures without a colour
    key of the ``VIPS_FORMATS`` (or any such with ``engine="libvips"``); everything else goes to Pillow."""
    if engine not in (None, *ENGINES):
        raise ValueError(f"engine {engine!r} is not one of {ENGINES}")
    wanted = engine == "libvips" if engine else fmt in VIPS_FORMATS
    return (
        wanted
        and fmt in ("PNG", "WEBP", "JPEG", "HEIF")
        and image.mode in ("L", "RGB", "RGBA")
        and "transparency" not in image.info
        and int(getattr(image, "n_frames", 1)) == 1
    )


def _decode_still_vips(data: bytes, image: Image.Image, info: Probe, specs: Sequence[RenditionSpec]) -> Decoded:
    """libvips decodes while it scales to the largest rendition; each smaller one is scaled from the previous
    one. Orientation (from the EXIF the headers carried) and cropping are applied here, as on the Pillow path."""
    vips.pyvips()  # loaded outside ``decoding``: a layer without libvips is raised, not taken for a bad file
    targets = _targets(info.width, info.height, specs)
    transposed = info.orientation in _TRANSPOSED_ORIENTATIONS and info.format not in _SELF_ORIENTING
    method = _ORIENT.get(info.orientation) if info.format not in _SELF_ORIENTING else None
    stills: dict[str, Image.Image] = {}
    current: Any = None
    for target in targets:
        stored = (target.size[1], target.size[0]) if transposed else target.size
        if current is None:
            with decoding(f"truncated or corrupt {info.format} data"):
                current = vips.load_scaled(data, stored, info.format)
        else:
            current = vips.scaled(current, stored)
        still = vips.to_pillow(current)
        if method is not None:
            still = still.transpose(method)
        stills[target.spec.name] = still.crop(target.crop) if target.crop else still
    icc = image.info.get("icc_profile") or None
    return Decoded(stills=stills, icc=icc, kept_exif=None)


def _decode_still(image: Image.Image, info: Probe, specs: Sequence[RenditionSpec]) -> Decoded:
    width, height = info.width, info.height
    targets = _targets(width, height, specs)
    decoded = _decode(image, info, targets)
    base, icc = _normalise(decoded)
    if base.size != (width, height):
        # Draft mode decoded at a reduced scale: targets are relative to the decoded size now.
        targets = _targets_for_decoded(targets, (width, height), base.size)
    return Decoded(stills=_resize_chain(base, targets), icc=icc, kept_exif=None)


def _targets_for_decoded(targets: list[Target], full: tuple[int, int], decoded: tuple[int, int]) -> list[Target]:
    """Keep every target's output size; the decoded image is only the (bigger or equal) source to scale from."""
    adjusted = []
    for target in targets:
        size = (min(target.size[0], decoded[0]), min(target.size[1], decoded[1]))
        crop = target.crop
        if crop and size != target.size:
            crop = None
            cw = min(target.spec.width, size[0])
            ch = min(target.spec.height, size[1])
            if (cw, ch) != size:
                left, top = (size[0] - cw) // 2, (size[1] - ch) // 2
                crop = (left, top, left + cw, top + ch)
        adjusted.append(Target(spec=target.spec, size=size, crop=crop))
    return adjusted


def _decode_animation(image: Image.Image, info: Probe, specs: Sequence[RenditionSpec]) -> Decoded:
    targets = _targets(info.width, info.height, specs)
    frames: list[Image.Image] = []
    durations: list[int] = []
    method = _ORIENT.get(info.orientation) if info.format not in _SELF_ORIENTING else None
    with decoding(f"truncated or corrupt {info.format} animation"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for frame in ImageSequence.Iterator(image):
            durations.append(int(frame.info.get("duration", 100) or 100))
            rgba = frame.convert("RGBA")
            frames.append(rgba.transpose(method) if method is not None else rgba)
        loop = int(image.info.get("loop", 0) or 0)
    per_frame = [_resize_chain(frame, targets) for frame in frames]
    by_spec = {spec.name: [chain[spec.name] for chain in per_frame] for spec in specs}
    return Decoded(stills={name: images[0] for name, images in by_spec.items()}, icc=None, kept_exif=None,
                   frames=by_spec, durations=tuple(durations), loop=loop)


def _flatten(image: Image.Image) -> Image.Image:
    """Alpha composited onto white (for formats without alpha)."""
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, WHITE)
        background.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        return background
    if image.mode not in ("RGB", "L"):
        return image.convert("RGB")
    return image


def _gif_frame(image: Image.Image) -> Image.Image:
    """A palette image; pixels under half opacity become the transparent index 255."""
    if image.mode != "RGBA":
        return image.convert("RGB").quantize(colors=256)
    alpha = image.getchannel("A")
    paletted = _flatten(image).convert("RGB").quantize(colors=255)
    low, _ = alpha.getextrema()
    if isinstance(low, int | float) and low < 128:
        paletted.paste(255, mask=alpha.point(lambda a: 255 if a < 128 else 0))
        paletted.info["transparency"] = 255
    return paletted


def _params(out_format: str, quality: int, icc: bytes | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if out_format == "JPEG":
        params = {"quality": quality, "optimize": True, "progressive": True}
    elif out_format == "WEBP":
        params = {"quality": quality, "method": 4}
    elif out_format == "AVIF":
        params = {"quality": quality, "speed": 8}
    elif out_format == "PNG":
        params = {"compress_level": 6}
    if icc and out_format != "GIF":
        params["icc_profile"] = icc
    return params


def encode(image: Image.Image, out_format: str, quality: int, icc: bytes | None = None, *,
           exif: bytes | None = None) -> bytes:
    """``image`` as ``out_format`` bytes: no EXIF/XMP but ``exif`` (the kept fields), the ICC profile when given."""
    if out_format == "JPEG":
        image = _flatten(image)
    elif out_format in ("WEBP", "AVIF") and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
        icc = None
    elif out_format == "GIF":
        image = _gif_frame(image)
    if icc and image.mode not in ("RGB", "RGBA", "L"):
        icc = None
    # Drop everything the source carried (exif, xmp, comments, dpi ...): only explicit parameters are written.
    transparency = image.info.get("transparency") if out_format == "GIF" else None
    image.info = {}
    params = _params(out_format, quality, icc)
    if transparency is not None:
        params["transparency"] = transparency
    if exif and out_format != "GIF":
        params["exif"] = exif
    buffer = BytesIO()
    image.save(buffer, format=out_format, **params)
    return buffer.getvalue()


def encode_animation(
    frames: list[Image.Image], out_format: str, quality: int, durations: list[int], loop: int, *,
    exif: bytes | None = None,
) -> bytes:
    """An animated GIF or WebP of ``frames``."""
    buffer = BytesIO()
    if out_format == "GIF":
        paletted = [_gif_frame(frame) for frame in frames]
        # One transparent index for every frame: a later frame's transparency counts even when the first
        # frame is opaque (_gif_frame keeps index 255 free in every RGBA frame).
        transparent = any("transparency" in frame.info for frame in paletted)
        for frame in paletted:
            frame.info = {}
        params: dict[str, Any] = {"save_all": True, "append_images": paletted[1:], "duration": durations,
                                  "loop": loop, "disposal": 2, "optimize": False}
        if transparent:
            params["transparency"] = 255
        paletted[0].save(buffer, format="GIF", **params)
    else:
        for frame in frames:
            frame.info = {}
        extra: dict[str, Any] = {"quality": quality} if out_format == "WEBP" else {"compress_level": 6}
        if exif:
            extra["exif"] = exif
        frames[0].save(buffer, format=out_format, save_all=True, append_images=frames[1:], duration=durations,
                       loop=loop, **extra)
    return buffer.getvalue()


def decoded_bytes(width: int, height: int, mode: str = "RGB") -> int:
    """Bytes of a decoded image (Pillow stores 1, 2 or 4 bytes per pixel; RGB takes 4)."""
    per_pixel = {"1": 1, "L": 1, "P": 1, "LA": 4, "RGB": 4, "RGBA": 4, "CMYK": 4}.get(mode, 4)
    return math.prod((width, height, per_pixel))
