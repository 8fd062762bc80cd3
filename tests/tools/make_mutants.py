"""Build the mutation corpus of the committed captures and record real QEMU 7.2's verdicts.

Each mutant is a small recipe of byte operations (tests/support/mutants.py) on one capture:
version bumps and drops (sections and subsections), unknown, reordered, duplicated and dropped
subsections, machine names, configuration capabilities / UUID / page bits, footers,
truncations, RAM flag, block and offset corruptions, XBZRLE and compressed-page damage,
commands, section ids, instance ids and legacy names, section order, `equal` / `int32 le` /
irq-state field changes, top-level junk, and random single-bit flips in structural bytes
(section headers, footers, subsection headers, RAM record headers, commands, configuration).

Besides the mutants, every capture is paired unmodified with every other capture's destination
configuration ("cross": same machine with other devices, capabilities, or another machine).

``--record`` loads every mutant once into a fresh QEMU 7.2 destination started with the
capture's own machine arguments and destination capabilities (for "cross", the other
capture's; fixtures.kit.dest.load_stream,
sequentially) and writes tests/data/mutants/verdicts.json: recipes, base checksums, QEMU's
accept/reject, its status and the error lines it printed. Without ``--record`` it only lists
the mutants. Usage: ``python tests/tools/make_mutants.py [--record] [--only SUBSTRING]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from analyzer.loadsim import node_paths  # noqa: E402
from analyzer.model import Section, Stream  # noqa: E402
from analyzer.vmstate import Node  # noqa: E402
from tests.support.mutants import (  # noqa: E402
    CAPTURES,
    VERDICTS,
    Op,
    apply_ops,
    qemu_named_section,
    sha256,
)

log = logging.getLogger("make_mutants")

BASES = ["pc-paused", "pc-live", "pc-xbzrle", "pc-compress", "pc-ignore-shared", "pc-smp2",
         "q35-paused", "q35-devices", "pc-novmdesc"]
"""pc-postcopy is left out: it only loads over TCP with postcopy-ram and userfaultfd."""


def be32(v: int) -> str:
    return struct.pack(">I", v & 0xFFFFFFFF).hex()


def be64(v: int) -> str:
    return struct.pack(">Q", v & 0xFFFFFFFFFFFFFFFF).hex()


def cstr(s: str) -> str:
    b = s.encode()
    return bytes([len(b)]).hex() + b.hex()


@dataclass
class Mutant:
    id: str
    base: str
    category: str
    description: str
    ops: list[Op]
    reference: str | None = None
    """The capture whose destination configuration loads it (default: the base's)."""


@dataclass
class Base:
    name: str
    data: bytes
    stream: Stream
    out: list[Mutant] = field(default_factory=list)

    def add(self, category: str, tag: str, description: str, ops: list[Op]) -> None:
        mid = f"{self.name}/{category}/{tag}"
        if any(m.id == mid for m in self.out):
            raise ValueError(f"duplicate mutant id {mid}")
        self.out.append(Mutant(mid, self.name, category, description, ops))

    # -- lookups ------------------------------------------------------------------------

    def sec(self, idstr: str, instance: int = 0, types: tuple[int, ...] = (1, 4)) -> Section:
        for s in self.stream.sections:
            if s.idstr == idstr and s.instance_id == instance and s.type in types:
                return s
        raise KeyError(f"{self.name}: no section {idstr}#{instance}")

    def has(self, idstr: str, instance: int = 0) -> bool:
        try:
            self.sec(idstr, instance)
            return True
        except KeyError:
            return False

    def full(self) -> list[Section]:
        return [s for s in self.stream.sections if s.type == 4]

    def node(self, sec: Section, path: str) -> Node:
        assert sec.nodes is not None
        for p, n in node_paths(sec.nodes):
            if p == path:
                return n
        raise KeyError(f"{self.name}: {sec.idstr} has no field {path}")

    def subsections(self) -> Iterator[tuple[Section, Node]]:
        for s in self.full():
            for _, n in node_paths(s.nodes or []):
                if n.kind == "subsection":
                    yield s, n


def hdr_version_off(sec: Section) -> int:
    return sec.offset + 6 + len(sec.idstr.encode()) + 4


def hdr_instance_off(sec: Section) -> int:
    return sec.offset + 6 + len(sec.idstr.encode())


# -- generators ----------------------------------------------------------------------------


def versions(b: Base) -> None:
    picks = ["timer", "cpu", "apic", "fw_cfg", "hpet", "mc146818rtc", "i8254", "ps2kbd",
             "serial", "ioapic", "cpu_common", "PCIBUS", "kvm-tpr-opt", "pckbd", "vmmouse",
             "0000:00:01.1/ide", "0000:00:00.0/I440FX", "0000:00:1f.2/ich9_ahci",
             "0000:00:03.0/e1000", "0000:00:00.0/mch", "0000:00:01.0/PIIX3", "dma", "globalstate"]
    present = [p for p in picks if b.has(p)]
    rng = random.Random(f"versions/{b.name}")
    chosen = rng.sample(present, min(len(present), 4))
    for idstr in chosen:
        s = b.sec(idstr)
        off = hdr_version_off(s)
        v = s.version_id
        tag = idstr.replace("/", "_")
        b.add("version-bump", tag, f"{idstr} section version {v} -> {v + 1}",
              [["replace", off, be32(v + 1)]])
        if v > 0:
            b.add("version-drop", tag, f"{idstr} section version {v} -> {v - 1}",
                  [["replace", off, be32(v - 1)]])
        if v > 1 and rng.random() < 0.5:
            b.add("version-drop", tag + "-to-0", f"{idstr} section version {v} -> 0",
                  [["replace", off, be32(0)]])
    ram = b.sec("ram", types=(1,))
    if b.name in ("pc-paused", "pc-live", "q35-devices"):
        b.add("version-bump", "ram", "ram START version 4 -> 5",
              [["replace", hdr_version_off(ram), be32(5)]])
        b.add("version-drop", "ram", "ram START version 4 -> 3",
              [["replace", hdr_version_off(ram), be32(3)]])
    if b.name == "pc-paused":
        s = b.sec("timer")
        b.add("version-bump", "timer-256", "timer version 2 -> 0x102 (the section version is "
              "32 bits, unlike a subsection's)", [["replace", hdr_version_off(s), be32(0x102)]])


def subsections(b: Base) -> None:
    subs = list(b.subsections())
    if not subs:
        return
    rng = random.Random(f"subsections/{b.name}")
    seen: set[str] = set()
    for s, n in rng.sample(subs, min(2, len(subs))):
        name = n.name
        voff = n.offset + 2 + len(name)
        v = n.version or 0
        tag = name.replace("/", "_")
        if tag in seen:
            continue
        seen.add(tag)
        b.add("subsection-version", f"{tag}-bump", f"{s.idstr}: subsection {name} version "
              f"{v} -> {v + 1}", [["replace", voff, be32(v + 1)]])
        b.add("subsection-version", f"{tag}-wide", f"{s.idstr}: subsection {name} version "
              f"{v} -> {0x100 + v:#x} (7.2 keeps 8 bits)", [["replace", voff, be32(0x100 + v)]])
        if v > 0:
            b.add("subsection-version", f"{tag}-drop", f"{s.idstr}: subsection {name} version "
                  f"{v} -> {v - 1}", [["replace", voff, be32(v - 1)]])
        b.add("subsection-drop", tag, f"{s.idstr}: subsection {name} removed",
              [["delete", n.offset, n.size]])
        b.add("subsection-dup", tag, f"{s.idstr}: subsection {name} sent twice",
              [["copy", n.offset, n.end, n.end]])
    # An unknown subsection at the end of a top-level body, and one inside a nested struct.
    for idstr in ("cpu", "timer", "fw_cfg", "pckbd"):
        if not b.has(idstr):
            continue
        s = b.sec(idstr)
        assert s.desc is not None
        parent = s.desc.vmsd_name
        bogus = "05" + cstr(f"{parent}/bogus")[0:] + be32(1)
        b.add("subsection-unknown", idstr, f"{idstr}: unknown subsection {parent}/bogus "
              "appended", [["insert", s.body_end, bogus]])
        if idstr == "timer":
            other = "05" + cstr("timerx/other") + be32(1)
            b.add("subsection-unknown", "timer-wrong-prefix", "timer: a subsection whose name "
                  "does not start with 'timer' (QEMU stops reading subsections)",
                  [["insert", s.body_end, other]])
            short = "05" + cstr("tim") + be32(1)
            b.add("subsection-unknown", "timer-short-name", "timer: a subsection name shorter "
                  "than the vmsd name", [["insert", s.body_end, short]])
    # Reordered subsections (fw_cfg/dma <-> fw_cfg/acpi_mr).
    fw = [(s, n) for s, n in subs if s.idstr == "fw_cfg"]
    if len(fw) >= 2:
        (_, a), (_, c) = fw[0], fw[1]
        b.add("subsection-order", "fw_cfg", "fw_cfg: its two subsections swapped",
              [["move", c.offset, c.end, a.offset]])
    e1000 = [(s, n) for s, n in subs if s.idstr.endswith("/e1000")]
    if len(e1000) >= 3:
        (_, a), _, (_, c) = e1000[0], e1000[1], e1000[2]
        b.add("subsection-order", "e1000", "e1000: tx_tso_state moved before mit_state",
              [["move", c.offset, c.end, a.offset]])


def configuration(b: Base) -> None:
    cfg = b.stream.configuration
    assert cfg is not None
    name = cfg.machine
    off = cfg.offset + 1

    def rename(tag: str, new: str, why: str) -> None:
        b.add("machine", tag, f"machine type {name!r} -> {new!r} ({why})",
              [["delete", off, 4 + len(name)],
               ["insert", off, be32(len(new)) + new.encode().hex()]])

    if b.name in ("pc-paused", "q35-paused", "pc-smp2", "pc-live"):
        family = name.rsplit("-", 1)[0]
        rename("older", f"{family}-7.1", "another machine version")
        rename("prefix", family, "a prefix of the destination's")
        rename("empty", "", "empty name, a prefix of anything")
        rename("longer", name + "-extra", "longer than the destination's")
        other = "pc-q35-7.2" if name.startswith("pc-i440fx") else "pc-i440fx-7.2"
        rename("other", other, "the other x86 machine")
        if b.name == "pc-paused":
            rename("case", name.upper(), "case differs")
    end = cfg.end
    if b.name in ("pc-paused", "q35-paused"):
        def caps(*names: str) -> str:
            body = be32(len(names)) + "".join(cstr(n) for n in names)
            return "05" + cstr("configuration/capabilities") + be32(1) + body

        b.add("capabilities", "ignore-shared", "capabilities subsection with x-ignore-shared "
              "(the destination has it off)", [["insert", end, caps("x-ignore-shared")]])
        b.add("capabilities", "bogus", "capabilities subsection naming an unknown capability",
              [["insert", end, caps("bogus")]])
        b.add("capabilities", "xbzrle", "capabilities subsection naming xbzrle (not "
              "validated)", [["insert", end, caps("xbzrle")]])
        b.add("capabilities", "version-2", "capabilities subsection version 2",
              [["insert", end, caps("xbzrle")[:-(8 + len(cstr("xbzrle")))]
                .replace(be32(1) , be32(2)) + be32(1) + cstr("xbzrle")]])
        uuid = "05" + cstr("configuration/uuid") + be32(1) + "11" * 16
        b.add("uuid", "added", "uuid subsection added (the destination has no -uuid)",
              [["insert", end, uuid]])
        bits = "05" + cstr("configuration/target-page-bits") + be32(1)
        b.add("page-bits", "12", "target-page-bits subsection saying 12",
              [["insert", end, bits + be32(12)]])
        b.add("page-bits", "13", "target-page-bits subsection saying 13",
              [["insert", end, bits + be32(13)]])
        bogus = "05" + cstr("configuration/bogus") + be32(1)
        b.add("configuration", "unknown-subsection", "unknown configuration subsection",
              [["insert", end, bogus]])
        b.add("configuration", "missing", "configuration section removed",
              [["delete", cfg.offset, cfg.size]])
        b.add("configuration", "twice", "configuration section sent twice",
              [["copy", cfg.offset, cfg.end, end]])
    if b.name == "pc-ignore-shared":
        caps_sub, uuid_sub = cfg.subsections[0], cfg.subsections[1]
        b.add("capabilities", "removed", "capabilities subsection removed (the destination "
              "has x-ignore-shared on)", [["delete", caps_sub.offset, caps_sub.size]])
        b.add("uuid", "changed", "uuid differs from the destination's -uuid",
              [["replace", uuid_sub.offset + uuid_sub.size - 1, "99"]])
        b.add("uuid", "removed", "uuid subsection removed",
              [["delete", uuid_sub.offset, uuid_sub.size]])
        b.add("capabilities", "extra", "capabilities list gains validate-uuid (not validated)",
              [["replace", caps_sub.offset + 2 + len(caps_sub.name) + 4, be32(2)],
               ["insert", caps_sub.offset + caps_sub.size, cstr("validate-uuid")]])


def footers(b: Base) -> None:
    if b.name not in ("pc-paused", "q35-devices", "pc-live", "pc-novmdesc"):
        return
    s = b.sec("apic") if b.has("apic") else b.full()[3]
    assert s.footer_offset is not None
    b.add("footer", "removed", f"{s.idstr}: section footer removed",
          [["delete", s.footer_offset, 5]])
    b.add("footer", "wrong-id", f"{s.idstr}: footer names section id {s.section_id + 1}",
          [["replace", s.footer_offset + 1, be32(s.section_id + 1)]])
    b.add("footer", "bad-marker", f"{s.idstr}: footer marker 0x7e -> 0x7f",
          [["replace", s.footer_offset, "7f"]])
    if b.name == "pc-paused":
        ops: list[Op] = []
        for sec in sorted(b.stream.sections, key=lambda x: -x.offset):
            if sec.footer_offset is not None:
                ops.append(["delete", sec.footer_offset, 5])
        b.add("footer", "all-removed", "every section footer removed (a source with "
              "send-section-footer=off)", ops)
        ram = b.sec("ram", types=(1,))
        assert ram.footer_offset is not None
        b.add("footer", "ram-start-wrong-id", "ram START footer names id 0",
              [["replace", ram.footer_offset + 1, be32(0)]])


def truncations(b: Base) -> None:
    st = b.stream
    size = len(b.data)
    eof = st.eof_offset
    assert eof is not None
    rng = random.Random(f"truncate/{b.name}")
    cuts = {
        "header": 6,
        "config": (st.configuration.offset + 7) if st.configuration else 9,
        "ram-start": b.sec("ram", types=(1,)).body_start + 20,
        "device-body": b.full()[4].body_start + 3,
        "before-eof": eof,
        "random": rng.randrange(eof // 2, eof),
    }
    if b.name in ("pc-paused", "pc-live", "q35-devices"):
        cuts["after-eof"] = eof + 1
        if st.vmdesc_offset is not None:
            cuts["inside-vmdesc"] = st.vmdesc_offset + 100
        s = b.full()[6]
        assert s.footer_offset is not None
        cuts["inside-footer"] = s.footer_offset + 2
    if b.name not in ("pc-paused", "pc-live", "q35-devices", "pc-xbzrle"):
        cuts = {k: v for k, v in cuts.items() if k in ("ram-start", "before-eof", "random")}
    for tag, cut in cuts.items():
        if 0 < cut < size:
            b.add("truncate", tag, f"stream cut at offset {cut} ({tag})", [["truncate", cut]])


def ram(b: Base) -> None:
    st = b.stream
    r = st.ram
    rows = range(len(r))
    page_rows = [i for i in rows if (r.addr_flags[i] & 0xFDF) == 0x08]
    zero_rows = [i for i in rows if (r.addr_flags[i] & 0xFDF) == 0x02]
    named = [i for i in rows if (r.addr_flags[i] & 0xFDF) in (0x02, 0x08, 0x40, 0x100)
             and not r.addr_flags[i] & 0x20]
    rng = random.Random(f"ram/{b.name}")

    def set_header(i: int, value: int) -> Op:
        return ["replace", r.rec_pos[i], be64(value)]

    if page_rows:
        i = rng.choice(page_rows)
        v = r.addr_flags[i]
        b.add("ram-flags", "page-zero", "a PAGE record gets PAGE|ZERO flags",
              [set_header(i, v | 0x02)])
        b.add("ram-flags", "hook", "a PAGE record gets the RDMA HOOK flag",
              [set_header(i, v | 0x80)])
        b.add("ram-flags", "full", "a PAGE record gets the obsolete FULL flag",
              [set_header(i, (v & ~0xFFF) | 0x01)])
        if b.name in ("pc-paused", "pc-live"):
            b.add("ram-flags", "multifd-flush", "a PAGE record becomes 0x200 (MULTIFD_FLUSH, "
                  "not in 7.2)", [set_header(i, (v & ~0xFFF) | 0x200)])
            b.add("ram-flags", "compress", "a PAGE record gets COMPRESS_PAGE flags (the "
                  "destination has no compress capability)", [set_header(i, (v & ~0xFFF) | 0x120)])
    if zero_rows:
        i = rng.choice([z for z in zero_rows if r.addr_flags[z] & 0x20] or zero_rows)
        v = r.addr_flags[i]
        b.add("ram-flags", "zero-as-page", "a ZERO record relabelled PAGE",
              [set_header(i, (v & ~0xFFF) | 0x08 | (v & 0x20))])
        b.add("ram-flags", "zero-as-eos", "a ZERO record relabelled EOS",
              [set_header(i, 0x10)])
        b.add("ram-zero", "fill-55", "a ZERO record fills with 0x55 (QEMU accepts any fill "
              "byte)", [["replace", r.payload_pos[i], "55"]])
        blk = r.blocks[r.block[i]]
        inside = (v & ~0xFFF) ^ 0x1000
        if inside < blk.used_length:
            b.add("ram-offset", "other-page", "a ZERO record moved to another page of its "
                  "block", [set_header(i, inside | (v & 0xFFF))])
        b.add("ram-offset", "past-block", f"a ZERO record's offset moved just past its block "
              f"{blk.idstr!r}", [set_header(i, blk.used_length | (v & 0xFFF))])
        b.add("ram-offset", "huge", "a ZERO record's offset set to 2^40",
              [set_header(i, (1 << 40) | (v & 0xFFF))])
    if named:
        i = named[0]
        v = r.addr_flags[i]
        n = b.data[r.rec_pos[i] + 8]
        b.add("ram-block", "continue-first", "the first page record loses its block name and "
              "gets CONTINUE (no block named before it)",
              [["delete", r.rec_pos[i] + 8, 1 + n], set_header(i, v | 0x20)])
        name = b.data[r.rec_pos[i] + 9 : r.rec_pos[i] + 9 + n]
        bad = name[:-1] + bytes([name[-1] ^ 0x01])
        b.add("ram-block", "unknown-page-block", f"a page record names block "
              f"{bad.decode(errors='replace')!r}", [["replace", r.rec_pos[i] + 9, bad.hex()]])
    # The MEM_SIZE block list.
    mem = next(i for i in rows if (r.addr_flags[i] & 0xFDF) == 0x04)
    total = r.addr_flags[mem] & ~0xFFF
    if b.name in ("pc-paused", "pc-live", "q35-paused", "pc-ignore-shared"):
        blocks = {bl.idstr: bl for bl in r.blocks if bl.listed}
        main = blocks["pc.ram"]
        lo = main.entry_offset + 1 + len("pc.ram")
        b.add("ram-blocks", "pc.ram-size", "pc.ram listed 4 KiB larger (total kept "
              "consistent)", [["replace", lo, be64(main.used_length + 0x1000)],
                              ["replace", r.rec_pos[mem], be64((total + 0x1000) | 0x04)]])
        acpi = blocks["/rom@etc/acpi/tables"]
        lo = acpi.entry_offset + 1 + len(acpi.idstr)
        b.add("ram-blocks", "acpi-resize", "ACPI tables block listed 64 KiB larger (a "
              "resizable block)", [["replace", lo, be64(acpi.used_length + 0x10000)],
                                   ["replace", r.rec_pos[mem], be64((total + 0x10000) | 0x04)]])
        b.add("ram-blocks", "acpi-too-large", "ACPI tables block listed at 4 MiB (over its "
              "2 MiB maximum)", [["replace", lo, be64(0x400000)],
                                 ["replace", r.rec_pos[mem],
                                  be64((total - acpi.used_length + 0x400000) | 0x04)]])
        b.add("ram-blocks", "rename", "pc.ram renamed pc.rax in the block list",
              [["replace", main.entry_offset + 1, b"pc.rax".hex()]])
        b.add("ram-blocks", "total", "block list total 4 KiB too large",
              [["replace", r.rec_pos[mem], be64((total + 0x1000) | 0x04)]])
    xb = [i for i in rows if (r.addr_flags[i] & 0xFDF) == 0x40]
    if xb:
        i = rng.choice(xb)
        p = r.payload_pos[i]
        b.add("ram-xbzrle", "flag", "an XBZRLE record's encoding flag 1 -> 2",
              [["replace", p, "02"]])
        b.add("ram-xbzrle", "length", "an XBZRLE record's length set above 4096",
              [["replace", p + 1, "1001"]])
        b.add("ram-xbzrle", "zero-nzrun", "an XBZRLE delta whose first nzrun length is 0",
              [["replace", p + 4, "00"]])
        b.add("ram-xbzrle", "as-page", "an XBZRLE record relabelled PAGE",
              [set_header(i, (r.addr_flags[i] & ~0xFFF) | 0x28)])
    cp = [i for i in rows if (r.addr_flags[i] & 0xFDF) == 0x100]
    if cp:
        i = rng.choice(cp)
        p = r.payload_pos[i]
        n = int.from_bytes(b.data[p : p + 4], "big")
        b.add("ram-compress", "length", "a compressed page's length set to 5000",
              [["replace", p, be32(5000)]])
        b.add("ram-compress", "adler", "a compressed page's zlib checksum broken",
              [["replace", p + 4 + n - 1, f"{b.data[p + 4 + n - 1] ^ 0xFF:02x}"]])
        b.add("ram-compress", "short", "a compressed page one byte shorter (inflate does not "
              "finish; the last byte is read as the next record)",
              [["replace", p, be32(n - 1)]])


def commands(b: Base) -> None:
    if b.name not in ("pc-paused", "q35-paused"):
        return
    cfg = b.stream.configuration
    assert cfg is not None
    at = cfg.end

    def cmd(c: int, payload: str = "", length: int | None = None) -> str:
        n = len(payload) // 2 if length is None else length
        return "08" + struct.pack(">HH", c, n).hex() + payload

    full = b.full()
    mid = full[len(full) // 2].offset
    cases = [
        ("ping", cmd(2, be32(1)), "PING without a return path"),
        ("open-return-path", cmd(1), "OPEN_RETURN_PATH"),
        ("open-rp-ping", cmd(1) + cmd(2, be32(1)), "OPEN_RETURN_PATH then PING"),
        ("unknown-11", cmd(11), "command 11 (SWITCHOVER_START of 10.x)"),
        ("invalid-0", cmd(0), "command 0 (INVALID)"),
        ("ping-bad-length", cmd(2, "000001", 3), "PING with length 3"),
        ("advise-0", cmd(3), "POSTCOPY_ADVISE with no payload (dirty-bitmaps only)"),
        ("advise-16", cmd(3, be64(4096) + be64(4096)), "POSTCOPY_ADVISE for RAM postcopy"),
        ("advise-8", cmd(3, be64(4096)), "POSTCOPY_ADVISE of length 8"),
        ("listen", cmd(4), "POSTCOPY_LISTEN without ADVISE"),
        ("run", cmd(5), "POSTCOPY_RUN without LISTEN"),
        ("resume", cmd(9), "POSTCOPY_RESUME outside recovery"),
        ("packaged-eof", cmd(7, be32(1)) + "00", "PACKAGED blob holding only EOF"),
        ("open-rp-length", cmd(1, "00", 1), "OPEN_RETURN_PATH with length 1"),
    ]
    for tag, data, desc in cases:
        b.add("command", tag, desc + " after the configuration", [["insert", at, data]])
    b.add("command", "ping-mid", "PING without a return path between device sections",
          [["insert", mid, cmd(2, be32(7))]])


def sections(b: Base) -> None:
    st = b.stream
    full = b.full()
    if b.name in ("pc-paused", "q35-devices", "pc-live"):
        ops: list[Op] = []
        for s in st.sections:
            ops.append(["replace", s.offset + 1, be32(s.section_id + 1000)])
            if s.footer_offset is not None:
                ops.append(["replace", s.footer_offset + 1, be32(s.section_id + 1000)])
        b.add("section-id", "renumber", "every section id +1000 (headers and footers)", ops)
        s = full[5]
        b.add("section-id", "header-only", f"{s.idstr}: header section id changed, footer not",
              [["replace", s.offset + 1, be32(s.section_id + 77)]])
        parts = [x for x in st.sections if x.type == 2]
        if parts:
            p = parts[0]
            ops = [["replace", p.offset + 1, be32(77)]]
            if p.footer_offset is not None:
                ops.append(["replace", p.footer_offset + 1, be32(77)])
            b.add("section-id", "part-unknown", "a ram PART for section id 77 (never started)",
                  ops)
            ops = [["replace", p.offset + 1, be32(0)]]
            if p.footer_offset is not None:
                ops.append(["replace", p.footer_offset + 1, be32(0)])
            b.add("section-id", "part-zero", "a ram PART for section id 0 (binds to the first "
                  "handler, which expects its own payload)", ops)
        s = full[2]
        b.add("section-type", "full-as-start", f"{s.idstr}: FULL sent as START",
              [["replace", s.offset, "01"]])
        b.add("section-order", "move", f"{full[1].idstr} moved after {full[4].idstr}",
              [["move", full[1].offset, full[1].end, full[4].end - full[1].size]])
        b.add("section-order", "drop", f"{full[3].idstr} removed",
              [["delete", full[3].offset, full[3].size]])
        b.add("section-order", "dup", f"{full[3].idstr} sent twice",
              [["copy", full[3].offset, full[3].end, full[3].end]])
        b.add("section-order", "devices-first", "first device section moved before the "
              "RAM START", [["move", full[0].offset, full[0].end,
                             b.sec("ram", types=(1,)).offset]])
    # Instance ids and names.
    if b.has("timer"):
        s = b.sec("timer")
        b.add("instance", "timer-ffffffff", "timer instance 0 -> 0xffffffff (alias -1)",
              [["replace", hdr_instance_off(s), be32(0xFFFFFFFF)]])
        b.add("instance", "timer-1", "timer instance 0 -> 1",
              [["replace", hdr_instance_off(s), be32(1)]])
        b.add("idstr", "timerx", "idstr timer -> times",
              [["replace", s.offset + 6 + 4, b"s".hex()]])
    if b.has("dma", 1) and b.name in ("pc-paused", "q35-paused"):
        s = b.sec("dma", 1)
        b.add("instance", "dma-2", "dma instance 1 -> 2",
              [["replace", hdr_instance_off(s), be32(2)]])
    if b.has("i8259", 1) and b.name in ("pc-paused", "q35-devices"):
        s = b.sec("i8259", 1)
        b.add("instance", "i8259-alias", "i8259 instance 1 -> 0xa0 (its legacy alias)",
              [["replace", hdr_instance_off(s), be32(0xA0)]])
        b.add("instance", "i8259-ffffffff", "i8259 instance 1 -> 0xffffffff",
              [["replace", hdr_instance_off(s), be32(0xFFFFFFFF)]])
    for idstr in ("0000:00:00.0/I440FX", "0000:00:00.0/mch"):
        if b.has(idstr) and b.name in ("pc-paused", "q35-paused", "pc-smp2"):
            s = b.sec(idstr)
            legacy = idstr.split("/")[1]
            old = b.data[s.offset + 5 : s.offset + 6 + len(idstr)].hex()
            b.add("idstr", "legacy", f"{idstr} sent under its legacy name {legacy}",
                  [["delete", s.offset + 5, len(old) // 2],
                   ["insert", s.offset + 5, cstr(legacy)]])
            wrong = legacy[:-1] + chr(ord(legacy[-1]) + 1)
            b.add("idstr", "legacy-wrong", f"{idstr} sent as {wrong}",
                  [["delete", s.offset + 5, len(old) // 2],
                   ["insert", s.offset + 5, cstr(wrong)]])
    if b.name in ("pc-paused", "q35-paused"):
        ram_s = b.sec("ram", types=(1,))
        b.add("instance", "ram-1", "ram instance 0 -> 1",
              [["replace", hdr_instance_off(ram_s), be32(1)]])
        s = full[6]
        b.add("idstr", "empty", f"{s.idstr}: empty idstr",
              [["delete", s.offset + 5, 1 + len(s.idstr)], ["insert", s.offset + 5, "00"]])


def fields(b: Base) -> None:
    cases: list[tuple[str, str, str, int, str]] = [
        ("PCIBUS", "nirq", "nirq", 1, "int32 equal"),
        ("0000:00:00.0/I440FX", "parent_obj/version_id", "i440fx-version", 3, "int32 le"),
        ("0000:00:00.0/I440FX", "parent_obj/version_id", "i440fx-version-1", 1, "int32 le"),
        ("0000:00:00.0/I440FX", "parent_obj/version_id", "i440fx-version-neg", -1, "int32 le"),
        ("0000:00:00.0/mch", "parent_obj/version_id", "mch-version", 3, "int32 le"),
        ("0000:00:00.0/mch", "parent_obj/version_id", "mch-version-0", 0, "int32 le"),
        ("fdc", "state/num_floppies", "num-floppies", 7, "uint8 equal"),
        ("vmmouse", "queue_size", "queue-size", 1023, "int32 equal"),
        ("0000:00:02.0/vga", "vga/is_vbe_vmstate", "vbe", 0, "uint8 equal"),
        ("0000:00:01.0/vga", "vga/is_vbe_vmstate", "vbe", 0, "uint8 equal"),
        ("0000:00:1f.2/ich9_ahci", "ahci/ports", "ahci-ports", 4, "int32 equal"),
        ("0000:00:01.0/PIIX3", "dev/irq_state", "irq-state-1", 1, "pci irq state"),
        ("0000:00:01.0/PIIX3", "dev/irq_state", "irq-state-2", 2, "pci irq state"),
        ("0000:00:1f.0/ICH9LPC", "d/irq_state", "irq-state-2", 2, "pci irq state"),
    ]
    for idstr, path, tag, value, typ in cases:
        if not b.has(idstr) or b.name not in ("pc-paused", "q35-paused", "q35-devices",
                                              "pc-smp2", "pc-live"):
            continue
        s = b.sec(idstr)
        try:
            n = b.node(s, path)
        except KeyError:
            continue
        if typ == "pci irq state":
            new = be32(value) + b.data[n.offset + 4 : n.end].hex()
        else:
            new = (value & ((1 << (8 * n.size)) - 1)).to_bytes(n.size, "big").hex()
        b.add("field", tag, f"{idstr} {path} ({typ}) -> {value}", [["replace", n.offset, new]])


def toplevel(b: Base) -> None:
    st = b.stream
    eof = st.eof_offset
    assert eof is not None
    if b.name in ("pc-paused", "q35-devices"):
        b.add("toplevel", "magic", "magic QEVM -> QEVN", [["replace", 3, "4e"]])
        b.add("toplevel", "version-2", "stream version 3 -> 2", [["replace", 4, be32(2)]])
        b.add("toplevel", "version-4", "stream version 3 -> 4", [["replace", 4, be32(4)]])
        b.add("toplevel", "stray-05", "a stray 0x05 before EOF", [["insert", eof, "05"]])
        b.add("toplevel", "stray-7e", "a stray footer before EOF",
              [["insert", eof, "7e" + be32(0)]])
        b.add("toplevel", "type-9", "section type 9 before EOF", [["insert", eof, "09"]])
        if st.vmdesc_offset is not None:
            b.add("toplevel", "vmdesc-before-eof", "VMDESCRIPTION placed before EOF",
                  [["truncate", st.vmdesc_offset],
                   ["insert", eof, "06" + be32(2) + b"{}".hex()]])
            b.add("toplevel", "vmdesc-removed", "VMDESCRIPTION removed (QEMU only warns)",
                  [["truncate", st.vmdesc_offset]])
            b.add("toplevel", "vmdesc-junk", "VMDESCRIPTION replaced by junk bytes",
                  [["truncate", st.vmdesc_offset], ["insert", st.vmdesc_offset, "ff" * 32]])
            b.add("toplevel", "vmdesc-length", "VMDESCRIPTION length larger than the file",
                  [["replace", st.vmdesc_offset + 1, be32(0x7FFFFFFF)]])
        b.add("toplevel", "trailing", "64 bytes of garbage after the end",
              [["insert", len(b.data), "a5" * 64]])
        b.add("toplevel", "no-eof", "EOF byte removed (VMDESCRIPTION follows the last section)",
              [["delete", eof, 1]])


def structural_bytes(b: Base) -> list[tuple[int, str]]:
    """Offsets of framing bytes (not payload data), with what they are."""
    st = b.stream
    out: list[tuple[int, str]] = []
    for s in st.sections:
        hdr = 14 + len(s.idstr.encode()) if s.type in (1, 4) else 5
        out.extend((s.offset + k, f"{s.label} header") for k in range(hdr))
        if s.footer_offset is not None:
            out.extend((s.footer_offset + k, f"{s.label} footer") for k in range(5))
    for s, n in b.subsections():
        out.extend((n.offset + k, f"{s.idstr} subsection {n.name} header")
                   for k in range(6 + len(n.name)))
    r = st.ram
    for i in range(0, len(r), max(1, len(r) // 200)):
        out.extend((r.rec_pos[i] + k, "RAM record header") for k in range(8))
    cfg = st.configuration
    if cfg is not None:
        out.extend((cfg.offset + k, "configuration") for k in range(cfg.size))
    return out


def flips(b: Base) -> None:
    count = {"pc-paused": 6, "pc-live": 5, "q35-devices": 6, "pc-xbzrle": 4, "pc-compress": 4,
             "pc-ignore-shared": 4, "pc-smp2": 4, "q35-paused": 4, "pc-novmdesc": 3}[b.name]
    rng = random.Random(f"flips/{b.name}")
    cands = structural_bytes(b)
    for k in range(count):
        off, what = rng.choice(cands)
        bit = rng.randrange(8)
        new = b.data[off] ^ (1 << bit)
        b.add("flip", f"{k}", f"bit {bit} of byte {off} ({what}) flipped",
              [["replace", off, f"{new:02x}"]])


GENERATORS: list[Callable[[Base], None]] = [
    versions, subsections, configuration, footers, truncations, ram, commands, sections,
    fields, toplevel, flips,
]


def cross() -> list[Mutant]:
    """Every capture, unmodified, loaded into every other capture's destination."""
    return [Mutant(f"{src}/cross/{dst}", src, "cross",
                   f"{src} loaded on the {dst} destination configuration", [], reference=dst)
            for dst in BASES for src in BASES if src != dst]


def build_corpus() -> tuple[list[Mutant], dict[str, bytes]]:
    mutants: list[Mutant] = []
    datas: dict[str, bytes] = {}
    for name in BASES:
        path = CAPTURES / f"{name}.bin"
        data = path.read_bytes()
        datas[name] = data
        with Stream.open(path) as st:
            b = Base(name, data, st)
            for gen in GENERATORS:
                gen(b)
            mutants.extend(b.out)
    mutants.extend(cross())
    return mutants, datas


# -- recording -----------------------------------------------------------------------------


def _dest_args(name: str, workdir: Path) -> tuple[list[str], dict[str, bool]]:
    from fixtures.kit.capture import SCENARIOS

    oracle = json.loads((CAPTURES / f"{name}.oracle.json").read_text())
    sc = SCENARIOS[name]
    sc.prepare(workdir)
    args = [a.replace("{workdir}", str(workdir))
            for a in oracle["source"]["machine_args_template"]]
    caps = dict(oracle["migration"].get("destination_capabilities") or {})
    return args, caps


def _error_lines(stderr: str) -> list[str]:
    lines = [ln.removeprefix("qemu-system-x86_64: ").strip() for ln in stderr.splitlines()]
    return [ln for ln in lines if ln][:8]


def record(mutants: list[Mutant], datas: dict[str, bytes]) -> dict[str, Any]:
    from fixtures.kit.dest import load_stream

    verdicts: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="migstream-mutants-") as tmp:
        wd = Path(tmp)
        dests: dict[str, tuple[list[str], dict[str, bool]]] = {}
        for name in {m.reference or m.base for m in mutants}:
            sub = wd / name
            sub.mkdir()
            dests[name] = _dest_args(name, sub)
        t0 = time.monotonic()
        for k, m in enumerate(mutants):
            f = wd / "mutant.bin"
            f.write_bytes(apply_ops(datas[m.base], m.ops))
            dest = m.reference or m.base
            args, caps = dests[dest]
            res = load_stream(f, args, caps, timeout=20.0, workdir=wd / dest,
                              name="mutant")
            lines = _error_lines(res.stderr)
            verdicts.append({
                "id": m.id, "base": m.base, "category": m.category,
                "description": m.description, "ops": m.ops,
                **({"reference": m.reference} if m.reference else {}),
                "qemu": {"accepted": res.accepted, "status": res.status,
                         "exit_code": res.exit_code, "error": lines,
                         "section": qemu_named_section("\n".join(lines))},
            })
            log.info("[%d/%d] %s: %s %s", k + 1, len(mutants), m.id,
                     "accepted" if res.accepted else "REJECTED", lines[-1] if lines else "")
        log.info("recorded %d verdicts in %.0fs", len(verdicts), time.monotonic() - t0)
    return {
        "schema": 1,
        "qemu": _qemu_version(),
        "bases": {name: sha256(data) for name, data in sorted(datas.items())},
        "machine_args": "each base capture's oracle source.machine_args_template, "
                        "destination_capabilities of its oracle",
        "mutants": verdicts,
    }


def dump_corpus(corpus: dict[str, Any]) -> str:
    """JSON with one mutant per line (small diffs when verdicts are re-recorded)."""
    head = {k: v for k, v in corpus.items() if k != "mutants"}
    lines = ["{"]
    lines.extend(f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items())
    lines.append(' "mutants": [')
    ms = corpus["mutants"]
    lines.extend(f"  {json.dumps(m, ensure_ascii=False)}{',' if i < len(ms) - 1 else ''}"
                 for i, m in enumerate(ms))
    lines.append(" ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _qemu_version() -> str:
    from fixtures.kit.vm import qemu_version_string

    return qemu_version_string()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="load every mutant into QEMU")
    ap.add_argument("--only", help="only mutants whose id contains this")
    ap.add_argument("--out", type=Path, default=VERDICTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    mutants, datas = build_corpus()
    if args.only:
        mutants = [m for m in mutants if args.only in m.id]
    if not args.record:
        for m in mutants:
            print(f"{m.id}: {m.description}")
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0
    corpus = record(mutants, datas)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump_corpus(corpus))
    rejected = sum(1 for v in corpus["mutants"] if not v["qemu"]["accepted"])
    print(f"wrote {args.out}: {len(corpus['mutants'])} mutants, {rejected} rejected by QEMU",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
