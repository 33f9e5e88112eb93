"""image_resize: speed and memory of the rendition pipeline against a naive baseline, in the same run.

    python benchmarks/image_resize.py

Sources (generated once per run, noise + gradients, so they compress like photos rather than flat colour):
a 24-megapixel JPEG (6000x4000, quality 90) and a 12-megapixel PNG (4000x3000). Each is made into three
renditions, boxes of 2048, 1024 and 256 px (contain), encoded in the source's format at quality 85.

- naive: what the Lambda thumbnail tutorial does: open, then ``resize(LANCZOS)`` from the full-size image
  for each rendition (decoded once), encoded with the same encoder settings;
- pipeline: ``image_resize.imaging.render``: JPEG draft mode (DCT scaling), ``reduce()`` before the final
  Lanczos pass, largest rendition first with each smaller one derived from the previous result.

Figures: images per second (best of ``REPEATS`` runs), the speed ratio, and peak memory while rendering
(how far the peak RSS of a fresh process rises above its RSS once the source bytes are read; Pillow
allocates pixel memory outside Python's allocator, so tracemalloc does not see it) compared with the
decoded size of the source (width x height x 3 bytes).
"""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from PIL import Image  # noqa: E402

from image_resize import imaging  # noqa: E402
from image_resize.planning import RenditionSpec  # noqa: E402

REPEATS = 3
QUALITY = 85
SPECS = [RenditionSpec("large", 2048, 2048), RenditionSpec("medium", 1024, 1024), RenditionSpec("small", 256, 256)]
SOURCES = {"jpeg_24mp": ("JPEG", (6000, 4000)), "png_12mp": ("PNG", (4000, 3000))}


def make_source(fmt: str, size: tuple[int, int]) -> bytes:
    """A photo-like test image: noise over gradients, generated in about a second."""
    noise = Image.effect_noise(size, 48)
    gradient = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    flipped = gradient.transpose(Image.Transpose.ROTATE_180)
    image = Image.merge("RGB", (Image.blend(noise, gradient, 0.6), radial, flipped))
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=90)
    else:
        image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def naive(data: bytes) -> list[bytes]:
    """Open once, resize from full size with LANCZOS for each rendition, encode."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        fmt = image.format or "PNG"
        outputs = []
        for spec in SPECS:
            target = imaging.fit_size(image.width, image.height, spec).size
            resized = image.resize(target, Image.Resampling.LANCZOS)
            outputs.append(imaging.encode(resized, fmt, QUALITY))
        return outputs


def pipeline(data: bytes) -> list[bytes]:
    rendered = imaging.render(data, SPECS, output="original", quality=QUALITY, max_pixels=50_000_000)
    return [r.data for r in rendered]


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _measure_here(which: str, path: str) -> None:
    """Child process: read the source, then print how far peak RSS rose while rendering it."""
    data = Path(path).read_bytes()
    func = pipeline if which == "pipeline" else naive
    gc.collect()
    if not _reset_peak():
        print("null")
        return
    before = _rss_kib("VmRSS")
    func(data)
    peak = _rss_kib("VmHWM")
    print("null" if before is None or peak is None else max(0, peak - before) * 1024)


def peak_growth(which: str, data: bytes) -> int | None:
    """Bytes the peak RSS of a fresh process rose above its RSS at the start while rendering ``data``.

    A fresh process per measurement: freed memory that the allocator keeps would otherwise hide growth.
    """
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(data)
        handle.flush()
        result = subprocess.run(
            [sys.executable, __file__, "--measure", which, handle.name],
            capture_output=True, text=True, check=True,
        )
    value = json.loads(result.stdout.strip().splitlines()[-1])
    return int(value) if value is not None else None


def best_time(func: Callable[[bytes], list[bytes]], data: bytes) -> float:
    times = []
    for _ in range(REPEATS):
        gc.collect()
        start = time.perf_counter()
        func(data)
        times.append(time.perf_counter() - start)
    return min(times)


def run() -> dict[str, dict[str, float | int | None]]:
    """The figures, per source: images/s of both, speed ratio, peak memory growth vs decoded size."""
    results: dict[str, dict[str, float | int | None]] = {}
    for name, (fmt, size) in SOURCES.items():
        data = make_source(fmt, size)
        decoded = size[0] * size[1] * 3
        pipeline(data)  # warm up (imports, codec initialisation)
        peak_pipeline = peak_growth("pipeline", data)
        peak_naive = peak_growth("naive", data)
        t_naive = best_time(naive, data)
        t_pipeline = best_time(pipeline, data)
        results[name] = {
            "source_bytes": len(data),
            "decoded_bytes": decoded,
            "naive_images_per_s": round(1 / t_naive, 3),
            "pipeline_images_per_s": round(1 / t_pipeline, 3),
            "speedup": round(t_naive / t_pipeline, 2),
            "naive_peak_bytes": peak_naive,
            "pipeline_peak_bytes": peak_pipeline,
            "pipeline_peak_vs_decoded": round(peak_pipeline / decoded, 2) if peak_pipeline is not None else None,
            "naive_peak_vs_decoded": round(peak_naive / decoded, 2) if peak_naive is not None else None,
        }
    return results


def main() -> None:
    results = run()
    print(f"image_resize benchmark: 3 renditions (2048/1024/256 px box), best of {REPEATS}, Pillow {Image.__version__}")
    for name, r in results.items():
        print(f"\n{name}: {r['source_bytes']:,} bytes, decoded {r['decoded_bytes']:,} bytes")
        print(f"  naive     {r['naive_images_per_s']:7.2f} images/s   peak +{_mb(r['naive_peak_bytes'])}"
              f" ({r['naive_peak_vs_decoded']}x decoded)")
        print(f"  pipeline  {r['pipeline_images_per_s']:7.2f} images/s   peak +{_mb(r['pipeline_peak_bytes'])}"
              f" ({r['pipeline_peak_vs_decoded']}x decoded)")
        print(f"  speed ratio pipeline/naive: {r['speedup']}x")
    jpeg = results["jpeg_24mp"]
    print("\ntargets: JPEG >= 3x faster:", "met" if float(jpeg["speedup"] or 0) >= 3 else "NOT met",
          "| peak < 2x decoded source:",
          "met" if all((r["pipeline_peak_vs_decoded"] or 99) < 2 for r in results.values()) else "NOT met")
    print(json.dumps(results))


def _mb(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.1f} MB"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        _measure_here(sys.argv[2], sys.argv[3])
    else:
        main()
