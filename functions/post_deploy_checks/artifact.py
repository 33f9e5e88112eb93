"""Check lists kept in the pipeline's own source: ``{"checks_file": "deploy/checks.json"}`` in UserParameters
names a JSON file inside the action's input artifact (a zip in the pipeline's artifact bucket).

Pure: the reference in UserParameters and the file inside the zip's bytes; the adapter downloads the zip
with the job's ``artifactCredentials``. The file is validated like UserParameters; every problem is a
:class:`ConfigurationError` naming the file.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from post_deploy_checks.spec import ConfigurationError

MAX_ARTIFACT_BYTES = 25 * 1024 * 1024  # the zip downloaded to find the file
MAX_CHECKS_FILE_BYTES = 64 * 1024
_KEYS = ("checks_file", "artifact")


@dataclass(frozen=True)
class ChecksFile:
    path: str
    artifact: str | None = None  # the input artifact's name; None: the action's first (usually only) input


def checks_file_reference(user_parameters: str | None) -> ChecksFile | None:
    """The checks file UserParameters name, or None when they hold the checks themselves."""
    if not user_parameters:
        return None
    try:
        data: Any = json.loads(user_parameters)
    except ValueError:
        return None  # parse_config reports malformed JSON
    if not isinstance(data, dict) or "checks_file" not in data:
        return None
    return parse_checks_file(data, "UserParameters")


def parse_checks_file(data: dict[str, Any], source: str) -> ChecksFile:
    unknown = sorted(str(key) for key in data if key not in _KEYS)
    if unknown:
        raise ConfigurationError(f"{source}: with checks_file the checks come from that file; remove "
                                 f"{', '.join(unknown)} (allowed with it: artifact)")
    path, artifact = data.get("checks_file"), data.get("artifact")
    if not isinstance(path, str) or not path or len(path) > 255 or path.startswith("/") or ".." in path.split("/"):
        raise ConfigurationError(f"{source}.checks_file: must be a relative path inside the input artifact, such "
                                 f"as deploy/checks.json (got {path!r})")
    if artifact is not None and (not isinstance(artifact, str) or not artifact):
        raise ConfigurationError(f"{source}.artifact: must be the name of one of the action's input artifacts")
    return ChecksFile(path, artifact)


def read_checks_file(archive: bytes, reference: ChecksFile, artifact_name: str) -> str:
    """The file's text from the artifact zip ``archive``; ConfigurationError naming the file and the problem."""
    where = f"checks_file {reference.path}"
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            try:
                info = bundle.getinfo(reference.path)
            except KeyError:
                raise ConfigurationError(f"{where} is not in the input artifact {artifact_name}") from None
            if info.file_size > MAX_CHECKS_FILE_BYTES:
                raise ConfigurationError(f"{where} is {info.file_size} bytes, more than the {MAX_CHECKS_FILE_BYTES} "
                                         "a checks file may have")
            with bundle.open(info) as member:
                data = member.read(MAX_CHECKS_FILE_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        raise ConfigurationError(f"{where}: the input artifact {artifact_name} is not a readable zip "
                                 f"({type(exc).__name__})") from None
    if len(data) > MAX_CHECKS_FILE_BYTES:
        raise ConfigurationError(f"{where} is more than the {MAX_CHECKS_FILE_BYTES} bytes a checks file may have")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{where} is not UTF-8 text") from None
