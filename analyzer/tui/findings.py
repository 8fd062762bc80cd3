"""Findings for the browser's panel: parse errors and notes, plus `analyzer.validate` if present.

The validator is another module of the project (being written separately); it is found at run
time and its findings are read by duck typing (severity, offset, section, field path, message),
so the browser works with or without it and with either an object or a dict per finding.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analyzer.model import Stream

log = logging.getLogger(__name__)

SEVERITY_ORDER = {"error": 0, "fatal": 0, "critical": 0, "warning": 1, "warn": 1,
                  "info": 2, "note": 3}

_OFFSET_IN_TEXT = re.compile(r"\boffset (0x[0-9a-fA-F]+|\d+)")


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str
    offset: int | None
    where: str
    message: str
    source: str
    """"parser" or "validate"."""


def parse_findings(stream: Stream) -> list[Finding]:
    """The parser's fatal error (where indexing stopped) and its notes."""
    out = [Finding("error", e.offset, (e.section or "") + (f" / {e.field_path}"
                                                            if e.field_path else ""),
                   e.message, "parser") for e in stream.errors]
    for note in stream.notes:
        m = _OFFSET_IN_TEXT.search(note)
        out.append(Finding("note", int(m.group(1), 0) if m else None, "", note, "parser"))
    return out


def _get(obj: Any, *names: str) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


def _as_finding(obj: Any) -> Finding:
    sev = _get(obj, "severity", "level", "kind") or "warning"
    sev = str(getattr(sev, "value", sev)).lower()
    off = _get(obj, "offset", "byte_offset")
    section = _get(obj, "section", "where", "idstr") or ""
    path = _get(obj, "field_path", "path", "field") or ""
    msg = _get(obj, "message", "explanation", "text") or str(obj)
    predicted = _get(obj, "qemu_error", "predicts", "qemu")
    if predicted:
        msg = f"{msg} (QEMU: {predicted})"
    where = f"{section} / {path}" if section and path else str(section or path)
    return Finding(sev, int(off) if isinstance(off, int) else None, where, str(msg), "validate")


def validate_findings(stream: Stream) -> list[Finding] | None:
    """Findings of analyzer.validate, or None when that module does not exist (yet)."""
    try:
        mod = importlib.import_module("analyzer.validate")
    except ModuleNotFoundError as exc:
        if exc.name in ("analyzer.validate", "analyzer"):
            return None
        raise
    for name in ("validate_stream", "validate", "check_stream", "check", "run"):
        fn = getattr(mod, name, None)
        if callable(fn):
            break
    else:
        log.debug("analyzer.validate has no validate function")
        return None
    try:
        result = fn(stream)
    except TypeError as exc:
        log.debug("analyzer.validate.%s(stream) failed: %s", name, exc)
        return [Finding("note", None, "", f"validation could not run: {exc}", "validate")]
    got = _get(result, "findings")
    items: Iterable[Any] = got if got is not None else (result or [])
    return [_as_finding(f) for f in items]


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 2),
                                           f.offset if f.offset is not None else 1 << 62))
