"""`migstream diff`: what changed between two streams (two snapshots of one VM, two builds).

Device sections are matched by (idstr, instance) (the n-th occurrence with the n-th, for the rare
duplicates) and compared field by field from the decoded payloads: every differing field with
its path, type, old and new value (hex and decimal), fields and subsections present on one side
only, sections added or removed, header version changes. The configuration (machine type,
capabilities, UUID) is compared too.

RAM is compared on the final content of every page (the last copy in each stream, XBZRLE
applied, compressed pages inflated; analyzer.ram.RamImage), block by block: changed pages,
pages only one stream sends, merged into runs of consecutive pages with page counts and the
number of bytes that differ, each run also given as a guest-physical range where the block's
place in the guest address space is known. Two PAGE copies are compared straight from the
mapped files, in file order, without building the pages in memory.

`--ignore PATTERN` drops volatile fields: patterns matched against "IDSTR/FIELD_PATH" (and
"IDSTR#INSTANCE/FIELD_PATH"), where `*` matches any text and `?` one character and everything
else (brackets included) matches itself: "timer/*", "*/env.tsc", "cpu/env.regs[*]",
"ram/pc.ram" for a RAM block, "e1000*" for whole sections.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.model import Section, Stream
from analyzer.ram import RamImage
from analyzer.report import painter, use_color
from analyzer.vmstate import Node
from formats.constants import TARGET_PAGE_SIZE
from formats.errors import MigstreamError, UsageError
from formats.ram_scan import PAGE, ZERO

__all__ = ["DiffResult", "FieldChange", "diff_streams", "register_cli"]

EXIT_SAME = 0
EXIT_DIFFERENT = 1


@dataclass(slots=True)
class FieldChange:
    """One field that differs (or exists on one side only)."""

    path: str
    type: str
    change: str
    """"changed", "added" (only in B) or "removed" (only in A)."""
    old: Any = None
    new: Any = None
    size: int = 0
    offset_a: int | None = None
    offset_b: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "type": self.type, "change": self.change,
                             "offset_a": self.offset_a, "offset_b": self.offset_b}
        for side, v in (("old", self.old), ("new", self.new)):
            d[side] = _json_value(v)
            if isinstance(v, int) and not isinstance(v, bool):
                d[f"{side}_hex"] = _hex(v, self.size)
        return d

    def describe(self) -> str:
        if self.change == "added":
            return f"{self.path}  ({self.type}) only in B: {_show(self.new, self.size)}"
        if self.change == "removed":
            return f"{self.path}  ({self.type}) only in A: {_show(self.old, self.size)}"
        if isinstance(self.old, bytes) and isinstance(self.new, bytes):
            return f"{self.path}  ({self.type}) {_bytes_change(self.old, self.new)}"
        return (f"{self.path}  ({self.type}) {_show(self.old, self.size)} -> "
                f"{_show(self.new, self.size)}")


@dataclass(slots=True)
class SectionDiff:
    idstr: str
    instance_id: int
    occurrence: int
    version_a: int | None = None
    version_b: int | None = None
    fields: list[FieldChange] = field(default_factory=list)
    payload_note: str | None = None
    """For sections without decoded fields: how their raw payloads differ."""

    @property
    def name(self) -> str:
        n = f"{self.idstr!r} instance {self.instance_id}"
        return n + (f" (occurrence {self.occurrence + 1})" if self.occurrence else "")

    def to_dict(self) -> dict[str, Any]:
        return {"idstr": self.idstr, "instance": self.instance_id,
                "occurrence": self.occurrence, "version_a": self.version_a,
                "version_b": self.version_b, "fields": [f.to_dict() for f in self.fields],
                "payload": self.payload_note}


@dataclass(slots=True)
class PageRun:
    kind: str
    """"changed", "only-a" or "only-b"."""
    start: int
    end: int
    """Block offsets [start, end)."""
    pages: int
    bytes_changed: int
    gpa: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "start": self.start, "end": self.end,
                             "pages": self.pages, "bytes_changed": self.bytes_changed}
        if self.gpa is not None:
            d["gpa_start"] = self.gpa
            d["gpa_end"] = self.gpa + (self.end - self.start)
        return d


@dataclass(slots=True)
class PageChange:
    offset: int
    kind: str
    bytes_changed: int
    first_diff: int | None = None
    excerpt_a: bytes = b""
    excerpt_b: bytes = b""


@dataclass(slots=True)
class BlockDiff:
    block: str
    size_a: int | None
    size_b: int | None
    gpa: int | None = None
    runs: list[PageRun] = field(default_factory=list)
    pages: list[PageChange] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(r.pages for r in self.runs if r.kind == kind)

    @property
    def bytes_changed(self) -> int:
        return sum(r.bytes_changed for r in self.runs)

    @property
    def different(self) -> bool:
        return bool(self.runs) or self.size_a != self.size_b

    def to_dict(self, with_pages: bool) -> dict[str, Any]:
        d: dict[str, Any] = {
            "block": self.block, "size_a": self.size_a, "size_b": self.size_b,
            "gpa": self.gpa, "changed_pages": self.count("changed"),
            "only_a_pages": self.count("only-a"), "only_b_pages": self.count("only-b"),
            "bytes_changed": self.bytes_changed, "runs": [r.to_dict() for r in self.runs],
        }
        if with_pages:
            d["pages"] = [{"offset": p.offset, "kind": p.kind, "bytes_changed": p.bytes_changed,
                           "first_diff": p.first_diff, "a": p.excerpt_a.hex(),
                           "b": p.excerpt_b.hex()} for p in self.pages]
        return d


@dataclass
class DiffResult:
    a: str
    b: str
    config: list[tuple[str, Any, Any]] = field(default_factory=list)
    added: list[tuple[str, int, int]] = field(default_factory=list)
    removed: list[tuple[str, int, int]] = field(default_factory=list)
    changed: list[SectionDiff] = field(default_factory=list)
    ram: list[BlockDiff] = field(default_factory=list)
    ignored: int = 0
    with_pages: bool = False

    @property
    def same(self) -> bool:
        return not (self.config or self.added or self.removed or self.changed
                    or any(b.different for b in self.ram))

    def section(self, idstr: str, instance: int = 0) -> SectionDiff | None:
        for s in self.changed:
            if s.idstr == idstr and s.instance_id == instance:
                return s
        return None

    def changed_pages(self) -> set[tuple[str, int]]:
        """(block, page offset) of every page whose content differs or is on one side only."""
        out: set[tuple[str, int]] = set()
        for b in self.ram:
            for r in b.runs:
                out.update((b.block, off) for off in range(r.start, r.end, TARGET_PAGE_SIZE))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "same": self.same,
            "configuration": [{"item": k, "a": _json_value(x), "b": _json_value(y)}
                              for k, x, y in self.config],
            "sections": {
                "added": [{"idstr": i, "instance": n, "occurrence": o}
                          for i, n, o in self.added],
                "removed": [{"idstr": i, "instance": n, "occurrence": o}
                            for i, n, o in self.removed],
                "changed": [s.to_dict() for s in self.changed],
            },
            "ram": [b.to_dict(self.with_pages) for b in self.ram],
            "ignored_differences": self.ignored,
        }

    def text(self, color: bool = False) -> str:
        p = painter(color)
        out = [f"--- A {self.a}", f"+++ B {self.b}"]
        if self.same:
            out.append("no differences" + (f" ({self.ignored} ignored)" if self.ignored else ""))
            return "\n".join(out)
        if self.config:
            out.append(p("bold", "configuration"))
            for k, x, y in self.config:
                out.append(f"  {k}: {p('red', repr(x))} -> {p('green', repr(y))}")
        if self.added or self.removed or self.changed:
            out.append(p("bold", "sections"))
        for i, n, o in self.removed:
            occ = f" (occurrence {o + 1})" if o else ""
            out.append(p("red", f"  - {i!r} instance {n}{occ} only in A"))
        for i, n, o in self.added:
            occ = f" (occurrence {o + 1})" if o else ""
            out.append(p("green", f"  + {i!r} instance {n}{occ} only in B"))
        for s in self.changed:
            what = f"{len(s.fields)} field(s) differ" if s.fields else (s.payload_note or "")
            out.append(p("yellow", f"  ~ {s.name}: {what}"))
            if s.version_a != s.version_b:
                out.append(f"      version {s.version_a} -> {s.version_b}")
            for f in s.fields:
                mark = {"changed": "~", "added": "+", "removed": "-"}[f.change]
                colour = {"changed": "yellow", "added": "green", "removed": "red"}[f.change]
                out.append(f"      {p(colour, mark)} {f.describe()}")
        ram = [b for b in self.ram if b.different]
        if ram:
            out.append(p("bold", "RAM"))
        for b in ram:
            size = "" if b.size_a == b.size_b else (
                f"; size {_opt_hex(b.size_a)} -> {_opt_hex(b.size_b)}")
            out.append(f"  {b.block}: {b.count('changed')} page(s) changed, "
                       f"{b.bytes_changed:,} byte(s) differ; {b.count('only-a')} page(s) only in "
                       f"A, {b.count('only-b')} only in B{size}")
            for r in b.runs:
                gpa = (f"  GPA {r.gpa:#x}-{r.gpa + r.end - r.start - 1:#x}"
                       if r.gpa is not None else "")
                colour = {"changed": "yellow", "only-a": "red", "only-b": "green"}[r.kind]
                out.append(f"    {p(colour, f'{r.kind:7}')} {r.start:#010x}-{r.end - 1:#010x}"
                           f"{gpa}  {r.pages} page(s)"
                           + (f", {r.bytes_changed:,} byte(s) differ" if r.kind == "changed"
                              else ""))
            for pc in b.pages if self.with_pages else ():
                out.append(f"      page {pc.offset:#010x} {pc.kind}: {pc.bytes_changed} byte(s)")
                if pc.first_diff is not None:
                    base = pc.offset + (pc.first_diff & ~0xF)
                    out.append(f"        A {base:#010x}: {_hexdump(pc.excerpt_a)}")
                    out.append(f"        B {base:#010x}: {_hexdump(pc.excerpt_b)}")
        n_fields = sum(len(s.fields) for s in self.changed)
        n_pages = sum(b.count("changed") + b.count("only-a") + b.count("only-b") for b in ram)
        out.append(f"summary: {len(self.config)} configuration difference(s), "
                   f"{len(self.added)} section(s) added, {len(self.removed)} removed, "
                   f"{len(self.changed)} changed ({n_fields} field(s)), {n_pages} RAM page(s) "
                   "differ" + (f"; {self.ignored} difference(s) ignored" if self.ignored else ""))
        return "\n".join(out)


# -- helpers ---------------------------------------------------------------------------




def _hex(v: int, size: int) -> str:
    width = max(size, 1) * 2
    return f"0x{v & ((1 << (8 * max(size, 1))) - 1):0{width}x}" if size else hex(v)


def _show(v: Any, size: int) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{_hex(v, size)} ({v})"
    if isinstance(v, bytes):
        return v[:16].hex(" ") + (" ..." if len(v) > 16 else "") + f" ({len(v)} bytes)"
    if isinstance(v, str):
        return v
    return "-" if v is None else repr(v)


def _bytes_change(a: bytes, b: bytes) -> str:
    if len(a) != len(b):
        return f"{len(a)} bytes -> {len(b)} bytes"
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    first = diff[0]
    lo = first & ~0xF
    return (f"{len(diff)} of {len(a)} bytes differ, first at +{first:#x}: "
            f"{a[lo:lo + 16].hex(' ')} -> {b[lo:lo + 16].hex(' ')}")


def _hexdump(chunk: bytes) -> str:
    return chunk.hex(" ")


def _opt_hex(v: int | None) -> str:
    return "-" if v is None else f"{v:#x}"


def _json_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def _glob(pattern: str) -> re.Pattern[str]:
    """`*` any run of characters (slashes included), `?` one; everything else is literal, so
    field paths with brackets ("env.regs[3]") need no escaping."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts) + r"\Z", re.S)


class _Ignore:
    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = [_glob(p) for p in patterns]
        self.hits = 0

    def __call__(self, *names: str) -> bool:
        for name in names:
            for pat in self.patterns:
                if pat.match(name):
                    self.hits += 1
                    return True
        return False


# -- sections --------------------------------------------------------------------------


def _keyed(stream: Stream) -> dict[tuple[str, int, int], Section]:
    out: dict[tuple[str, int, int], Section] = {}
    seen: dict[tuple[str, int], int] = {}
    for sec in stream.sections:
        if sec.type not in (1, 4) or sec.is_ram or not sec.idstr:
            continue
        k = (sec.idstr, sec.instance_id)
        n = seen.get(k, 0)
        seen[k] = n + 1
        out[(sec.idstr, sec.instance_id, n)] = sec
    return out


def _leaves(sec: Section) -> dict[str, tuple[Node, str | None]]:
    """path -> (node, parent path) for every decoded node (the first of a repeated path)."""
    out: dict[str, tuple[Node, str | None]] = {}

    def walk(nodes: list[Node], parent: str | None, prefix: str) -> None:
        for node in nodes:
            path = f"{prefix}/{node.name}" if prefix else node.name
            out.setdefault(path, (node, parent))
            if node.kind == "array" and node.children is not None:
                for child in node.children:
                    cpath = f"{prefix}/{child.name}" if prefix else child.name
                    out.setdefault(cpath, (child, path))
                    if child.children:
                        walk(child.children, cpath, cpath)
            elif node.children:
                walk(node.children, path, path)

    walk(sec.nodes or [], None, "")
    return out


def _diff_section(a: Stream, b: Stream, sa: Section, sb: Section, key: tuple[str, int, int],
                  ignore: _Ignore) -> SectionDiff | None:
    idstr, inst, occ = key
    d = SectionDiff(idstr, inst, occ, sa.version_id, sb.version_id)
    names = (f"{idstr}", f"{idstr}#{inst}")
    if sa.nodes is None or sb.nodes is None:
        ra = a.read(sa.body_start, sa.body_end - sa.body_start)
        rb = b.read(sb.body_start, sb.body_end - sb.body_start)
        if ra != rb and not ignore(*names, *(f"{n}/*" for n in names)):
            d.payload_note = ("payload differs (not decoded: no description): "
                              + _bytes_change(ra, rb))
        return d if d.payload_note or d.version_a != d.version_b else None
    la, lb = _leaves(sa), _leaves(sb)
    for path in list(la) + [p for p in lb if p not in la]:
        ea, eb = la.get(path), lb.get(path)
        na = ea[0] if ea is not None else None
        nb = eb[0] if eb is not None else None
        full = tuple(f"{n}/{path}" for n in names)
        if na is None or nb is None:
            present = na if na is not None else nb
            assert present is not None
            parent = (ea or eb or (present, None))[1]
            if parent is not None and ((na is None and parent not in la) or
                                       (nb is None and parent not in lb)):
                continue
            if ignore(*full):
                continue
            d.fields.append(FieldChange(
                path, "subsection" if present.kind == "subsection" else present.type,
                "added" if na is None else "removed",
                old=None if na is None else _value(na), new=None if nb is None else _value(nb),
                size=present.size, offset_a=None if na is None else na.offset,
                offset_b=None if nb is None else nb.offset))
            continue
        if na.children or nb.children or na.kind in ("subsection", "struct", "array"):
            continue
        if na.value == nb.value and na.type == nb.type:
            continue
        if ignore(*full):
            continue
        d.fields.append(FieldChange(path, na.type if na.type == nb.type else
                                    f"{na.type} -> {nb.type}", "changed", na.value, nb.value,
                                    na.size, na.offset, nb.offset))
    if not d.fields and d.version_a == d.version_b:
        return None
    return d


def _value(node: Node) -> Any:
    if node.kind == "subsection":
        return f"version {node.version}"
    if node.children:
        return f"{len(node.children)} item(s)"
    return node.value


def _config(a: Stream, b: Stream) -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    ca, cb = a.configuration, b.configuration
    if (ca is None) != (cb is None):
        out.append(("configuration section", ca is not None, cb is not None))
    if a.machine != b.machine:
        out.append(("machine", a.machine, b.machine))
    caps_a = ca.capabilities if ca else []
    caps_b = cb.capabilities if cb else []
    if caps_a != caps_b:
        out.append(("capabilities", caps_a, caps_b))
    ua = ca.uuid if ca else None
    ub = cb.uuid if cb else None
    if ua != ub:
        out.append(("uuid", ua.hex() if ua else None, ub.hex() if ub else None))
    subs_a = {s.name: s.value for s in ca.subsections} if ca else {}
    subs_b = {s.name: s.value for s in cb.subsections} if cb else {}
    for name in sorted(set(subs_a) | set(subs_b)):
        if name in ("configuration/capabilities", "configuration/uuid"):
            continue
        if subs_a.get(name) != subs_b.get(name):
            out.append((name, subs_a.get(name), subs_b.get(name)))
    if a.footers != b.footers:
        out.append(("section footers", a.footers, b.footers))
    return out


# -- RAM -------------------------------------------------------------------------------


def _gpa_base(stream: Stream, block: str, offset: int) -> int | None:
    """Guest-physical address of a block offset, where the block's placement is fixed."""
    for bl in stream.ram.blocks:
        if bl.idstr == block and bl.addr is not None and block != "pc.ram":
            return bl.addr + offset
    machine = stream.machine or ""
    if block == "pc.ram":
        total = next((bl.used_length for bl in stream.ram.blocks if bl.idstr == block), 0)
        if machine.startswith("pc-q35"):
            low = 0x80000000 if total >= 0xB0000000 else total
        else:
            low = 0xC0000000 if total >= 0xE0000000 else total
        return offset if offset < low else 0x100000000 + offset - low
    if block == "pc.bios":
        size = next((bl.used_length for bl in stream.ram.blocks if bl.idstr == block), 0)
        return 0x100000000 - size + offset
    return None


def _gpa_of(stream: Stream, block: str) -> Callable[[int], int | None]:
    def gpa(offset: int) -> int | None:
        return _gpa_base(stream, block, offset)

    return gpa


class _Pages:
    """Final page copies of one stream: kind and where to read them."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.image = RamImage(stream)
        self.by_block: dict[str, dict[int, int]] = {}
        ram = stream.ram
        for (bi, off), row in self.image.last_copy.items():
            if bi < 0:
                continue
            self.by_block.setdefault(ram.blocks[bi].idstr, {})[off] = row

    def kind(self, row: int) -> int:
        return int(self.stream.ram.addr_flags[row] & 0xFDF)

    def content(self, row: int) -> bytes:
        ram = self.stream.ram
        bi = ram.block[row]
        page = self.image.page(bi, ram.addr_flags[row] & ~0xFFF)
        assert page is not None
        return page


def _count_diff(x: bytes, y: bytes) -> int:
    v = int.from_bytes(x, "little") ^ int.from_bytes(y, "little")
    if not v:
        return 0
    return len(x) - v.to_bytes(len(x), "little").count(0)


def _first_diff(x: bytes, y: bytes) -> int | None:
    v = int.from_bytes(x, "big") ^ int.from_bytes(y, "big")
    if not v:
        return None
    return len(x) - 1 - (v.bit_length() - 1) // 8


def _compare_page(pa: _Pages, ra: int, pb: _Pages, rb: int) -> tuple[int, bytes, bytes]:
    """(bytes that differ, A content, B content); contents empty when equal or not built."""
    ka, kb = pa.kind(ra), pb.kind(rb)
    bufa, bufb = pa.stream.buf, pb.stream.buf
    if ka == ZERO and kb == ZERO:
        fa = bufa[pa.stream.ram.payload_pos[ra]]
        fb = bufb[pb.stream.ram.payload_pos[rb]]
        if fa == fb:
            return 0, b"", b""
        return TARGET_PAGE_SIZE, bytes([fa]) * TARGET_PAGE_SIZE, bytes([fb]) * TARGET_PAGE_SIZE
    if ka == PAGE and kb == PAGE:
        oa, ob = pa.stream.ram.payload_pos[ra], pb.stream.ram.payload_pos[rb]
        va = bufa[oa : oa + TARGET_PAGE_SIZE]
        vb = bufb[ob : ob + TARGET_PAGE_SIZE]
        if va == vb:
            return 0, b"", b""
        x, y = bytes(va), bytes(vb)
        return _count_diff(x, y), x, y
    x = pa.content(ra)
    y = pb.content(rb)
    n = _count_diff(x, y)
    return (n, x, y) if n else (0, b"", b"")


def _runs(items: Iterable[tuple[int, str, int]], gpa: Callable[[int], int | None]
          ) -> list[PageRun]:
    runs: list[PageRun] = []
    for off, kind, nbytes in sorted(items):
        last = runs[-1] if runs else None
        if last is not None and last.kind == kind and last.end == off:
            g = gpa(off)
            if last.gpa is None or g == last.gpa + (off - last.start):
                last.end += TARGET_PAGE_SIZE
                last.pages += 1
                last.bytes_changed += nbytes
                continue
        runs.append(PageRun(kind, off, off + TARGET_PAGE_SIZE, 1, nbytes, gpa(off)))
    return runs


def _diff_ram(a: Stream, b: Stream, ignore: _Ignore, pages: bool) -> list[BlockDiff]:
    pa, pb = _Pages(a), _Pages(b)
    sizes_a = {bl.idstr: bl.used_length for bl in a.ram.blocks if bl.listed}
    sizes_b = {bl.idstr: bl.used_length for bl in b.ram.blocks if bl.listed}
    names = list(dict.fromkeys([*sizes_a, *sizes_b, *pa.by_block, *pb.by_block]))
    out: list[BlockDiff] = []
    for name in names:
        if ignore(f"ram/{name}"):
            continue
        bd = BlockDiff(name, sizes_a.get(name), sizes_b.get(name))
        rows_a = pa.by_block.get(name, {})
        rows_b = pb.by_block.get(name, {})
        items: list[tuple[int, str, int]] = []
        # Read A's pages in file order so the mapping is walked sequentially.
        done = 0
        for off, ra in sorted(rows_a.items(), key=lambda kv: a.ram.payload_pos[kv[1]]):
            done += 1
            if not done & 0xFFF:
                a.release(0, a.ram.payload_pos[ra])
                b.release(0, b.size)
            rb = rows_b.get(off)
            if rb is None:
                items.append((off, "only-a", 0))
                if pages:
                    bd.pages.append(PageChange(off, "only-a", 0))
                continue
            n, x, y = _compare_page(pa, ra, pb, rb)
            if n:
                items.append((off, "changed", n))
                if pages:
                    first = _first_diff(x, y)
                    lo = (first or 0) & ~0xF
                    bd.pages.append(PageChange(off, "changed", n, first, x[lo:lo + 32],
                                               y[lo:lo + 32]))
        for off in rows_b.keys() - rows_a.keys():
            items.append((off, "only-b", 0))
            if pages:
                bd.pages.append(PageChange(off, "only-b", 0))
        bd.pages.sort(key=lambda p: p.offset)
        bd.gpa = _gpa_base(a, name, 0) if name in sizes_a else _gpa_base(b, name, 0)
        bd.runs = _runs(items, _gpa_of(a if name in sizes_a else b, name))
        out.append(bd)
    return out


def diff_streams(a: Stream, b: Stream, ignore: Sequence[str] = (), pages: bool = False
                 ) -> DiffResult:
    """Compare two opened streams; see the module docstring."""
    ig = _Ignore(ignore)
    res = DiffResult(a.path, b.path, with_pages=pages)
    res.config = _config(a, b)
    ka, kb = _keyed(a), _keyed(b)
    for key, sa in ka.items():
        sb = kb.get(key)
        if sb is None:
            if not ig(key[0], f"{key[0]}#{key[1]}"):
                res.removed.append(key)
            continue
        d = _diff_section(a, b, sa, sb, key, ig)
        if d is not None:
            res.changed.append(d)
    for key in kb:
        if key not in ka and not ig(key[0], f"{key[0]}#{key[1]}"):
            res.added.append(key)
    res.ram = _diff_ram(a, b, ig, pages)
    res.ignored = ig.hits
    return res


def diff_files(a: str | os.PathLike[str], b: str | os.PathLike[str],
               ignore: Sequence[str] = (), pages: bool = False) -> DiffResult:
    """Open, check and compare two stream files (UsageError / MigstreamError when unusable)."""
    streams: list[Stream] = []
    try:
        for p in (a, b):
            streams.append(_open_checked(os.fspath(p)))
        return diff_streams(streams[0], streams[1], ignore, pages)
    finally:
        for s in streams:
            s.close()


def _open_checked(path: str) -> Stream:
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory")
    s = Stream.open(path)
    if s.errors:
        err = s.errors[0]
        s.close()
        raise MigstreamError(f"{path}: {err}")
    return s


# -- CLI -------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    res = diff_files(args.a, args.b, args.ignore or (), args.pages)
    if args.json:
        json.dump(res.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(res.text(color=use_color(args.color)))
    return EXIT_SAME if res.same else EXIT_DIFFERENT


def register_cli(add: Callable[..., Any]) -> None:
    sp = add("diff", cmd_diff,
             "compare two streams: configuration, device fields, RAM pages")
    sp.add_argument("a", metavar="A")
    sp.add_argument("b", metavar="B")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--ignore", action="append", metavar="PATTERN",
                    help="ignore differences whose IDSTR/FIELD_PATH matches (* any text, ? "
                         "one character, the rest literal; repeatable; e.g. 'timer/*', "
                         "'*/env.tsc', 'ram/pc.ram')")
    sp.add_argument("--pages", action="store_true",
                    help="list every differing page with a hexdump of its first changed bytes")
    sp.add_argument("--color", action="store_true", help="colour even when not on a terminal")
