"""`dump --compat`: the JSON that QEMU 7.2's scripts/analyze-migration.py prints for `-d state`.

It is rebuilt from our stream model and descriptions, reproducing that script's conventions:
sections keyed "idstr (section_id)" in first-seen order, "ram" shown as its block sizes,
integers as zero-padded hex strings (negative signed values followed by the decimal), bools as
JSON booleans, every other type as space-separated hex bytes of its described size, arrays as
lists, structs and subsections as objects.
"""

from __future__ import annotations

import json
from typing import Any

from analyzer.model import Section, Stream
from analyzer.vmdesc import FieldDesc, VmsdDesc
from analyzer.vmstate import Node

_SIGNED = frozenset(
    {"int8", "int16", "int32", "int64", "int32 equal", "int32 le", "int64 equal",
     "uint8 equal", "uint16 equal"}
)
_UNSIGNED = frozenset({"uint8", "uint16", "uint32", "uint32 equal", "uint64"})


def _hex(raw: bytes) -> str:
    return " ".join(f"{c:02x}" for c in raw)


def _element(stream: Stream, f: FieldDesc, node: Node) -> Any:
    if f.type == "struct" and f.struct is not None and node.children is not None:
        return _vmsd(stream, f.struct, node.children)
    raw = stream.read(node.offset, f.size)
    if f.type in _SIGNED or f.type in _UNSIGNED:
        fmt = f"0x%0{f.size * 2}x"
        u = int.from_bytes(raw, "big")
        s = int.from_bytes(raw, "big", signed=True)
        if f.type in _SIGNED and s < 0:
            return f"{fmt % u} ({s})"
        return fmt % u
    if f.type == "bool":
        return raw[0] != 0 if raw else False
    return _hex(raw)


def _vmsd(stream: Stream, vmsd: VmsdDesc, nodes: list[Node]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n_fields = len(vmsd.fields)
    for f, node in zip(vmsd.fields, nodes[:n_fields], strict=True):
        if f.array_len is not None:
            value: Any = [_element(stream, f, e) for e in node.children or []]
        else:
            value = _element(stream, f, node)
        if f.index is not None:
            out.setdefault(f.name, []).append(value)
        else:
            out[f.name] = value
    for sub, node in zip(vmsd.subsections, nodes[n_fields:], strict=True):
        out[node.name] = _vmsd(stream, sub, node.children or [])
    return out


def _ram(stream: Stream) -> dict[str, Any]:
    sizes = {
        b.idstr: f"0x{b.used_length:016x}" for b in stream.ram.blocks if b.listed
    }
    return {"section sizes": sizes}


def compat_state(stream: Stream) -> dict[str, Any]:
    """The `-d state` dictionary (without memory) for a decoded stream."""
    out: dict[int, tuple[str, Any]] = {}
    for item in stream.items:
        if not isinstance(item, Section) or item.parent is not None:
            continue
        if item.section_id in out and item.type.short in ("PART", "END"):
            continue
        key = f"{item.idstr} ({item.section_id})"
        if item.is_ram:
            out[item.section_id] = (key, _ram(stream))
        elif item.desc is not None and item.nodes is not None:
            out[item.section_id] = (key, _vmsd(stream, item.desc, item.nodes))
        else:
            out[item.section_id] = (key, {})
    return {key: value for key, value in out.values()}


def compat_json(stream: Stream) -> str:
    """Text exactly as analyze-migration.py prints it (json indent 4, ',' and ': ')."""
    return json.dumps(compat_state(stream), indent=4, separators=(",", ": "))


def section_compat(stream: Stream, section: Section) -> Any:
    """One section's value in analyze-migration form (used by the TUI and diff)."""
    if section.is_ram:
        return _ram(stream)
    if section.desc is None or section.nodes is None:
        return None
    return _vmsd(stream, section.desc, section.nodes)
