"""The mutation corpus: recipes applied to committed captures, and QEMU's stored verdicts.

tests/data/mutants/verdicts.json holds, per mutant, the recipe (a list of byte operations on its
base capture), the base's sha256, and what a real QEMU 7.2 destination did with the result
(recorded once by tests/tools/make_mutants.py). Mutant bytes are never stored: `build` applies
the recipe to the capture again.

A mutant's destination is its base capture's configuration unless it names another capture in
"reference" (the "cross" entries: one capture loaded on another's configuration).

Operations, applied in order (offsets refer to the buffer as it is at that point):
``["replace", offset, hex]``, ``["insert", offset, hex]``, ``["delete", offset, length]``,
``["move", start, end, to]`` (cut [start, end) and insert it at `to` of the remaining buffer),
``["copy", start, end, to]`` (insert a copy of [start, end) at `to`), ``["truncate", size]``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "fixtures" / "captures"
VERDICTS = ROOT / "tests" / "data" / "mutants" / "verdicts.json"

Op = list[Any]


def apply_ops(data: bytes, ops: list[Op]) -> bytes:
    buf = bytearray(data)
    for op in ops:
        kind = op[0]
        if kind == "replace":
            new = bytes.fromhex(op[2])
            buf[op[1] : op[1] + len(new)] = new
        elif kind == "insert":
            buf[op[1] : op[1]] = bytes.fromhex(op[2])
        elif kind == "delete":
            del buf[op[1] : op[1] + op[2]]
        elif kind == "move":
            start, end, to = op[1], op[2], op[3]
            chunk = bytes(buf[start:end])
            del buf[start:end]
            buf[to:to] = chunk
        elif kind == "copy":
            chunk = bytes(buf[op[1] : op[2]])
            buf[op[3] : op[3]] = chunk
        elif kind == "truncate":
            del buf[op[1] :]
        else:
            raise ValueError(f"unknown mutation op {kind!r}")
    return bytes(buf)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_corpus(path: Path = VERDICTS) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def build(mutant: dict[str, Any], bases: dict[str, bytes]) -> bytes:
    return apply_ops(bases[mutant["base"]], mutant["ops"])


_NAMED = [
    re.compile(r"Unknown savevm section or instance '([^']*)' \d+"),
    re.compile(r"savevm: unsupported version \d+ for '([^']*)'"),
    re.compile(r"error while loading state for instance 0x[0-9a-f]+ of device '([^']*)'"),
    re.compile(r"error while loading state section id \d+\(([^)]*)\)"),
    re.compile(r"Missing section footer for (\S+)"),
    re.compile(r"Mismatched section id in footer for (\S+) -"),
]
_NAMED_ID = [
    re.compile(r"Unknown savevm section (\d+)$"),
    re.compile(r"Unable to read ID string for section (\d+)"),
]


def qemu_named_section(stderr: str) -> str | None:
    """The section QEMU's error output names: an idstr, or "id N"; None if it names none."""
    for line in stderr.splitlines():
        line = line.removeprefix("qemu-system-x86_64: ").strip()
        for rx in _NAMED:
            m = rx.search(line)
            if m:
                return m.group(1)
        for rx in _NAMED_ID:
            m = rx.search(line)
            if m:
                return f"id {m.group(1)}"
    return None
