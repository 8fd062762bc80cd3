"""The browser's tree over a stream model: lazily built entries, each with its byte range.

An `Entry` is one line of the browser's tree: the stream, its header, a phase, an item, a
configuration subsection, a decoded field, a run of RAM records. Children are made on first
access, so opening a stream with millions of RAM records costs nothing until a RAM section is
expanded. Long child lists are bucketed into range entries of at most `BUCKET` children per
level (as Kaitai's Web IDE does), and RAM pages are never one entry each: consecutive records of
one section, kind and block writing consecutive pages form one run (`RamRuns`).

Every entry that is not `virtual` covers a byte range inside its parent's range, and siblings
are sorted by offset, so `locate(root, offset)` finds the innermost entry at an offset by
bisecting level by level: the hex pane's cursor-to-tree lookup. The RAM overview
(RAM -> blocks -> runs, in block order) is virtual: its entries alias the runs of the
stream-order sections and are skipped by `locate`.
"""

from __future__ import annotations

import bisect
import operator
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress, islice

from analyzer.model import Command, Configuration, Item, Phase, Section, Stream
from analyzer.vmstate import Node
from formats.constants import RAM_KINDS, TARGET_PAGE_SIZE, MigCmd
from formats.ram_scan import COMPRESS_PAGE, MEM_SIZE, PAGE, XBZRLE, ZERO

BUCKET = 100
"""Most children shown under one entry before they are grouped into range entries."""

PAGE_KINDS = frozenset({ZERO, PAGE, XBZRLE, COMPRESS_PAGE})


class Kind(StrEnum):
    ROOT = "stream"
    HEADER = "header"
    PHASE = "phase"
    BUCKET = "range"
    ITEM = "item"
    PART = "part"
    """A fixed piece of an item: section header, footer, configuration subsection, ..."""
    FIELD = "field"
    RUN = "ram run"
    RAM = "ram overview"
    BLOCK = "ram block"
    VMDESC = "vmdesc"
    TAIL = "tail"


@dataclass(eq=False, slots=True)
class Entry:
    """One tree line: what it is, where its bytes are, and how to make its children."""

    kind: Kind
    label: str
    offset: int
    size: int
    parent: Entry | None = None
    item: Item | None = None
    node: Node | None = None
    path: str = ""
    """Field path inside the section (as Node.walk spells it), '' above field level."""
    run: int | None = None
    """Index into the stream's RamRuns for RUN entries."""
    block: int | None = None
    """RAM block index for BLOCK entries."""
    note: str = ""
    """Short secondary text shown dimmed after the label (value, counts)."""
    virtual: bool = False
    make: Callable[[Entry], list[Entry]] | None = None
    _children: list[Entry] | None = None
    _starts: list[int] | None = None

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def expandable(self) -> bool:
        return self.make is not None or bool(self._children)

    @property
    def children(self) -> list[Entry]:
        if self._children is None:
            made = self.make(self) if self.make is not None else []
            for child in made:
                child.parent = self
            self._children = made
        return self._children

    def chain(self) -> list[Entry]:
        """This entry's ancestors from the root, then the entry itself."""
        out: list[Entry] = []
        e: Entry | None = self
        while e is not None:
            out.append(e)
            e = e.parent
        return out[::-1]

    def section(self) -> Item | None:
        """The (innermost) item this entry belongs to."""
        e: Entry | None = self
        while e is not None:
            if e.item is not None:
                return e.item
            e = e.parent
        return None

    def full_path(self) -> str:
        """A path naming this entry for people: item label, then the field path."""
        item = self.section()
        base = item_key(item) if item is not None else ""
        if self.path:
            return f"{base}/{self.path}" if base else self.path
        if self.kind in (Kind.ITEM, Kind.PART, Kind.RUN, Kind.FIELD) and base:
            return base if self.kind == Kind.ITEM else f"{base}/{self.label}"
        return self.label

    def child_at(self, offset: int) -> Entry | None:
        """The non-virtual child whose range holds offset (children are sorted by offset)."""
        kids = self.children
        if not kids:
            return None
        if self._starts is None:
            self._starts = [k.offset if not k.virtual else -1 for k in kids]
        i = bisect.bisect_right(self._starts, offset) - 1
        while i >= 0:
            k = kids[i]
            if not k.virtual and k.offset <= offset < k.end:
                return k
            if not k.virtual and k.end <= offset:
                return None
            i -= 1
        return None


def locate(root: Entry, offset: int, target: object = None) -> list[Entry]:
    """The chain root..innermost entry covering offset (stops early at `target`'s entry).

    `target` is an Item or a Node: the descent stops at the entry made for it, so a search hit
    on a struct selects the struct and not its first field.
    """
    chain = [root]
    e = root
    while True:
        if target is not None and (e.node is target or (e.item is target and e.node is None
                                                        and e.kind == Kind.ITEM)):
            return chain
        nxt = e.child_at(offset)
        if nxt is None:
            return chain
        chain.append(nxt)
        e = nxt


def item_key(item: Item) -> str:
    """How paths and labels name an item: `cpu#0` for sections, the label otherwise."""
    if isinstance(item, Section):
        return item.name
    return item.label


def hexoff(n: int) -> str:
    return f"0x{n:x}"


def human_size(n: int) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


class RamRuns:
    """Runs of RAM records: one section, one kind, one block, consecutive page offsets.

    Row r of the RamIndex starts a new run unless its be64 header is the previous header plus
    one page (same flags, next page); EOS and block changes always break a run. Computed at C
    speed with itertools, so a million records take a few tens of milliseconds.
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        ram = stream.ram
        n = len(ram)
        self.rows = n
        af = ram.addr_flags
        starts = array("Q")
        if n:
            starts.append(0)
            step = TARGET_PAGE_SIZE .__add__
            starts.extend(compress(range(1, n), map(operator.ne, islice(af, 1, n),
                                                    map(step, islice(af, 0, n - 1)))))
        self.starts = starts
        self._by_block: list[array[int]] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def row_range(self, r: int) -> tuple[int, int]:
        first = self.starts[r]
        last = self.starts[r + 1] if r + 1 < len(self.starts) else self.rows
        return first, last

    def of_rows(self, first: int, last: int) -> range:
        """Runs whose rows lie in [first, last)."""
        return range(bisect.bisect_left(self.starts, first), bisect.bisect_left(self.starts, last))

    def at_row(self, row: int) -> int:
        return bisect.bisect_right(self.starts, row) - 1

    def kind(self, r: int) -> int:
        return int(self.stream.ram.addr_flags[self.starts[r]] & 0xFDF)

    def record_end(self, row: int) -> int:
        """The offset just after record `row` (header, block name, payload)."""
        ram = self.stream.ram
        if row + 1 < self.rows and ram.section[row + 1] == ram.section[row]:
            return int(ram.rec_pos[row + 1])
        return int(ram.payload_pos[row]) + ram.payload_len(row, self.stream.buf)

    def span(self, r: int) -> tuple[int, int]:
        first, last = self.row_range(r)
        return int(self.stream.ram.rec_pos[first]), self.record_end(last - 1)

    def pages(self, r: int) -> tuple[int, int]:
        """First and last page offset written by a page run."""
        first, last = self.row_range(r)
        af = self.stream.ram.addr_flags
        return int(af[first] & ~0xFFF), int(af[last - 1] & ~0xFFF)

    def describe(self, r: int) -> tuple[str, str]:
        """(label, note) of a run for the tree."""
        first, last = self.row_range(r)
        ram = self.stream.ram
        kind = self.kind(r)
        name = RAM_KINDS.get(kind, f"{kind:#x}")
        n = last - first
        if kind in PAGE_KINDS:
            lo, hi = self.pages(r)
            block = ram.blocks[ram.block[first]].idstr if ram.block[first] >= 0 else "?"
            what = f"{name} x{n}" if n > 1 else name
            rng = hexoff(lo) if n == 1 else f"{hexoff(lo)}-{hexoff(hi + TARGET_PAGE_SIZE - 1)}"
            return f"{what} {block} {rng}", human_size(n * TARGET_PAGE_SIZE)
        if kind == MEM_SIZE:
            return "MEM_SIZE block list", human_size(int(ram.addr_flags[first] & ~0xFFF))
        return name, ""

    def by_block(self) -> list[array[int]]:
        """Page-run indexes per RAM block, in stream order."""
        if self._by_block is None:
            ram = self.stream.ram
            out: list[array[int]] = [array("Q") for _ in ram.blocks]
            blk = ram.block
            af = ram.addr_flags
            for r, s in enumerate(self.starts):
                b = blk[s]
                if b >= 0 and (af[s] & 0xFDF) in PAGE_KINDS:
                    out[b].append(r)
            self._by_block = out
        return self._by_block


def _bucket_entry(
    lo: int, hi: int, make_one: Callable[[int], Entry], label: Callable[[int, int], str],
    virtual: bool, kids: Callable[[Entry], list[Entry]],
) -> Entry:
    first, last = make_one(lo), make_one(hi - 1)
    e = Entry(Kind.BUCKET, label(lo, hi), first.offset, last.end - first.offset,
              virtual=virtual, note=f"{hi - lo:,} entries")
    e.make = kids
    return e


def _range_maker(
    lo: int, hi: int, make_one: Callable[[int], Entry], label: Callable[[int, int], str],
    virtual: bool,
) -> Callable[[Entry], list[Entry]]:
    def kids(_: Entry) -> list[Entry]:
        if hi - lo <= BUCKET:
            return [make_one(i) for i in range(lo, hi)]
        step = BUCKET
        while (hi - lo) > step * BUCKET:
            step *= BUCKET
        return [
            _bucket_entry(a, min(a + step, hi), make_one, label, virtual,
                          _range_maker(a, min(a + step, hi), make_one, label, virtual))
            for a in range(lo, hi, step)
        ]

    return kids


def group(
    parent: Entry, n: int, make_one: Callable[[int], Entry], label: Callable[[int, int], str]
) -> list[Entry]:
    """Children 0..n-1 of parent, bucketed into nested range entries when there are many."""
    return _range_maker(0, n, make_one, label, parent.virtual)(parent)


@dataclass
class StreamTree:
    """Builds the entries of one stream (after indexing) and answers offset lookups."""

    stream: Stream
    runs: RamRuns | None = None
    root: Entry = field(init=False)
    provisional: bool = False

    def __post_init__(self) -> None:
        if self.runs is None and not self.provisional:
            self.runs = RamRuns(self.stream)
        self.root = self._root()

    # -- top level -----------------------------------------------------------------------

    def _root(self) -> Entry:
        s = self.stream
        name = s.path.rsplit("/", 1)[-1]
        root = Entry(Kind.ROOT, name, 0, s.size, note=human_size(s.size))
        root.make = self._top
        return root

    def _top(self, root: Entry) -> list[Entry]:
        s = self.stream
        out: list[Entry] = []
        if s.size >= 8:
            hdr = Entry(Kind.HEADER, "file header", 0, 8, note=f"QEVM v{s.file_version}"
                        if s.file_version is not None else "")
            hdr.make = lambda _: [
                Entry(Kind.PART, "magic", 0, 4, note=s.read(0, 4).hex()),
                Entry(Kind.PART, "file_version", 4, 4,
                      note=str(int.from_bytes(s.read(4, 4), "big"))),
            ]
            out.append(hdr)
        top = [i for i in s.items if i.parent is None]
        if self.provisional:
            out.extend(self.item_entry(i) for i in top)
            return out
        groups: list[tuple[Phase, list[Item]]] = []
        for it in top:
            if groups and groups[-1][0] == it.phase:
                groups[-1][1].append(it)
            else:
                groups.append((it.phase, [it]))
        for phase, items in groups:
            out.append(self._phase_entry(phase, items))
        end = top[-1].end if top else 8
        if s.vmdesc_offset is not None and s.vmdesc_offset >= end and s.vmdesc_len is not None:
            vd = Entry(Kind.VMDESC, "VMDESCRIPTION", s.vmdesc_offset, 5 + s.vmdesc_len,
                       note=f"{len(s.vmdesc.devices) if s.vmdesc else 0} devices, "
                       f"{human_size(s.vmdesc_len)} JSON")
            out.append(vd)
            end = vd.end
        if end < s.size:
            what = "not decoded" if s.errors else "trailing bytes"
            out.append(Entry(Kind.TAIL, what, end, s.size - end, note=human_size(s.size - end)))
        if self.runs is not None and s.ram.blocks:
            out.append(self._ram_overview())
        return out

    def _phase_entry(self, phase: Phase, items: list[Item]) -> Entry:
        first, last = items[0], items[-1]
        rounds = sorted({i.round for i in items})
        note = f"{len(items)} items"
        if phase in (Phase.ITERATE, Phase.POSTCOPY) and rounds:
            note += f", rounds {rounds[0]}-{rounds[-1]}" if len(rounds) > 1 else \
                f", round {rounds[0]}"
        e = Entry(Kind.PHASE, str(phase.value), first.offset, last.end - first.offset,
                  note=note)

        def label(a: int, b: int) -> str:
            return f"items {items[a].index}-{items[b - 1].index}"

        e.make = lambda p: group(p, len(items), lambda k: self.item_entry(items[k]), label)
        return e

    # -- items ---------------------------------------------------------------------------

    def item_entry(self, item: Item) -> Entry:
        e = Entry(Kind.ITEM, item.label, item.offset, item.size, item=item)
        if isinstance(item, Section):
            e.label = f"{item.type.short} {item.name}"
            if item.is_ram:
                first, last = item.ram_rows
                e.note = f"round {item.round}, {last - first:,} records" if item.round else \
                    f"{last - first:,} records"
                if not self.provisional:
                    e.make = self._ram_section_children
            else:
                e.note = f"v{item.version_id}" if item.version_id else ""
                if item.nodes is None:
                    e.note += " · undecoded"
                e.make = self._section_children
        elif isinstance(item, Configuration):
            e.make = self._config_children
            e.note = f"{len(item.subsections)} subsections"
        elif isinstance(item, Command):
            e.note = ", ".join(f"{k}={v}" for k, v in item.args.items()
                               if k not in ("payload_offset", "package_offset", "ranges"))
            if item.cmd == MigCmd.MIG_CMD_PACKAGED:
                e.make = self._package_children
        return e

    def _section_header(self, sec: Section) -> list[Entry]:
        out = [Entry(Kind.PART, "section header", sec.offset, sec.body_start - sec.offset,
                     note=f"id {sec.section_id}")]
        return out

    def _section_footer(self, sec: Section) -> list[Entry]:
        if sec.footer_offset is None:
            return []
        return [Entry(Kind.PART, "footer", sec.footer_offset, 5, note=f"id {sec.section_id}")]

    def _section_children(self, e: Entry) -> list[Entry]:
        sec = e.item
        assert isinstance(sec, Section)
        out = self._section_header(sec)
        if sec.nodes is not None:
            nodes = sec.nodes
            out.extend(group(e, len(nodes), lambda k: self.node_entry(nodes[k], ""),
                             lambda a, b: f"fields {a}-{b - 1}"))
        elif sec.body_end > sec.body_start:
            out.append(Entry(Kind.PART, "payload", sec.body_start, sec.body_end - sec.body_start,
                             note=f"undecoded: {sec.undecoded_reason}"))
        out.extend(self._section_footer(sec))
        return out

    def node_entry(self, node: Node, prefix: str) -> Entry:
        path = f"{prefix}/{node.name}" if prefix else node.name
        e = Entry(Kind.FIELD, node.name, node.offset, node.size, node=node, path=path)
        e.note = node_note(node)
        kids = node.children
        if kids:
            e.make = lambda p: group(p, len(kids), lambda k: self.node_entry(kids[k], path),
                                     lambda a, b: f"[{a}-{b - 1}]")
        return e

    def _config_children(self, e: Entry) -> list[Entry]:
        cfg = e.item
        assert isinstance(cfg, Configuration)
        n = len(cfg.machine.encode("latin-1"))
        out = [Entry(Kind.PART, "machine", cfg.offset + 1, 4 + n, note=cfg.machine,
                     path="machine")]
        for sub in cfg.subsections:
            value = sub.value
            if isinstance(value, bytes):
                note = value.hex()
            elif isinstance(value, list):
                note = ", ".join(map(str, value)) or "(none)"
            else:
                note = str(value)
            out.append(Entry(Kind.PART, sub.name.removeprefix("configuration/"), sub.offset,
                             sub.size, note=note, path=sub.name))
        return out

    def _package_children(self, e: Entry) -> list[Entry]:
        cmd = e.item
        assert isinstance(cmd, Command)
        inner = [i for i in self.stream.items if i.parent == cmd.index]
        return group(e, len(inner), lambda k: self.item_entry(inner[k]),
                     lambda a, b: f"items {inner[a].index}-{inner[b - 1].index}")

    # -- RAM -----------------------------------------------------------------------------

    def run_entry(self, r: int, virtual: bool = False) -> Entry:
        runs = self.runs
        assert runs is not None
        lo, hi = runs.span(r)
        label, note = runs.describe(r)
        sec_index = self.stream.ram.section[runs.starts[r]]
        item = self.stream.items[sec_index] if sec_index < len(self.stream.items) else None
        if virtual and item is not None:
            note = f"{note} · {item.type.short} r{item.round}"
        e = Entry(Kind.RUN, label, lo, hi - lo, run=r, note=note, virtual=virtual)
        if virtual:
            e.item = item
        if runs.kind(r) == MEM_SIZE:
            e.make = self._block_list
        return e

    def _block_list(self, e: Entry) -> list[Entry]:
        blocks = self.stream.ram.blocks
        out: list[Entry] = []
        for b in blocks:
            if b.entry_offset < 0:
                continue
            n = len(b.idstr.encode("latin-1"))
            size = 1 + n + 8
            if b.page_size is not None:
                size += 8
            if b.addr is not None:
                size += 8
            out.append(Entry(Kind.PART, b.idstr, b.entry_offset, size,
                             note=f"used_length {hexoff(b.used_length)}",
                             path=f"blocks/{b.idstr}"))
        out.sort(key=lambda x: x.offset)
        return out

    def _ram_section_children(self, e: Entry) -> list[Entry]:
        sec = e.item
        assert isinstance(sec, Section) and self.runs is not None
        out = self._section_header(sec)
        rr = self.runs.of_rows(*sec.ram_rows)
        base = rr.start

        def label(a: int, b: int) -> str:
            return f"runs {a}-{b - 1}"

        out.extend(group(e, len(rr), lambda k: self.run_entry(base + k), label))
        out.extend(self._section_footer(sec))
        return out

    def _ram_overview(self) -> Entry:
        s = self.stream
        e = Entry(Kind.RAM, "RAM blocks", 0, 0, virtual=True,
                  note=f"{len(s.ram.blocks)} blocks, {len(s.ram):,} records")

        def blocks(_: Entry) -> list[Entry]:
            out = []
            for bi, b in enumerate(s.ram.blocks):
                be = Entry(Kind.BLOCK, b.idstr, 0, 0, block=bi, virtual=True,
                           note=human_size(b.used_length) + ("" if b.listed else " · NOT LISTED"))
                be.make = self._block_runs
                out.append(be)
            return out

        e.make = blocks
        return e

    def _block_runs(self, e: Entry) -> list[Entry]:
        assert self.runs is not None and e.block is not None
        runs = self.runs.by_block()[e.block]
        r = self.runs

        def label(a: int, b: int) -> str:
            lo = r.pages(runs[a])[0]
            hi = r.pages(runs[b - 1])[1]
            return f"runs {a}-{b - 1} (pages {hexoff(lo)}…{hexoff(hi)})"

        return group(e, len(runs), lambda k: self.run_entry(runs[k], virtual=True), label)


def node_note(node: Node) -> str:
    """The dimmed text after a field's name: its value, or its type and size."""
    v = node.value
    if node.kind == "nullptr":
        return "NULL"
    if node.kind == "subsection":
        return f"subsection v{node.version}"
    if node.children is not None:
        what = node.vmsd_name or node.type
        if node.kind == "array":
            return f"{node.type}[{len(node.children)}]"
        return f"{what} v{node.version}" if node.version is not None else what
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        if v < 0:
            return f"{v}"
        return f"{v}" if v < 10 else f"{v} ({v:#x})"
    if isinstance(v, bytes):
        shown = v[:16].hex(" ")
        return f"{node.type} [{len(v)}] {shown}{' …' if len(v) > 16 else ''}"
    if v is None:
        return node.type
    return str(v)


def walk_fields(stream: Stream) -> Iterator[tuple[Section, str, Node]]:
    """(section, path, node) for every decoded field of every device section."""
    for it in stream.items:
        if isinstance(it, Section) and it.nodes:
            for top in it.nodes:
                for path, node in top.walk():
                    yield it, path, node


def record_at(stream: Stream, offset: int) -> int | None:
    """The RAM row whose record holds `offset`, if any."""
    ram = stream.ram
    i = bisect.bisect_right(ram.rec_pos, offset) - 1
    if i < 0:
        return None
    end = int(ram.payload_pos[i]) + ram.payload_len(i, stream.buf)
    if int(ram.addr_flags[i] & 0xFDF) == MEM_SIZE:
        end = int(ram.rec_pos[i + 1]) if i + 1 < len(ram) else end
    return i if offset < end else None


def sorted_unique(xs: Sequence[int]) -> list[int]:
    return sorted(set(xs))
