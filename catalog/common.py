"""Small validators and helpers the catalog's services share."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from catalog.errors import InvalidCatalogInput

ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
UPC_RE = re.compile(r"^\d{12,14}$")
TAG_RE = re.compile(r"^[\w][\w \-&'.]{0,59}$", re.UNICODE)


# --- small helpers ------------------------------------------------------------------------------------
def slugify(value: str, fallback: str = "item") -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60]
    return slug or fallback


def clean_text(value, field: str, *, max_len: int, required: bool = False) -> str:
    value = "" if value is None else str(value)
    value = value.replace("\x00", "").strip()
    if required and not value:
        raise InvalidCatalogInput(f"Give the {field.replace('_', ' ')}.", code="missing_field", field=field)
    if len(value) > max_len:
        raise InvalidCatalogInput(f"The {field.replace('_', ' ')} is longer than {max_len} characters.",
                                  code="too_long", field=field)
    return value


def clean_tags(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split(",")
    result: list[str] = []
    for raw in values:
        tag = str(raw).replace("\x00", "").strip().lower()
        if not tag:
            continue
        if not TAG_RE.match(tag):
            raise InvalidCatalogInput(f"The tag {tag[:40]!r} has characters a tag cannot have; use letters, "
                                      "digits, spaces and dashes.", code="invalid_tag", field="tags")
        if tag not in result:
            result.append(tag)
    if len(result) > 20:
        raise InvalidCatalogInput("Use at most 20 tags.", code="too_many_tags", field="tags")
    return result


def clean_isrc(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    code = re.sub(r"[-\s]", "", str(value)).upper()
    if not ISRC_RE.match(code):
        raise InvalidCatalogInput("An ISRC looks like CC-XXX-YY-NNNNN (12 letters and digits).",
                                  code="invalid_isrc", field="isrc")
    return code


def clean_upc(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    code = str(value).strip()
    if not UPC_RE.match(code):
        raise InvalidCatalogInput("A UPC/EAN is 12 to 14 digits.", code="invalid_upc", field="upc")
    return code
