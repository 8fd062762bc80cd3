"""What the details pane says about an entry and about the bytes under the hex cursor.

Pure functions from the model to (label, text) rows, so the wording is testable without a
terminal: the typed value (integer in both byte orders, hex, ASCII, bool), type, size,
version, where the description came from, and the decode state.
"""

from __future__ import annotations

from analyzer.model import Command, Configuration, Section, Stream
from analyzer.tui.entries import Entry, Kind, RamRuns, hexoff, human_size, record_at
from formats.constants import RAM_KINDS, TARGET_PAGE_SIZE

Rows = list[tuple[str, str]]

MAX_VALUE_BYTES = 64
"""Longer values are shown by their first bytes only (the hex pane has the rest)."""


def ascii_of(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data)


def int_rows(data: bytes, signed: bool = False, total: int | None = None) -> Rows:
    """A value's bytes read as integers (both byte orders), hex, ASCII and bool.

    `data` may be the first bytes of a longer value of `total` bytes.
    """
    rows: Rows = []
    n = len(data) if total is None else total
    if 0 < n <= 8 and len(data) == n:
        be = int.from_bytes(data, "big", signed=signed)
        le = int.from_bytes(data, "little", signed=signed)
        rows.append(("int BE", f"{be:,} ({hexoff(be & ((1 << 8 * n) - 1))})"))
        rows.append(("int LE", f"{le:,} ({hexoff(le & ((1 << 8 * n) - 1))})"))
    shown = data[:MAX_VALUE_BYTES]
    more = f" … (+{n - len(shown)} bytes)" if n > len(shown) else ""
    rows.append(("hex", (shown.hex(" ") or "(empty)") + more))
    rows.append(("ASCII", repr(ascii_of(shown)) + more))
    if n == 1:
        rows.append(("bool", "true" if data[0] else "false"
                     + ("" if data[0] in (0, 1) else " (not 0/1)")))
    return rows


def decode_state(stream: Stream, entry: Entry) -> str:
    """Decoded / undecoded / error, for the status bar."""
    item = entry.section()
    if isinstance(item, Section):
        if item.is_ram:
            return "RAM records indexed"
        if item.nodes is None:
            return f"undecoded: {item.undecoded_reason}"
        return "decoded"
    if entry.kind == Kind.TAIL and stream.errors:
        return f"error: {stream.errors[0].message}"
    return "decoded"


def description_source(stream: Stream) -> str:
    if stream.vmdesc_source == "stream":
        return "the stream's VMDESCRIPTION"
    if stream.vmdesc_source == "external":
        return "--desc file"
    return "none (no VMDESCRIPTION)"


def entry_rows(stream: Stream, entry: Entry, runs: RamRuns | None) -> Rows:
    """Everything the details pane shows about one tree entry."""
    rows: Rows = [("path", entry.full_path() or entry.label)]
    where = f"{hexoff(entry.offset)} ({entry.offset:,})"
    if entry.virtual and entry.kind != Kind.RUN:
        where = "(overview: not one byte range)"
    rows.append(("offset", where))
    if not (entry.virtual and entry.kind != Kind.RUN):
        rows.append(("size", f"{entry.size:,} bytes ({human_size(entry.size)})"))
    node = entry.node
    item = entry.section()
    if node is not None:
        rows.append(("type", f"{node.type} ({node.kind})"))
        if node.version is not None:
            rows.append(("version", f"{node.version}" + (f" (vmsd {node.vmsd_name})"
                                                        if node.vmsd_name else "")))
        rows.append(("described by", description_source(stream)))
        if node.children is None:
            raw = stream.read(node.offset, min(node.size, MAX_VALUE_BYTES))
            v = node.value
            if isinstance(v, bool):
                rows.append(("value", "true" if v else "false"))
            elif isinstance(v, int):
                rows.append(("value", f"{v:,} ({hexoff(v)})" if v >= 0 else f"{v:,}"))
            elif node.kind == "nullptr":
                rows.append(("value", "NULL pointer marker (0x30)"))
            signed = isinstance(v, int) and v < 0
            rows.extend(int_rows(raw, signed, node.size))
        else:
            rows.append(("children", f"{len(node.children):,}"))
    elif entry.kind == Kind.RUN and runs is not None and entry.run is not None:
        first, last = runs.row_range(entry.run)
        kind = runs.kind(entry.run)
        ram = stream.ram
        rows.append(("records", f"{last - first:,} {RAM_KINDS.get(kind, hexoff(kind))} "
                                f"(rows {first:,}-{last - 1:,})"))
        b = ram.block[first]
        if b >= 0:
            lo, hi = runs.pages(entry.run)
            rows.append(("block", ram.blocks[b].idstr))
            rows.append(("pages", f"{hexoff(lo)} - {hexoff(hi + TARGET_PAGE_SIZE - 1)} "
                                  f"({human_size(hi - lo + TARGET_PAGE_SIZE)})"))
    elif entry.kind == Kind.BLOCK and entry.block is not None:
        blk = stream.ram.blocks[entry.block]
        rows.append(("used_length", f"{hexoff(blk.used_length)} "
                                    f"({human_size(blk.used_length)})"))
        if blk.addr is not None:
            rows.append(("addr", hexoff(blk.addr)))
        rows.append(("listed", "yes" if blk.listed else "no (only named by a page record)"))
    elif entry.kind == Kind.PART or entry.kind == Kind.HEADER:
        raw = stream.read(entry.offset, min(entry.size, MAX_VALUE_BYTES))
        if entry.note:
            rows.append(("value", entry.note))
        rows.extend(int_rows(raw, False, entry.size))
    if entry.kind == Kind.ITEM and item is not None:
        rows.append(("phase", f"{item.phase.value}, round {item.round}"))
        if isinstance(item, Section):
            rows.append(("section", f"id {item.section_id}, {item.idstr!r} instance "
                                    f"{item.instance_id}, version {item.version_id}"))
            rows.append(("footer", "yes" if item.footer_offset is not None else "no"))
            if item.is_ram:
                first, last = item.ram_rows
                counts = stream.ram.counts.get(item.index, {})
                rows.append(("records", f"{last - first:,}: " + ", ".join(
                    f"{RAM_KINDS.get(k, hexoff(k))} {n:,}" for k, n in counts.items())))
            elif item.nodes is not None:
                rows.append(("decoded", f"{sum(1 for n in item.nodes for _ in n.walk()):,} "
                                        f"fields, described by {description_source(stream)}"))
            else:
                rows.append(("decoded", f"no: {item.undecoded_reason}"))
        elif isinstance(item, Command):
            rows.append(("command", f"{item.name} ({item.cmd}), {item.len_data} data bytes"))
            for k, v in item.args.items():
                if k != "payload_offset":
                    rows.append((k, str(v)[:200]))
        elif isinstance(item, Configuration):
            rows.append(("machine", item.machine))
    elif entry.kind == Kind.TAIL and stream.errors:
        rows.append(("error", str(stream.errors[0])))
    return rows


def cursor_rows(stream: Stream, offset: int) -> Rows:
    """The bytes at the hex cursor as integers (u8..u64 in both byte orders)."""
    if not 0 <= offset < stream.size:
        return []
    data = stream.read(offset, 8)
    rows: Rows = [("cursor", f"{hexoff(offset)} ({offset:,})")]
    parts = []
    for n in (1, 2, 4, 8):
        if len(data) >= n:
            be = int.from_bytes(data[:n], "big")
            le = int.from_bytes(data[:n], "little")
            parts.append(f"u{8 * n} {be:#x}" if n == 1 else f"u{8 * n} be {be:#x} le {le:#x}")
    rows.append(("at cursor", " · ".join(parts)))
    row = record_at(stream, offset)
    if row is not None:
        ram = stream.ram
        kind = int(ram.addr_flags[row] & 0xFDF)
        b = ram.block[row]
        block = ram.blocks[b].idstr if b >= 0 else "-"
        page = int(ram.addr_flags[row] & ~0xFFF)
        into = offset - int(ram.payload_pos[row])
        where = f" +{hexoff(into)} into the payload" if into >= 0 else " (record header)"
        rows.append(("RAM record", f"row {row:,}: {RAM_KINDS.get(kind, hexoff(kind))} "
                                   f"{block} page {hexoff(page)}{where}"))
    return rows
