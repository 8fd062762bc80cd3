"""Renders a stream model for people (`info`) and for programs (`dump --json`).

Both are pure functions of the model; the CLI only prints what they return.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from analyzer.model import Command, Configuration, Item, Phase, Section, Stream
from analyzer.ram import kind_counts
from analyzer.vmstate import Node
from formats.constants import RAM_KINDS
from formats.errors import StreamError


def _size(n: int) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


_SGR = {"red": "31;1", "green": "32;1", "yellow": "33", "cyan": "36", "bold": "1"}


def painter(color: bool) -> Callable[[str, str], str]:
    """paint(style, text): ANSI colour when `color`, the plain text otherwise."""

    def paint(name: str, text: str) -> str:
        return f"\x1b[{_SGR[name]}m{text}\x1b[0m" if color else text

    return paint


def use_color(forced: bool) -> bool:
    """Colour when asked to, or on a terminal unless NO_COLOR is set."""
    return forced or (sys.stdout.isatty() and not os.environ.get("NO_COLOR"))


def error_dict(err: StreamError) -> dict[str, Any]:
    return {
        "offset": err.offset,
        "section": err.section,
        "field": err.field_path,
        "message": err.message,
        "kind": type(err).__name__,
    }


def _item_status(item: Item, stream: Stream | None = None) -> str:
    if isinstance(item, Section):
        if item.is_ram:
            counts = stream.ram.counts.get(item.index, {}) if stream is not None else {}
            return ", ".join(f"{RAM_KINDS.get(k, hex(k))} {n:,}"
                             for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        if item.nodes is not None:
            return f"{sum(1 for n in item.nodes for _ in n.walk())} fields"
        return f"undecoded: {item.undecoded_reason}"
    if isinstance(item, Command):
        args = {k: v for k, v in item.args.items() if k not in ("payload_offset",)}
        return ", ".join(f"{k}={v}" for k, v in args.items())
    return ""


def info_text(stream: Stream, show_sections: bool = True) -> str:
    """The `migstream info` report."""
    out: list[str] = []
    add = out.append
    add(f"{stream.path}: QEMU migration stream, {stream.size:,} bytes ({_size(stream.size)})")
    cfg = stream.configuration
    add(f"  machine       {cfg.machine if cfg else '(no configuration section)'}")
    if cfg is not None:
        add(f"  capabilities  {', '.join(cfg.capabilities) or '(none recorded)'}")
        if cfg.uuid is not None:
            u = cfg.uuid.hex()
            add(f"  uuid          {u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}")
    add(f"  footers       {'yes' if stream.footers else 'no' if stream.footers is False else '?'}")
    if stream.vmdesc_offset is not None:
        add(f"  vmdesc        {stream.vmdesc_len:,} bytes at offset {stream.vmdesc_offset:#x}"
            f" ({len(stream.vmdesc.devices) if stream.vmdesc else 0} devices)")
    else:
        add(f"  vmdesc        none{' (using external descriptions)' if stream.vmdesc else ''}")
    cmds = Counter(c.name for c in stream.commands)
    if cmds:
        add("  commands      " + ", ".join(f"{n} x{c}" for n, c in cmds.items()))
    phases: dict[Phase, Counter[str]] = {}
    for item in stream.items:
        phases.setdefault(item.phase, Counter())[item.type.short] += 1
    add("  phases        " + "; ".join(
        f"{p.value}: " + ", ".join(f"{n} {t}" for t, n in c.items()) for p, c in phases.items()
    ))
    add(f"  iterations    {stream.iterations} iterate passes (PART sections of the first "
        "live handler)")
    ram = stream.ram
    if ram.blocks:
        add("")
        add("RAM blocks")
        add(f"  {'idstr':<32} {'used_length':>14} {'size':>10}  extra")
        for b in ram.blocks:
            extra = []
            if b.addr is not None:
                extra.append(f"addr={b.addr:#x}")
            if b.page_size is not None:
                extra.append(f"page_size={b.page_size:#x}")
            if not b.listed:
                extra.append("NOT IN BLOCK LIST")
            add(f"  {b.idstr:<32} {b.used_length:>#14x} {_size(b.used_length):>10}  "
                + " ".join(extra))
        counts = kind_counts(stream)
        add("RAM records   " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            + f"  (total {len(ram):,})")
        pages = sum(counts.get(k, 0) for k in ("ZERO", "PAGE", "XBZRLE", "COMPRESS_PAGE"))
        distinct = len({(ram.block[i], ram.addr_flags[i] & ~0xFFF) for i in range(len(ram))
                        if (ram.addr_flags[i] & 0xFDF) in (0x2, 0x8, 0x40, 0x100)}
                       ) if len(ram) < 2_000_000 else None
        if distinct is not None:
            add(f"RAM pages     {pages:,} page copies of {distinct:,} distinct pages")
    if show_sections:
        add("")
        add("Items")
        add(f"  {'#':>4} {'offset':>10} {'size':>10}  {'phase':<17} {'rnd':>4}  "
            f"{'type':<13} {'id':>4}  {'idstr':<34} {'inst':>4} {'ver':>4}  detail")
        for item in stream.items:
            sid = idstr = inst = ver = ""
            kind = item.type.short
            if isinstance(item, Section):
                sid, idstr, inst, ver = (str(item.section_id), item.idstr, str(item.instance_id),
                                         str(item.version_id))
            elif isinstance(item, Command):
                kind = f"CMD {item.name}"
            elif isinstance(item, Configuration):
                idstr = item.machine
            nest = "  " if item.parent is not None else ""
            add(f"  {item.index:>4} {item.offset:>#10x} {item.size:>10,}  {item.phase.value:<17}"
                f" {item.round:>4}  {nest + kind:<13} {sid:>4}  {idstr:<34} {inst:>4} {ver:>4}"
                f"  {_item_status(item, stream)}")
        if stream.eof_offset is not None and stream.vmdesc_offset is not None:
            add(f"  {'':>4} {stream.vmdesc_offset:>#10x} {5 + (stream.vmdesc_len or 0):>10,}  "
                f"{'':<17} {'':>4}  VMDESCRIPTION")
    for note in stream.notes:
        add(f"note: {note}")
    return "\n".join(out)


def node_json(stream: Stream, node: Node) -> dict[str, Any]:
    d: dict[str, Any] = {"name": node.name, "type": node.type, "offset": node.offset,
                         "size": node.size}
    if node.kind not in ("field", "element"):
        d["kind"] = node.kind
    if node.vmsd_name is not None:
        d["vmsd_name"] = node.vmsd_name
    if node.version is not None:
        d["version"] = node.version
    if node.children is not None:
        d["fields"] = [node_json(stream, c) for c in node.children]
    elif isinstance(node.value, bytes):
        d["hex"] = node.value.hex()
    elif node.value is not None:
        d["value"] = node.value
    return d


def item_json(stream: Stream, item: Item, records: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "index": item.index,
        "type": item.type.name,
        "offset": item.offset,
        "size": item.size,
        "phase": item.phase.value,
        "round": item.round,
    }
    if item.parent is not None:
        d["package"] = item.parent
    if isinstance(item, Configuration):
        d["machine"] = item.machine
        d["subsections"] = [
            {"name": s.name, "version": s.version, "offset": s.offset, "size": s.size,
             "value": s.value.hex() if isinstance(s.value, bytes) else s.value}
            for s in item.subsections
        ]
    elif isinstance(item, Command):
        d["cmd"] = item.name
        d["len"] = item.len_data
        d.update({k: v for k, v in item.args.items()})
    elif isinstance(item, Section):
        d.update(section_id=item.section_id, idstr=item.idstr, instance_id=item.instance_id,
                 version_id=item.version_id,
                 body={"offset": item.body_start, "size": item.body_end - item.body_start},
                 footer_offset=item.footer_offset)
        if item.is_ram:
            first, last = item.ram_rows
            counts = stream.ram.counts.get(item.index, {})
            d["ram"] = {"records": last - first,
                        "by_kind": {RAM_KINDS.get(k, hex(k)): n for k, n in counts.items()}}
            if records:
                d["ram"]["list"] = [_record_json(stream, i) for i in range(first, last)]
        elif item.nodes is not None and item.desc is not None:
            if item.desc.vmsd_name:
                d["vmsd_name"] = item.desc.vmsd_name
                d["vmsd_version"] = item.desc.version
            d["fields"] = [node_json(stream, n) for n in item.nodes]
        else:
            d["undecoded"] = item.undecoded_reason
    return d


def _record_json(stream: Stream, i: int) -> dict[str, Any]:
    ram = stream.ram
    v = ram.addr_flags[i]
    d: dict[str, Any] = {"offset": ram.rec_pos[i], "kind": RAM_KINDS.get(v & 0xFDF, "?"),
                         "flags": v & 0xFFF, "addr": v & ~0xFFF,
                         "payload_offset": ram.payload_pos[i]}
    if ram.block[i] >= 0:
        d["block"] = ram.blocks[ram.block[i]].idstr
    return d


def dump_dict(stream: Stream, records: bool = False) -> dict[str, Any]:
    """The `migstream dump --json` document: everything decoded, with offsets."""
    cfg = stream.configuration
    return {
        "file": stream.path,
        "size": stream.size,
        "file_version": stream.file_version,
        "machine": cfg.machine if cfg else None,
        "capabilities": cfg.capabilities if cfg else [],
        "footers": stream.footers,
        "iterations": stream.iterations,
        "items": [item_json(stream, i, records) for i in stream.items],
        "eof_offset": stream.eof_offset,
        "vmdesc": None if stream.vmdesc_offset is None else {
            "offset": stream.vmdesc_offset, "size": stream.vmdesc_len,
            "source": stream.vmdesc_source},
        "ram": {
            "blocks": [
                {"idstr": b.idstr, "used_length": b.used_length, "addr": b.addr,
                 "page_size": b.page_size, "listed": b.listed, "offset": b.entry_offset}
                for b in stream.ram.blocks
            ],
            "records": kind_counts(stream),
        },
        "notes": stream.notes,
        "errors": [error_dict(e) for e in stream.errors],
    }
