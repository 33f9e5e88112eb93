"""Bundling of a function's code and its dependencies layer, without Docker.

- code: ``functions/<automation>`` plus ``functions/shared``, staged under ``.build/assets`` with a one-line
  root ``handler.py`` so the Lambda handler string is ``handler.handler``;
- third-party dependencies in a layer built locally with ``pip install --platform ... --only-binary=:all:``
  (a requirement published only as a pure-Python source distribution is first built into a
  ``py3-none-any`` wheel here, ``PURE_SDISTS``), cached under
  ``.build/layers/<architecture>-<hash of requirements, platform, python>``;
- both precompiled to bytecode (Lambda's code folder is read-only, so it cannot write its own).

Every folder is named by a hash of its content and built in a temporary folder renamed into place,
so concurrent builds (parallel tests) never disturb each other.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
BUILD_DIR = ROOT / ".build"
PYTHON_VERSION = "3.13"
PLATFORM_TAGS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", "requirements.txt")
# Bump when the staged content changes for the same sources (e.g. bytecode added).
_ASSET_FORMAT = "2"
# boto3/botocore come from the runtime: copies pulled in as dependencies are dropped to keep the layer small.
_RUNTIME_PROVIDED = ("boto3", "boto3-*", "botocore", "botocore-*", "s3transfer", "s3transfer-*", "bin")
# Requirements PyPI has only as source distributions whose build is pure Python, so the same wheel serves
# every platform: pyvips (its C extension is optional and is not built; libvips and the compiled binding
# come from the pyvips-binary wheel, manylinux aarch64 and x86_64).
PURE_SDISTS = frozenset({"pyvips"})


def requirement_files(automation: str) -> list[Path]:
    """The requirements files of ``functions/shared`` and ``functions/<automation>`` that exist."""
    files = [FUNCTIONS_DIR / "shared" / "requirements.txt", FUNCTIONS_DIR / automation / "requirements.txt"]
    return [path for path in files if path.exists()]


def requirements_text(files: list[Path]) -> str:
    """The requirements of ``files`` without comments or blank lines, deduplicated and sorted."""
    lines: set[str] = set()
    for path in files:
        for line in path.read_text().splitlines():
            requirement = line.split("#", 1)[0].strip()
            if requirement:
                lines.add(requirement)
    return "\n".join(sorted(lines)) + "\n"


def build_layer(requirements: str, architecture: str) -> Path:
    """Install ``requirements`` for Lambda's platform into a cached folder; returns the folder.

    The folder holds ``python/`` as a Lambda layer expects. Built once per hash of the
    requirements, platform and Python version; a concurrent build of the same hash is harmless
    (the second one is discarded).
    """
    digest = hashlib.sha256(f"{requirements}|{architecture}|{PYTHON_VERSION}|pyc".encode()).hexdigest()[:16]
    target = BUILD_DIR / "layers" / f"{architecture}-{digest}"
    if (target / ".complete").exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=_ensure(target.parent)))
    req_file = staging / "requirements.txt"
    req_file.write_text(requirements)
    wheelhouse = staging / "wheels"
    try:
        build_pure_wheels(requirements, wheelhouse)
    except RuntimeError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result = subprocess.run(  # noqa: S603
        _pip_command(req_file, staging / "python", architecture, wheelhouse), capture_output=True, text=True,
        check=False,
    )
    shutil.rmtree(wheelhouse, ignore_errors=True)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"building the dependencies layer failed:\n{result.stderr[-4000:]}")
    for pattern in _RUNTIME_PROVIDED:
        for path in (staging / "python").glob(pattern):
            shutil.rmtree(path, ignore_errors=True)
    req_file.unlink()
    precompile(staging / "python")
    (staging / ".complete").write_text(requirements)
    _move_into_place(staging, target)
    return target


def build_pure_wheels(requirements: str, wheelhouse: Path) -> list[Path]:
    """Wheels of the ``PURE_SDISTS`` among ``requirements``, built from their source distributions.

    pkg-config is pointed at nothing, so an optional C extension (pyvips' API mode against a libvips found
    on this machine) is never built: the wheel must be ``py3-none-any``, or the layer would carry this
    machine's binary. Raises RuntimeError otherwise.
    """
    lines = [line for line in requirements.splitlines()
             if re.split(r"[\s<>=!~\[;]", line.strip(), maxsplit=1)[0].lower() in PURE_SDISTS]
    if not lines:
        return []
    wheelhouse.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PKG_CONFIG_LIBDIR": str(wheelhouse), "PKG_CONFIG_PATH": ""}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-binary", ",".join(sorted(PURE_SDISTS)), "--wheel-dir", str(wheelhouse), *lines],
        capture_output=True, text=True, check=False, env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the wheels of {', '.join(lines)} failed:\n{result.stderr[-4000:]}")
    wheels = sorted(wheelhouse.glob("*.whl"))
    impure = [wheel.name for wheel in wheels if not wheel.name.endswith("-py3-none-any.whl")]
    if impure:
        raise RuntimeError(f"{', '.join(impure)}: not pure Python, cannot go into a layer for another platform")
    return wheels


def _pip_command(req_file: Path, target: Path, architecture: str, wheelhouse: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for tag in PLATFORM_TAGS[architecture]:
        command += ["--platform", tag]
    if wheelhouse is not None and wheelhouse.is_dir():
        command += ["--find-links", str(wheelhouse)]
    command += [
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "--target", str(target),
        "-r", str(req_file),
    ]  # fmt: skip
    return command


def stage_code(automation: str) -> Path:
    """``functions/<automation>`` and ``functions/shared`` as one asset folder.

    Inside the asset, the automation is a package (``<automation>/``) next to ``shared/``, and a
    one-line ``handler.py`` at the root re-exports ``<automation>.handler.handler`` so the Lambda
    handler string is ``handler.handler``. The folder is named by a hash of its content, so
    concurrent builds (parallel tests) never disturb each other.
    """
    source = FUNCTIONS_DIR / automation
    if not (source / "handler.py").exists():
        raise FileNotFoundError(f"functions/{automation}/handler.py does not exist")
    shim = (
        f'"""Lambda entry point: handler.handler."""\n\nfrom {automation}.handler import handler\n\n'
        '__all__ = ["handler"]\n'
    )
    digest = hashlib.sha256((_ASSET_FORMAT + shim).encode())
    for folder in (source, FUNCTIONS_DIR / "shared"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(FUNCTIONS_DIR)).encode() + b"\0" + path.read_bytes())
    target = BUILD_DIR / "assets" / f"{automation}-{digest.hexdigest()[:16]}"
    if target.exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{automation}.", dir=_ensure(target.parent)))
    shutil.copytree(source, staging / automation, ignore=_IGNORE)
    shutil.copytree(FUNCTIONS_DIR / "shared", staging / "shared", ignore=_IGNORE)
    (staging / "handler.py").write_text(shim)
    precompile(staging)
    _move_into_place(staging, target)
    return target


def precompile(folder: Path) -> None:
    """Write bytecode next to the sources, as Lambda cannot (its code folder is read-only).

    Without it every cold start compiles every module it imports. Unchecked-hash pycs do not depend on
    file times (zip archives keep those only to two seconds), and are only valid for the same Python
    minor version, so they are written only when synth runs on the runtime's version.
    """
    if sys.version_info[:2] != tuple(int(part) for part in PYTHON_VERSION.split(".")):
        return
    compileall.compile_dir(
        str(folder), quiet=2, workers=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )


def _move_into_place(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # a concurrent build of the same content won


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
