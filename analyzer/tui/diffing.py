"""Differences between two streams, as the browser's diff mode marks and walks them.

Device sections are matched by (idstr, instance id, occurrence) and compared field by field
by path; configuration subsections by name; RAM page by page on final contents (the last copy
of each page, XBZRLE and compression applied, as a destination would hold them). Changed pages
are merged into ranges per block. Each difference knows its byte range in both streams (None on
the side where it is missing) so the browser can select it in both panes.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.model import Section, Stream
from analyzer.ram import RamImage
from analyzer.tui.entries import RamRuns, hexoff
from analyzer.vmstate import Node
from formats.constants import TARGET_PAGE_SIZE
from formats.errors import StreamError
from formats.ram_scan import PAGE, ZERO


@dataclass(slots=True)
class Difference:
    label: str
    kind: str
    """field | section | config | ram"""
    a: tuple[int, int] | None
    """(offset, size) in stream A, None when A lacks it."""
    b: tuple[int, int] | None
    a_target: object = None
    b_target: object = None


@dataclass
class Side:
    """What is different on one side: nodes, items and RAM runs to mark, byte ranges to tint."""

    nodes: set[int] = field(default_factory=set)
    """id() of changed leaf nodes and of every node containing one."""
    items: set[int] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)
    starts: array[int] = field(default_factory=lambda: array("Q"))
    ends: array[int] = field(default_factory=lambda: array("Q"))

    def add_range(self, offset: int, size: int) -> None:
        self.starts.append(offset)
        self.ends.append(offset + size)

    def finish(self) -> None:
        pairs = sorted(zip(self.starts, self.ends, strict=True))
        self.starts = array("Q", [p[0] for p in pairs])
        self.ends = array("Q", [p[1] for p in pairs])

    def ranges_in(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Changed byte ranges overlapping [lo, hi)."""
        i = bisect.bisect_right(self.starts, hi) - 1
        out: list[tuple[int, int]] = []
        while i >= 0 and len(out) < 4096:
            s, e = self.starts[i], self.ends[i]
            if e > lo and s < hi:
                out.append((s, e))
            elif s < lo - (1 << 20):
                break
            i -= 1
        return out


@dataclass
class DiffResult:
    diffs: list[Difference] = field(default_factory=list)
    a: Side = field(default_factory=Side)
    b: Side = field(default_factory=Side)
    ram_pages: int = 0
    """Number of pages whose final contents differ (or exist on one side only)."""


def _section_keys(stream: Stream) -> dict[tuple[str, int, int], Section]:
    seen: dict[tuple[str, int], int] = {}
    out: dict[tuple[str, int, int], Section] = {}
    for it in stream.items:
        if isinstance(it, Section) and not it.is_ram and it.idstr:
            k = (it.idstr, it.instance_id)
            n = seen.get(k, 0)
            seen[k] = n + 1
            out[(it.idstr, it.instance_id, n)] = it
    return out


def _leaves(nodes: list[Node]) -> dict[str, tuple[Node, list[Node]]]:
    """path -> (leaf node, its ancestors)."""
    out: dict[str, tuple[Node, list[Node]]] = {}

    def walk(n: Node, prefix: str, anc: list[Node]) -> None:
        path = f"{prefix}/{n.name}" if prefix else n.name
        if n.children is None:
            out[path] = (n, anc)
            return
        for c in n.children:
            walk(c, path, [*anc, n])

    for top in nodes:
        walk(top, "", [])
    return out


def _show(v: object) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v} ({v:#x})" if v >= 0 else str(v)
    if isinstance(v, bytes):
        return v[:12].hex(" ") + (" …" if len(v) > 12 else "")
    return repr(v)


def diff_streams(
    a: Stream,
    b: Stream,
    runs_a: RamRuns,
    runs_b: RamRuns,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> DiffResult:
    res = DiffResult()
    _diff_config(a, b, res)
    _diff_sections(a, b, res)
    _diff_ram(a, b, runs_a, runs_b, res, progress, cancelled)
    res.a.finish()
    res.b.finish()
    res.diffs.sort(key=lambda d: (d.a or d.b or (0, 0))[0])
    return res


def _diff_config(a: Stream, b: Stream, res: DiffResult) -> None:
    ca, cb = a.configuration, b.configuration
    if ca is None or cb is None:
        return
    if ca.machine != cb.machine:
        res.diffs.append(Difference(f"machine: {ca.machine} → {cb.machine}", "config",
                                    (ca.offset, ca.size), (cb.offset, cb.size), ca, cb))
        res.a.items.add(ca.index)
        res.b.items.add(cb.index)
    subs_b = {s.name: s for s in cb.subsections}
    for s in ca.subsections:
        t = subs_b.get(s.name)
        if t is None or t.value != s.value:
            res.diffs.append(Difference(
                f"{s.name}: {_show(s.value)} → {_show(t.value) if t else '(missing)'}", "config",
                (s.offset, s.size), (t.offset, t.size) if t else None))
            res.a.add_range(s.offset, s.size)
            res.a.items.add(ca.index)
            if t is not None:
                res.b.add_range(t.offset, t.size)
                res.b.items.add(cb.index)


def _diff_sections(a: Stream, b: Stream, res: DiffResult) -> None:
    ka, kb = _section_keys(a), _section_keys(b)
    for key, sa in ka.items():
        sb = kb.get(key)
        name = f"{key[0]}#{key[1]}" + (f" ({key[2] + 1}.)" if key[2] else "")
        if sb is None:
            res.diffs.append(Difference(f"section {name} only in A", "section",
                                        (sa.offset, sa.size), None, sa, None))
            res.a.items.add(sa.index)
            res.a.add_range(sa.offset, sa.size)
            continue
        if sa.nodes is None or sb.nodes is None:
            if a.read(sa.body_start, sa.body_end - sa.body_start) != b.read(
                    sb.body_start, sb.body_end - sb.body_start):
                res.diffs.append(Difference(f"section {name}: undecoded payload differs",
                                            "section", (sa.offset, sa.size),
                                            (sb.offset, sb.size), sa, sb))
                res.a.items.add(sa.index)
                res.b.items.add(sb.index)
            continue
        la, lb = _leaves(sa.nodes), _leaves(sb.nodes)
        for path, (na, anc_a) in la.items():
            got = lb.get(path)
            if got is None:
                res.diffs.append(Difference(f"{name}/{path} only in A", "field",
                                            (na.offset, na.size), None, na, None))
                _mark(res.a, sa, na, anc_a)
                continue
            nb, anc_b = got
            va = na.value if na.value is not None else a.read(na.offset, na.size)
            vb = nb.value if nb.value is not None else b.read(nb.offset, nb.size)
            if va != vb or type(va) is not type(vb):
                res.diffs.append(Difference(f"{name}/{path}: {_show(va)} → {_show(vb)}",
                                            "field", (na.offset, na.size),
                                            (nb.offset, nb.size), na, nb))
                _mark(res.a, sa, na, anc_a)
                _mark(res.b, sb, nb, anc_b)
        for path, (nb, anc_b) in lb.items():
            if path not in la:
                res.diffs.append(Difference(f"{name}/{path} only in B", "field", None,
                                            (nb.offset, nb.size), None, nb))
                _mark(res.b, sb, nb, anc_b)
    for key, sb in kb.items():
        if key not in ka:
            res.diffs.append(Difference(f"section {key[0]}#{key[1]} only in B", "section",
                                        None, (sb.offset, sb.size), None, sb))
            res.b.items.add(sb.index)
            res.b.add_range(sb.offset, sb.size)


def _mark(side: Side, sec: Section, node: Node, ancestors: list[Node]) -> None:
    side.items.add(sec.index)
    side.nodes.add(id(node))
    side.nodes.update(id(n) for n in ancestors)
    side.add_range(node.offset, node.size)


def _page_equal(sa: Stream, ra: int, sb: Stream, rb: int, img_a: RamImage, img_b: RamImage,
                key_a: tuple[int, int], key_b: tuple[int, int]) -> bool:
    ka = sa.ram.addr_flags[ra] & 0xFDF
    kb = sb.ram.addr_flags[rb] & 0xFDF
    pa, pb = int(sa.ram.payload_pos[ra]), int(sb.ram.payload_pos[rb])
    if ka == PAGE and kb == PAGE:
        return sa.read(pa, TARGET_PAGE_SIZE) == sb.read(pb, TARGET_PAGE_SIZE)
    if ka == ZERO and kb == ZERO:
        return sa.buf[pa] == sb.buf[pb]
    try:
        return img_a.page(*key_a) == img_b.page(*key_b)
    except StreamError:
        return False


def _diff_ram(
    a: Stream, b: Stream, runs_a: RamRuns, runs_b: RamRuns, res: DiffResult,
    progress: Callable[[int, int], None] | None, cancelled: Callable[[], bool] | None,
) -> None:
    img_a, img_b = RamImage(a), RamImage(b)
    last_a, last_b = img_a.last_copy, img_b.last_copy
    names_b = {blk.idstr: i for i, blk in enumerate(b.ram.blocks)}
    names_a = {blk.idstr: i for i, blk in enumerate(a.ram.blocks)}
    changed: dict[str, list[tuple[int, int | None, int | None]]] = {}
    total = len(last_a) + len(last_b)
    done = 0
    for (ba, off), ra in last_a.items():
        done += 1
        if progress is not None and not done & 0x3FFF:
            progress(done, total)
            if cancelled is not None and cancelled():
                return
        name = a.ram.blocks[ba].idstr
        bb = names_b.get(name)
        rb = last_b.get((bb, off)) if bb is not None else None
        if rb is not None and bb is not None and _page_equal(a, ra, b, rb, img_a, img_b,
                                                             (ba, off), (bb, off)):
            continue
        changed.setdefault(name, []).append((off, ra, rb))
    for (bb, off), rb in last_b.items():
        done += 1
        name = b.ram.blocks[bb].idstr
        ba2 = names_a.get(name)
        if ba2 is None or (ba2, off) not in last_a:
            changed.setdefault(name, []).append((off, None, rb))
    for name in sorted(changed, key=lambda n: names_a.get(n, names_b.get(n, 0))):
        pages = sorted(changed[name])
        res.ram_pages += len(pages)
        k = 0
        while k < len(pages):
            j = k
            while j + 1 < len(pages) and pages[j + 1][0] == pages[j][0] + TARGET_PAGE_SIZE \
                    and (pages[j + 1][1] is None) == (pages[k][1] is None) \
                    and (pages[j + 1][2] is None) == (pages[k][2] is None):
                j += 1
            lo, hi = pages[k][0], pages[j][0] + TARGET_PAGE_SIZE - 1
            first_a, first_b = pages[k][1], pages[k][2]
            n = j - k + 1
            what = ("only in A" if first_b is None else "only in B" if first_a is None
                    else "changed")
            label = f"RAM {name} {hexoff(lo)}-{hexoff(hi)}: {n} page{'s' * (n > 1)} {what}"
            span_a = _record_span(a, runs_a, first_a) if first_a is not None else None
            span_b = _record_span(b, runs_b, first_b) if first_b is not None else None
            res.diffs.append(Difference(label, "ram", span_a, span_b))
            for _, xa, xb in pages[k:j + 1]:
                if xa is not None:
                    res.a.runs.add(runs_a.at_row(xa))
                    res.a.items.add(int(a.ram.section[xa]))
                    res.a.add_range(*_record_span(a, runs_a, xa))
                if xb is not None:
                    res.b.runs.add(runs_b.at_row(xb))
                    res.b.items.add(int(b.ram.section[xb]))
                    res.b.add_range(*_record_span(b, runs_b, xb))
            k = j + 1
    if progress is not None:
        progress(total, total)


def _record_span(stream: Stream, runs: RamRuns, row: int) -> tuple[int, int]:
    start = int(stream.ram.rec_pos[row])
    return start, runs.record_end(row) - start
