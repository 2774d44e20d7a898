"""What the notice pages and the notice API share about a request: the rights settings, reference audio
files saved from an upload, a CSV of works read from one (no blueprint imports another)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.datastructures import FileStorage

from app import context
from core.errors import NinetyError, ValidationError
from rights.errors import ReferenceTooLarge
from rights.settings import RightsSettings

CSV_MAX_BYTES = 16 * 1024 * 1024


def settings():
    return RightsSettings.from_config(context.config())


@contextmanager
def saved_references(files: dict[str, FileStorage], *, max_bytes: int) -> Iterator[dict[str, Path]]:
    """The uploaded reference audio files, each saved to a temporary file (removed afterwards) and named
    as the payload's `reference` names them. Larger than `max_bytes`: ReferenceTooLarge (413)."""
    with tempfile.TemporaryDirectory(prefix="ninety-reference-") as folder:
        saved: dict[str, Path] = {}
        for index, (name, file) in enumerate(files.items()):
            path = Path(folder) / f"reference-{index}"
            written = 0
            with path.open("wb") as out:
                while chunk := file.stream.read(1024 * 1024):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ReferenceTooLarge(
                            f"The reference file {file.filename or name!r} is larger than "
                            f"{max_bytes // (1024 * 1024)} MiB; send a shorter excerpt.",
                            code="reference_too_large", status=413, field=name)
                    out.write(chunk)
            if written:
                saved[name] = path
        yield saved


def read_csv_upload(file: FileStorage) -> str:
    data = file.stream.read(CSV_MAX_BYTES + 1)
    if len(data) > CSV_MAX_BYTES:
        raise ValidationError(f"The CSV file is larger than {CSV_MAX_BYTES // (1024 * 1024)} MiB; split it.",
                              code="payload_too_large", status=413)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The CSV file is not UTF-8 text; save it as CSV (UTF-8) and upload it again.",
                              code="malformed_csv") from None


def form_field(path: str | None) -> str | None:
    """The form input a payload path names: claimant.name → claimant_name, works[2].title → works-2-title,
    statements.good_faith → good_faith."""
    if not path:
        return None
    match = re.fullmatch(r"works\[(\d+)\](?:\.(\w+))?", path)
    if match:
        return f"works-{match[1]}-{match[2] or 'title'}"
    if path.startswith("claimant."):
        return "claimant_" + path.removeprefix("claimant.")
    if path.startswith("statements."):
        return path.removeprefix("statements.")
    return path


def problems_of(exc: NinetyError) -> list[dict]:
    """Each missing or wrong element of a refused notice: {code, field, message, input}."""
    listed = exc.details.get("missing") or exc.details.get("problems") or []
    found = []
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict):
            found.append({**item, "input": form_field(item.get("field"))})
    return found or [{"code": exc.code, "field": None, "message": exc.message, "input": None}]
