"""Replays QEMU 7.2's incoming-migration loader over a stream against a model of a destination.

`migstream validate` predicts whether a destination would accept a stream by doing what
savevm.c (`qemu_loadvm_state*`, `find_se`, `check_section_footer`, `loadvm_process_command`),
vmstate.c (`vmstate_load_state`, `vmstate_subsection_load`, the checking infos) and ram.c
(`ram_load_precopy`) do, in the same order, on the same bytes: it stops at the first check the
real loader would fail and reports it as a `Finding` carrying the byte offset, the section, the
field path, a plain explanation and the error text QEMU would print.

The destination (`Destination`) is what the loader compares against: its device set (section
idstrs, instances, legacy names and alias instance ids), each vmsd's version, minimum version,
version-gated fields and known subsections, the values of its `equal` / `int32 le` fields, its
RAM blocks, machine type, validated capabilities, UUID, and the migration properties that
change the framing (configuration section, section footers). `Destination.from_stream` builds it
from a stream captured on that destination (or the stream itself), `Destination.from_profile`
from a QEMU ``-dump-vmstate`` file.

Device payloads are walked with the stream's own description when it describes the section at
the version in its header (so data-dependent array counts are the source's), and with the
destination's otherwise (a lower incoming version then skips the fields that version lacks).
"""

from __future__ import annotations

import logging
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from analyzer.model import Section, Stream
from analyzer.qemu_profile import Profile, VmsdFacts, builtin_profile
from analyzer.vmdesc import DeviceDesc, FieldDesc, VmsdDesc
from analyzer.vmstate import Node
from formats import xbzrle
from formats.constants import (
    COMPRESS_BOUND_PAGE,
    INT_INFOS,
    TARGET_PAGE_BITS,
    TARGET_PAGE_SIZE,
)
from formats.errors import TruncatedStreamError

log = logging.getLogger(__name__)

_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")
U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1


CAPABILITIES_72 = frozenset({
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
    "postcopy-ram", "x-colo", "release-ram", "block", "return-path", "pause-before-switchover",
    "multifd", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
    "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
})
"""MigrationCapability names QEMU 7.2 knows (qapi/migration.json)."""


LEGACY_ALIASES: dict[tuple[str, int], int] = {
    ("i8259", 0): 0x20,
    ("i8259", 1): 0xA0,
    ("mc146818rtc", 0): 0x70,
    ("fdc", 0): 0x3F0,
    ("i8254", 0): 0x40,
    ("serial", 0): 0x3F8,
    ("serial", 1): 0x2F8,
}
"""Alias instance ids of x86 ISA devices (qdev_set_legacy_instance_id: their I/O base)."""

RESIZABLE_BLOCKS: dict[str, int] = {
    "/rom@etc/acpi/tables": 0x200000,
    "/rom@etc/table-loader": 0x10000,
    "/rom@etc/acpi/rsdp": 0x1000,
}
"""RAM blocks a 7.2 x86 destination resizes on load, with their maximum (acpi_add_rom_blob)."""

ITERABLE_IDSTRS = frozenset({"ram", "block", "dirty-bitmap"})

_INDEX_SUFFIX = re.compile(r"\[\d+\]$")
"""The "[k]" vmdesc appends to a field name the vmsd has several times."""


class Errno(IntEnum):
    EPERM = 1
    ENOENT = 2
    EIO = 5
    EAGAIN = 11
    EINVAL = 22
    ERANGE = 34
    ENOTSUP = 95


STRERROR = {
    Errno.EPERM: "Operation not permitted",
    Errno.ENOENT: "No such file or directory",
    Errno.EIO: "Input/output error",
    Errno.EAGAIN: "Resource temporarily unavailable",
    Errno.EINVAL: "Invalid argument",
    Errno.ERANGE: "Numerical result out of range",
    Errno.ENOTSUP: "Operation not supported",
}


class PostcopyState(IntEnum):
    NONE = 0
    ADVISE = 1
    DISCARD = 2
    LISTENING = 3
    RUNNING = 4


@dataclass(slots=True)
class Finding:
    """One result of a check, with everything needed to find and understand it."""

    severity: str
    """"error" (the destination rejects the stream), "warning" (loads, but look) or "info"."""
    check: str
    """Short machine-readable name of the check, e.g. "section.version"."""
    message: str
    offset: int | None = None
    section: str | None = None
    """How migstream labels the section: "'timer' (section id 0, instance 0)"."""
    idstr: str | None = None
    """The section name the QEMU error names (for a footer error: the destination entry's)."""
    section_id: int | None = None
    instance_id: int | None = None
    field: str | None = None
    qemu: str | None = None
    """The error text QEMU 7.2 prints (lines joined by newlines), when it prints one."""
    truncated: bool = False
    scope: str = "destination"
    """"structure", "own" (against the stream's own descriptions) or "destination"."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity, "scope": self.scope, "check": self.check,
            "message": self.message,
            "offset": self.offset, "section": self.section, "idstr": self.idstr,
            "section_id": self.section_id, "instance_id": self.instance_id,
            "field": self.field, "qemu_error": self.qemu, "truncated": self.truncated,
        }


class _Fatal(Exception):
    def __init__(self, finding: Finding, errno: int) -> None:
        super().__init__(finding.message)
        self.finding = finding
        self.errno = errno


class _Quit(Exception):
    """MIG_CMD_POSTCOPY_RUN: leave every nested loader loop (LOADVM_QUIT)."""


class _Reader:
    """Sequential big-endian reads over a slice of the stream, offsets absolute.

    Like QEMUFile, reading past the end yields zero bytes and records the error (`eof`, the
    offset where the data ran out, and what was being read); the loader notices it only where
    QEMU checks `qemu_file_get_error`, so values read as zeros can fail other checks first.
    """

    def __init__(self, buf: memoryview, start: int, end: int) -> None:
        self.buf = buf
        self.pos = start
        self.end = end
        self.eof: int | None = None
        self.eof_what = ""

    def _short(self, n: int, what: str) -> bytes:
        avail = max(0, self.end - self.pos)
        data = bytes(self.buf[self.pos : self.pos + avail]) + bytes(n - avail)
        if self.eof is None:
            self.eof, self.eof_what = self.end, what
        self.pos = self.end
        return data

    def u8(self, what: str = "a byte") -> int:
        if self.pos + 1 > self.end:
            return self._short(1, what)[0]
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def be16(self, what: str = "a be16") -> int:
        if self.pos + 2 > self.end:
            return int(_BE16.unpack(self._short(2, what))[0])
        (v,) = _BE16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return int(v)

    def be32(self, what: str = "a be32") -> int:
        if self.pos + 4 > self.end:
            return int(_BE32.unpack(self._short(4, what))[0])
        (v,) = _BE32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def be64(self, what: str = "a be64") -> int:
        if self.pos + 8 > self.end:
            return int(_BE64.unpack(self._short(8, what))[0])
        (v,) = _BE64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def read(self, n: int, what: str = "data") -> bytes:
        if self.pos + n > self.end:
            return self._short(n, what)
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data

    def skip(self, n: int, what: str = "data") -> None:
        if self.pos + n > self.end:
            if self.eof is None:
                self.eof, self.eof_what = self.end, what
            self.pos = self.end
            return
        self.pos += n

    def peek(self, k: int) -> int:
        """qemu_peek_byte: 0 past the end (and the file is then in error)."""
        p = self.pos + k
        if p < self.end:
            return self.buf[p]
        if self.eof is None:
            self.eof, self.eof_what = self.end, "a subsection marker"
        return 0

    def peek_bytes(self, k: int, n: int) -> bytes:
        p = self.pos + k
        if p + n > self.end and self.eof is None:
            self.eof, self.eof_what = self.end, "a subsection name"
        return bytes(self.buf[p : min(p + n, self.end)])


# -- the destination -----------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One SaveStateEntry of the destination (savevm.c), as far as it can be known."""

    idstr: str
    instance_id: int
    kind: str
    """"ram" (live, old-style handlers), "old" (old-style save_state), "vmsd"."""
    version: int | None
    alias_id: int = U32
    compat: tuple[str, int] | None = None
    desc: DeviceDesc | None = None
    values: dict[str, tuple[str, Any]] = field(default_factory=dict)
    ref_section_id: int = 0
    load_section_id: int = 0
    load_version_id: int = 0

    @property
    def vmsd_name(self) -> str | None:
        if self.desc is not None and self.desc.vmsd_name:
            return self.desc.vmsd_name
        if self.kind == "vmsd":
            return self.idstr.rsplit("/", 1)[-1]
        return None


@dataclass(slots=True)
class BlockState:
    used_length: int
    max_length: int | None = None


@dataclass
class Destination:
    """What the loader compares a stream against. None means "not known": not checked."""

    label: str
    profile: Profile | None = None
    machine: str | None = None
    send_configuration: bool | None = None
    footers: bool | None = None
    expects_vmdesc: bool = False
    ignore_shared: bool | None = None
    uuid: bytes | None = None
    uuid_set: bool | None = None
    compress: bool | None = None
    postcopy_ram: bool | None = None
    blocks: dict[str, int] | None = None
    entries: list[Entry] | None = None
    sub_layouts: dict[str, VmsdDesc] = field(default_factory=dict)
    """Subsection vmsds the destination wrote (by name), with their layout."""
    known_subs: dict[str, set[str]] = field(default_factory=dict)
    """Parent vmsd name -> subsection names seen on the destination."""
    described: bool = False
    """Whether known_subs comes from a full description of the destination's sections."""

    @classmethod
    def from_stream(cls, stream: Stream, label: str, profile: Profile | None) -> Destination:
        """The destination a stream was captured on (its config, devices, blocks, values)."""
        cfg = stream.configuration
        caps = set(cfg.capabilities) if cfg is not None else set()
        d = cls(label, profile)
        d.send_configuration = cfg is not None
        d.machine = cfg.machine if cfg is not None else None
        d.footers = stream.footers
        d.expects_vmdesc = stream.vmdesc_offset is not None or any(
            c.name == "PACKAGED" for c in stream.commands)
        d.ignore_shared = "x-ignore-shared" in caps
        uuid = cfg.uuid if cfg is not None else None
        d.uuid, d.uuid_set = (uuid, True) if uuid is not None else (None, None)
        d.compress = bool(stream.ram.counts) and any(
            0x100 in per for per in stream.ram.counts.values())
        advise = [c for c in stream.commands if c.name == "POSTCOPY_ADVISE"]
        d.postcopy_ram = any(c.len_data == 16 for c in advise)
        d.blocks = {b.idstr: b.used_length for b in stream.ram.blocks if b.listed}
        d.entries = _entries_from_sections(stream.sections)
        if stream.vmdesc is not None:
            d.described = True
            for dev in stream.vmdesc.devices:
                _collect_subsections(dev, d.sub_layouts, d.known_subs)
        return d

    @classmethod
    def from_profile(cls, profile: Profile) -> Destination:
        d = cls(profile.label, profile)
        d.machine = profile.machine
        return d

    def merge_profile(self, profile: Profile) -> None:
        self.profile = profile
        if profile.machine and self.machine is None:
            self.machine = profile.machine


def _collect_subsections(vmsd: VmsdDesc, layouts: dict[str, VmsdDesc],
                         known: dict[str, set[str]]) -> None:
    for sub in vmsd.subsections:
        layouts.setdefault(sub.vmsd_name, sub)
        known.setdefault(vmsd.vmsd_name, set()).add(sub.vmsd_name)
        _collect_subsections(sub, layouts, known)
    for f in vmsd.fields:
        for nested in ([f.struct] if f.struct is not None else []) + list(f.nested):
            _collect_subsections(nested, layouts, known)


def node_paths(nodes: list[Node], prefix: str = "") -> Iterator[tuple[str, Node]]:
    """(path, node) for every decoded node, with the paths migstream prints for fields.

    Array elements are named by their element name ("env.regs[3]"), not nested under the
    array, so a path reads the way the field is written in C.
    """
    for node in nodes:
        path = f"{prefix}/{node.name}" if prefix else node.name
        yield path, node
        if node.kind == "array" and node.children is not None:
            for child in node.children:
                cpath = f"{prefix}/{child.name}" if prefix else child.name
                yield cpath, child
                if child.children:
                    yield from node_paths(child.children, cpath)
        elif node.children:
            yield from node_paths(node.children, path)


def _entries_from_sections(sections: list[Section]) -> list[Entry]:
    entries: dict[tuple[str, int], Entry] = {}
    for sec in sections:
        if sec.type not in (1, 4) or not sec.idstr:
            continue
        key = (sec.idstr, sec.instance_id)
        if key in entries:
            continue
        if sec.is_ram or (sec.type == 1 and sec.idstr in ITERABLE_IDSTRS):
            kind = "ram"
        elif sec.desc is not None and sec.desc.old_style:
            kind = "old"
        else:
            kind = "vmsd"
        e = Entry(sec.idstr, sec.instance_id, kind, sec.version_id, desc=sec.desc,
                  ref_section_id=sec.section_id)
        if kind != "vmsd":
            e.alias_id = 0
        else:
            e.alias_id = LEGACY_ALIASES.get(key, -1) & U32
        if sec.nodes is not None:
            e.values = {p: (n.type, n.value) for p, n in node_paths(sec.nodes)
                        if n.type in _CHECKED_INFOS}
        entries[key] = e
    ordered = sorted(entries.values(), key=lambda e: e.ref_section_id)
    seen: dict[str, int] = {}
    for e in ordered:
        if e.kind == "vmsd" and "/" in e.idstr:
            name = e.vmsd_name or e.idstr.rsplit("/", 1)[-1]
            if e.idstr.endswith("/" + name):
                e.compat = (name, seen.get(name, 0))
                seen[name] = seen.get(name, 0) + 1
    # Handler list order: FULL entries in the order the source wrote them (savevm walks the
    # list), live handlers placed by section id among them.
    full = [e for e in entries.values() if e.kind != "ram"]
    for live in (e for e in entries.values() if e.kind == "ram"):
        at = len(full)
        for i, e in enumerate(full):
            if e.ref_section_id > live.ref_section_id and (
                    i == 0 or full[i - 1].ref_section_id < live.ref_section_id):
                at = i
                break
        full.insert(at, live)
    return full


_CHECKED_INFOS = frozenset({
    "int32 equal", "uint32 equal", "int64 equal", "uint8 equal", "uint16 equal", "int32 le",
})


# -- the simulation ----------------------------------------------------------------------


@dataclass(slots=True)
class _Ctx:
    """The section being loaded."""

    type: int
    section_id: int
    idstr: str
    instance_id: int
    entry: Entry | None
    offset: int

    @property
    def label(self) -> str:
        return f"{self.idstr!r} (section id {self.section_id}, instance {self.instance_id})"


class Simulator:
    """Runs the loader once; `fatal` is the check that fails (None: the load completes)."""

    def __init__(self, stream: Stream, dest: Destination) -> None:
        self.stream = stream
        self.dest = dest
        self.buf = stream.buf
        self._released = 0
        self.findings: list[Finding] = []
        self.fatal: Finding | None = None
        self.rp_open = False
        self.postcopy = PostcopyState.NONE
        self.last_block: str | None = None
        self.blocks: dict[str, BlockState] | None = None
        if dest.blocks is not None:
            self.blocks = {n: BlockState(u, RESIZABLE_BLOCKS.get(n))
                           for n, u in dest.blocks.items()}
        self._model_bodies = {s.body_start: s for s in stream.sections}
        self._own = stream.vmdesc
        self._own_subs: dict[str, VmsdDesc] = {}
        self._own_known: dict[str, set[str]] = {}
        if stream.vmdesc is not None:
            for dev in stream.vmdesc.devices:
                _collect_subsections(dev, self._own_subs, self._own_known)
        self._own_by_start = {s.offset: s.desc for s in stream.sections if s.desc is not None}
        self.ctx: _Ctx | None = None
        self.eof_offset: int | None = None
        self.src_ignore_shared = False
        self.unchecked: list[tuple[int, str]] = []
        self._decompress_failed = False
        self.nondevice: list[str] = []
        self._dependent: dict[tuple[str, int], bool] = {}
        self.frames: list[tuple[str, str]] = []
        self.top: _Reader | None = None
        self._dyn_entries: list[Entry] = []

    # -- reporting ---------------------------------------------------------------------

    def _finding(self, severity: str, check: str, message: str, offset: int | None,
                 field_path: str | None = None, qemu: list[str] | None = None,
                 idstr: str | None = None, truncated: bool = False) -> Finding:
        ctx = self.ctx
        f = Finding(severity, check, message, offset, field=field_path or None,
                    qemu="\n".join(qemu) if qemu else None, truncated=truncated)
        if ctx is not None:
            f.section = ctx.label
            f.idstr = idstr or ctx.idstr
            f.section_id = ctx.section_id
            f.instance_id = ctx.instance_id
        return f

    def warn(self, check: str, message: str, offset: int | None, field_path: str | None = None,
             qemu: list[str] | None = None, severity: str = "warning") -> None:
        self.findings.append(self._finding(severity, check, message, offset, field_path, qemu))

    def fail(self, check: str, message: str, offset: int | None, qemu: list[str],
             errno: Errno = Errno.EINVAL, field_path: str | None = None,
             idstr: str | None = None, in_body: bool = True,
             truncated: bool = False) -> _Fatal:
        """A failing check: the QEMU text gets the loader's follow-up lines."""
        lines = list(qemu)
        if in_body:
            lines.extend(f"Failed to load {vmsd}:{_INDEX_SUFFIX.sub('', name)}"
                         for vmsd, name in reversed(self.frames))
        if self.top is not None and self.top.eof is not None:
            truncated = True
            if check != "truncated":
                message += (f" (the stream ends at offset {self.top.eof}; QEMU reads zeros "
                            "past the end)")
        ctx = self.ctx
        if ctx is not None and in_body:
            if ctx.type in (1, 4):
                lines.append(f"error while loading state for instance 0x{ctx.instance_id:x} of "
                             f"device '{ctx.idstr}'")
            else:
                se = ctx.entry.idstr if ctx.entry is not None else ctx.idstr
                lines.append(f"error while loading state section id {ctx.section_id}({se})")
        lines.append(f"load of migration failed: {STRERROR[errno]}")
        return _Fatal(self._finding("error", check, message, offset, field_path, lines, idstr,
                                    truncated), int(errno))

    # -- driver ------------------------------------------------------------------------

    def run(self) -> Simulator:
        r = _Reader(self.buf, 0, self.stream.size)
        self.top = r
        try:
            self._run(r)
        finally:
            if self.nondevice:
                self.ctx = None
                names = ", ".join(dict.fromkeys(self.nondevice))
                self.warn("section.nondevice",
                          f"{len(self.nondevice)} section(s) are not device vmsds, which "
                          f"-dump-vmstate never lists ({names}); they were checked against the "
                          "built-in QEMU 7.2 facts", None, severity="info")
            if self.unchecked:
                why = sorted({w for _, w in self.unchecked})
                self.ctx = None
                self.warn("section.unchecked",
                          f"{len(self.unchecked)} section payload(s) not checked field by field "
                          f"({'; '.join(why)}); they were framed by their footers",
                          self.unchecked[0][0], severity="info")
        return self

    def _run(self, r: _Reader) -> None:
        try:
            self._header(r)
            try:
                self._main(r, top=True)
            except _Quit:
                # POSTCOPY_RUN: the listen thread reads the rest of the stream.
                self._main(r, top=True)
            self._after_eof(r)
        except _Fatal as fatal:
            self.fatal = fatal.finding
            log.debug("%s: %s fails: %s", self.stream.path, self.dest.label, fatal.finding)

    def _check_io(self, r: _Reader, qemu: list[str] | None = None,
                  errno: Errno = Errno.EIO, in_body: bool = True) -> None:
        """Where QEMU calls qemu_file_get_error: fail if the data ran out."""
        if r.eof is None:
            return
        ctx = self.ctx
        where = f" inside {ctx.label}" if ctx is not None else " before QEMU_VM_EOF"
        if r is not self.top:
            where = " inside the PACKAGED blob"
        raise self.fail("truncated", f"the stream ends{where} (reading {r.eof_what})", r.eof,
                        qemu or [], errno, in_body=in_body, truncated=r is self.top)

    def _header(self, r: _Reader) -> None:
        magic = r.be32("the magic")
        if magic != 0x5145564D:
            raise self.fail("header.magic",
                            f"magic {magic:#010x} is not 0x5145564d ('QEVM'): not a migration "
                            "stream", 0, ["Not a migration stream"], in_body=False)
        version = r.be32("the stream version")
        if version == 2:
            raise self.fail("header.version", "stream version 2 is the obsolete format", 4,
                            ["SaveVM v2 format is obsolete and don't work anymore"],
                            Errno.ENOTSUP, in_body=False)
        if version != 3:
            raise self.fail("header.version", f"stream version {version} is not 3", 4,
                            ["Unsupported migration stream version"], Errno.ENOTSUP,
                            in_body=False)
        expect = self.dest.send_configuration
        if expect is False:
            return
        if expect is None and r.peek(0) != 0x07:
            return
        at = r.pos
        if r.u8("the configuration marker") != 0x07:
            raise self.fail("config.missing",
                            "the destination expects the configuration section (0x07) right "
                            "after the header (send-configuration is on there)", at,
                            ["Configuration section missing"], in_body=False)
        self._configuration(r, at)

    # -- configuration -----------------------------------------------------------------

    def _configuration(self, r: _Reader, at: int) -> None:
        self.ctx = None
        n = r.be32("the machine name length")
        self._check_io(r, ["Failed to load configuration:len"], in_body=False)
        if n >= 0x80000000:
            raise self.fail("config.machine", f"machine name length {n:#x} is absurd (QEMU "
                            "allocates it as a negative size)", at + 1, [], in_body=False)
        name = r.read(n, "the machine name").decode("latin-1")
        self._check_io(r, ["Failed to load configuration:name"], in_body=False)
        page_bits = TARGET_PAGE_BITS
        caps: list[str] = []
        subs = {"configuration/target-page-bits", "configuration/capabilities",
                "configuration/uuid"}
        while r.peek(0) == 0x05:
            ln = r.peek(1)
            if ln < len("configuration") + 1:
                break
            sname = r.peek_bytes(2, ln).decode("latin-1")
            if len(sname) != ln or not sname.startswith("configuration"):
                break
            sub_at = r.pos
            if sname not in subs:
                raise self.fail("config.subsection",
                                f"unknown configuration subsection {sname!r}", sub_at, [],
                                Errno.ENOENT, field_path=sname, in_body=False)
            r.skip(2 + ln)
            version = r.be32("a subsection version") & 0xFF
            if version != 1:
                word = "new" if version > 1 else "old"
                raise self.fail("config.subsection.version",
                                f"{sname} version {version}; the destination loads version 1",
                                sub_at, [f"{sname}: incoming version_id {version} is too {word} "
                                         f"for local {'' if version > 1 else 'minimum '}"
                                         f"version_id {'' if version > 1 else ' '}1"],
                                field_path=sname, in_body=False)
            if sname == "configuration/target-page-bits":
                page_bits = r.be32("target page bits")
                self._check_io(r, [f"Failed to load {sname}:target_page_bits"], in_body=False)
            elif sname == "configuration/capabilities":
                count = r.be32("the capability count")
                self._check_io(r, [f"Failed to load {sname}:caps_count"], in_body=False)
                for _ in range(count):
                    cap_at = r.pos
                    cl = r.u8("a capability name length")
                    cap = r.read(cl, "a capability name").decode("latin-1")
                    if r.eof is not None and cap in CAPABILITIES_72:
                        self._check_io(r, [f"Failed to load {sname}:capabilities"],
                                       in_body=False)
                    if cap not in CAPABILITIES_72:
                        raise self.fail("config.capability",
                                        f"capability {cap!r} is not a QEMU 7.2 migration "
                                        "capability", cap_at,
                                        [f"Received unknown capability {cap}",
                                         f"Failed to load {sname}:capabilities"],
                                        field_path=sname, in_body=False)
                    caps.append(cap)
            else:
                uuid_at = r.pos
                uuid = r.read(16, "the UUID")
                self._check_io(r, [f"Failed to load {sname}:uuid.data"], in_body=False)
                self._check_uuid(uuid, uuid_at)
        machine = self.dest.machine
        if machine is not None and not machine.startswith(name):
            raise self.fail("config.machine",
                            f"machine type {name!r} is not a prefix of the destination's "
                            f"{machine!r}", at + 5,
                            [f"Machine type received is '{name}' and local is '{machine}'"],
                            field_path="configuration/name", in_body=False)
        if page_bits != TARGET_PAGE_BITS:
            raise self.fail("config.page-bits", f"target page bits {page_bits}, not 12", at,
                            [f"Received TARGET_PAGE_BITS is {page_bits} but local is 12"],
                            in_body=False)
        if self.dest.ignore_shared is not None:
            src = "x-ignore-shared" in caps
            if src != self.dest.ignore_shared:
                on = {True: "on", False: "off"}
                raise self.fail("config.capabilities",
                                f"x-ignore-shared is {on[src]} in the stream but "
                                f"{on[self.dest.ignore_shared]} on the destination", at,
                                [f"Capability x-ignore-shared is {on[self.dest.ignore_shared]}, "
                                 f"but received capability is {on[src]}"], in_body=False)
        self.src_ignore_shared = "x-ignore-shared" in caps

    def _check_uuid(self, uuid: bytes, at: int) -> None:
        text = _uuid_text(uuid)
        if self.dest.uuid_set is False or (self.dest.uuid_set is None and self.dest.uuid is None):
            self.warn("config.uuid",
                      "the stream carries a UUID; a destination without -uuid only warns",
                      at, "configuration/uuid",
                      [f"warning: UUID is received {text}, but local uuid isn't set"],
                      severity="info" if self.dest.uuid_set is None else "warning")
            return
        if self.dest.uuid is not None and uuid != self.dest.uuid:
            raise self.fail("config.uuid", "UUID differs from the destination's", at,
                            [f"UUID received is {text} and local is "
                             f"{_uuid_text(self.dest.uuid)}"],
                            field_path="configuration/uuid", in_body=False)

    # -- main loop ---------------------------------------------------------------------

    def _main(self, r: _Reader, top: bool) -> None:
        while True:
            self.ctx = None
            at = r.pos
            if not top and r.pos >= r.end:
                raise self.fail("command.packaged",
                                "the PACKAGED blob ends without POSTCOPY_RUN or EOF", at, [],
                                Errno.EIO, in_body=False)
            t = r.u8("the next section type")
            self._check_io(r, in_body=False)
            if t in (1, 4):
                self._start_full(r, t, at)
            elif t in (2, 3):
                self._part_end(r, t, at)
            elif t == 8:
                self._command(r, at)
            elif t == 0:
                if top:
                    self.eof_offset = at
                return
            else:
                what = {5: " (a subsection marker at top level)", 6: " (VMDESCRIPTION before "
                        "EOF)", 7: " (a second configuration, or one the destination does not "
                        "expect)", 0x7E: " (a section footer where a section should start)"}
                raise self.fail("item.type", f"unknown section type {t}{what.get(t, '')}", at,
                                [f"Unknown savevm section type {t}"], in_body=False)

    def _after_eof(self, r: _Reader) -> None:
        if self.dest.expects_vmdesc:
            nxt = r.peek(0)
            if nxt != 0x06:
                self.warn("vmdesc.missing",
                          "no VMDESCRIPTION after EOF; QEMU only warns", r.pos, None,
                          [f"Expected vmdescription section, but got {nxt}"])

    def _find_se(self, idstr: str, instance: int) -> Entry | None:
        entries = self.dest.entries
        assert entries is not None
        for e in entries:
            if e.idstr == idstr and instance in (e.instance_id, e.alias_id):
                return e
            if e.compat is not None and idstr in e.idstr and e.compat[0] == idstr and (
                    instance in (e.compat[1], e.alias_id)):
                return e
        return None

    def _start_full(self, r: _Reader, t: int, at: int) -> None:
        section_id = r.be32("the section id")
        n = r.u8("the idstr length")
        if n == 0:
            self.ctx = _Ctx(t, section_id, "", 0, None, at)
            raise self.fail("section.idstr", "empty section idstr", at + 5,
                            [f"Unable to read ID string for section {section_id}"],
                            in_body=False)
        idstr = r.read(n, "the idstr").decode("latin-1")
        if r.eof is not None:
            self.ctx = _Ctx(t, section_id, "", 0, None, at)
            raise self.fail("truncated", "the stream ends inside a section header", r.eof,
                            [f"Unable to read ID string for section {section_id}"],
                            in_body=False)
        instance = r.be32("the instance id")
        version = r.be32("the version id")
        self.ctx = ctx = _Ctx(t, section_id, idstr, instance, None, at)
        self._check_io(r, ["qemu_loadvm_section_start_full: Failed to read instance/version "
                           f"ID: -{int(Errno.EIO)}"], in_body=False)
        if self.dest.entries is not None:
            entry = self._find_se(idstr, instance)
            if entry is None:
                hint = ""
                same = [e for e in self.dest.entries if e.idstr == idstr]
                if same:
                    hint = (f"; the destination has {idstr!r} with instance "
                            + ", ".join(str(e.instance_id) for e in same))
                raise self.fail(
                    "section.unknown",
                    f"the destination has no section {idstr!r} instance {instance}{hint}",
                    at, [f"Unknown savevm section or instance '{idstr}' {instance}. Make sure "
                         "that your current VM setup matches your saved VM setup, including "
                         "any hotplugged devices"], in_body=False)
        else:
            entry = self._profile_entry(idstr, instance, version, at)
            self._dyn_entries.append(entry)
        ctx.entry = entry
        if entry.version is not None and version > entry.version:
            raise self.fail("section.version",
                            f"version {version} is newer than the destination's {entry.version}",
                            at + 6 + n + 4,
                            [f"savevm: unsupported version {version} for '{idstr}' "
                             f"v{entry.version}"], in_body=False)
        entry.load_version_id = version
        entry.load_section_id = section_id
        self._load(r, entry, version, at)
        self._footer(r, entry)

    def _profile_entry(self, idstr: str, instance: int, version: int, at: int) -> Entry:
        """With only a -dump-vmstate file: the section is known if its vmsd is."""
        own = self._own_by_start.get(at)
        if idstr in ITERABLE_IDSTRS:
            return Entry(idstr, instance, "ram", 4 if idstr == "ram" else None, alias_id=0)
        if own is not None and own.old_style:
            return Entry(idstr, instance, "old", None, alias_id=0)
        name = own.vmsd_name if own is not None else idstr.rsplit("/", 1)[-1]
        profile = self.dest.profile
        entry = Entry(idstr, instance, "vmsd", None)
        if profile is None:
            return entry
        facts = profile.find(name)
        if facts is not None:
            entry.version = facts.version
            return entry
        if not profile.knows(name):
            builtin = builtin_profile()
            if builtin.knows(name):
                facts = builtin.find(name)
                entry.version = facts.version if facts is not None else None
                self.nondevice.append(name)
            else:
                raise self.fail("section.unknown",
                                f"the target has no vmsd {name!r}", at,
                                [f"Unknown savevm section or instance '{idstr}' {instance}. "
                                 "Make sure that your current VM setup matches your saved VM "
                                 "setup, including any hotplugged devices"], in_body=False)
        return entry

    def _part_end(self, r: _Reader, t: int, at: int) -> None:
        section_id = r.be32("the section id")
        self._check_io(r, ["qemu_loadvm_section_part_end: Failed to read section ID: "
                           f"-{int(Errno.EIO)}"], in_body=False)
        entry: Entry | None = None
        if self.dest.entries is not None:
            for e in self.dest.entries:
                if e.load_section_id == section_id:
                    entry = e
                    break
        else:
            for e in self._dyn_entries:
                if e.load_section_id == section_id:
                    entry = e
                    break
        if entry is None:
            self.ctx = _Ctx(t, section_id, f"id {section_id}", 0, None, at)
            raise self.fail("section.unknown-id",
                            f"no START/FULL section opened section id {section_id}", at,
                            [f"Unknown savevm section {section_id}"], in_body=False)
        self.ctx = _Ctx(t, section_id, entry.idstr, entry.instance_id, entry, at)
        self._load(r, entry, entry.load_version_id, at)
        self._footer(r, entry)

    def _footer(self, r: _Reader, entry: Entry) -> None:
        if self.dest.footers is False:
            return
        at = r.pos
        if self.dest.footers is None and r.peek(0) != 0x7E:
            return
        mark = r.u8("the section footer")
        self._check_io(r, [f"check_section_footer: Read section footer failed: "
                           f"-{int(Errno.EIO)}"], Errno.EINVAL, in_body=False)
        if mark != 0x7E:
            raise self.fail("section.footer",
                            f"expected the section footer 0x7e here, found {mark:#04x}: the "
                            "payload is longer than what the destination reads, or footers "
                            "are off on the source", at,
                            [f"Missing section footer for {entry.idstr}"],
                            idstr=entry.idstr, in_body=False)
        sid = r.be32("the footer section id")
        if sid != entry.load_section_id:
            raise self.fail("section.footer",
                            f"footer names section id {sid}, the section is "
                            f"{entry.load_section_id}", at,
                            [f"Mismatched section id in footer for {entry.idstr} - read "
                             f"0x{sid:x} expected 0x{entry.load_section_id:x}"],
                            idstr=entry.idstr, in_body=False)

    # -- commands --------------------------------------------------------------------

    def _command(self, r: _Reader, at: int) -> None:
        cmd = r.be16("the command id")
        length = r.be16("the command length")
        self._check_io(r, in_body=False)
        names = {1: "OPEN_RETURN_PATH", 2: "PING", 3: "POSTCOPY_ADVISE", 4: "POSTCOPY_LISTEN",
                 5: "POSTCOPY_RUN", 6: "POSTCOPY_RAM_DISCARD", 7: "PACKAGED", 8: "ENABLE_COLO",
                 9: "POSTCOPY_RESUME", 10: "RECV_BITMAP"}
        fixed = {1: 0, 2: 4, 4: 0, 5: 0, 7: 4, 8: 0, 9: 0}
        if cmd == 0 or cmd > 10:
            raise self.fail("command.unknown", f"command {cmd} does not exist in QEMU 7.2", at,
                            [f"MIG_CMD 0x{cmd:x} unknown (len 0x{length:x})"], in_body=False)
        name = names[cmd]
        if cmd in fixed and fixed[cmd] != length:
            qname = "(null)" if cmd == 8 else name
            raise self.fail("command.length",
                            f"{name} must have length {fixed[cmd]}, not {length}", at,
                            [f"{qname} received with bad length - expecting {fixed[cmd]}, "
                             f"got {length}"], Errno.ERANGE, in_body=False)
        state = self.postcopy
        if cmd == 1:
            if self.rp_open:
                self.warn("command.return-path", "OPEN_RETURN_PATH with the return path "
                          "already open (QEMU reports it and carries on)", at, None,
                          ["CMD_OPEN_RETURN_PATH called when RP already open"])
            self.rp_open = True
        elif cmd == 2:
            value = r.be32("the PING value")
            if not self.rp_open:
                raise self.fail("command.ping",
                                "PING without a return path (no OPEN_RETURN_PATH before it): "
                                "a destination reading a file or exec: stream fails", at,
                                [f"CMD_PING (0x{value:x}) received with no return path"],
                                Errno.EPERM, in_body=False)
        elif cmd == 3:
            self.postcopy = PostcopyState.ADVISE
            if state != PostcopyState.NONE:
                raise self.fail("command.postcopy", "second POSTCOPY_ADVISE", at,
                                [f"CMD_POSTCOPY_ADVISE in wrong postcopy state ({int(state)})"],
                                Errno.EPERM, in_body=False)
            pc = self.dest.postcopy_ram
            if length == 0:
                if pc:
                    raise self.fail("command.postcopy", "empty POSTCOPY_ADVISE, but the "
                                    "destination has postcopy-ram on", at,
                                    ["RAM postcopy is enabled but have 0 byte advise"],
                                    in_body=False)
            elif length == 16:
                if pc is False:
                    raise self.fail("command.postcopy", "POSTCOPY_ADVISE for RAM postcopy, "
                                    "but the destination has postcopy-ram off", at,
                                    ["RAM postcopy is disabled but have 16 byte advise"],
                                    in_body=False)
                summary = r.be64("the page size summary")
                tps = r.be64("the target page size")
                if summary != TARGET_PAGE_SIZE or tps != TARGET_PAGE_SIZE:
                    raise self.fail("command.postcopy", "POSTCOPY_ADVISE page sizes differ "
                                    "from the destination's", at,
                                    [f"Postcopy needs matching RAM page sizes (s={summary:x} "
                                     f"d={TARGET_PAGE_SIZE:x})"], Errno.EPERM, in_body=False)
            else:
                raise self.fail("command.length", f"POSTCOPY_ADVISE length {length} is "
                                "neither 0 nor 16", at,
                                [f"CMD_POSTCOPY_ADVISE invalid length ({length})"],
                                in_body=False)
        elif cmd == 4:
            self.postcopy = PostcopyState.LISTENING
            if state not in (PostcopyState.ADVISE, PostcopyState.DISCARD):
                raise self.fail("command.postcopy", "POSTCOPY_LISTEN without POSTCOPY_ADVISE",
                                at, [f"CMD_POSTCOPY_LISTEN in wrong postcopy state "
                                     f"({int(state)})"], Errno.EPERM, in_body=False)
        elif cmd == 5:
            if state != PostcopyState.LISTENING:
                raise self.fail("command.postcopy", "POSTCOPY_RUN without POSTCOPY_LISTEN", at,
                                [f"CMD_POSTCOPY_RUN in wrong postcopy state ({int(state)})"],
                                Errno.EPERM, in_body=False)
            self.postcopy = PostcopyState.RUNNING
            raise _Quit()
        elif cmd == 6:
            if state == PostcopyState.ADVISE:
                self.postcopy = PostcopyState.DISCARD
            elif state != PostcopyState.DISCARD:
                raise self.fail("command.postcopy", "POSTCOPY_RAM_DISCARD outside the "
                                "postcopy switch", at, [f"CMD_POSTCOPY_RAM_DISCARD in wrong "
                                                        f"postcopy state ({int(state)})"],
                                Errno.EPERM, in_body=False)
            if length < 20:
                raise self.fail("command.length", f"POSTCOPY_RAM_DISCARD length {length} is "
                                "too short", at,
                                [f"CMD_POSTCOPY_RAM_DISCARD invalid length ({length})"],
                                Errno.EPERM, in_body=False)
            r.skip(length, "the discard ranges")
        elif cmd == 7:
            n = r.be32("the PACKAGED length")
            if r.pos + n > r.end:
                got = max(0, r.end - r.pos)
                r.skip(n, "the PACKAGED blob")
                raise self.fail("truncated", "PACKAGED blob runs past the end of the stream",
                                at, [f"CMD_PACKAGED: Buffer receive fail ret={got} "
                                     f"length={n}"], Errno.EAGAIN, in_body=False)
            inner = _Reader(self.buf, r.pos, r.pos + n)
            r.pos += n
            self._main(inner, top=False)
        elif cmd == 8:
            self.warn("command.colo", "ENABLE_COLO: the destination switches to COLO mode and "
                      "waits for checkpoints after the load", at)
        elif cmd == 9:
            self.warn("command.resume", "POSTCOPY_RESUME outside postcopy recovery is ignored",
                      at, None, ["loadvm_postcopy_handle_resume: illegal resume received"])
        else:
            n = r.u8("the block name length")
            block = r.read(n, "the block name").decode("latin-1")
            if n == 0 or length != n + 1:
                raise self.fail("command.length", "RECV_BITMAP length does not match its name",
                                at, [f"loadvm_handle_recv_bitmap: invalid payload length "
                                     f"({length})"], in_body=False)
            if self.blocks is not None and block not in self.blocks:
                raise self.fail("command.recv-bitmap", f"RECV_BITMAP for unknown block "
                                f"{block!r}", at, [f"loadvm_handle_recv_bitmap: block "
                                                   f"'{block}' not found"], in_body=False)

    # -- section bodies ----------------------------------------------------------------

    def _load(self, r: _Reader, entry: Entry, version: int, at: int) -> None:
        if entry.kind == "ram":
            if entry.idstr != "ram":
                self._skip_unknown_body(r, at, f"live section {entry.idstr!r}")
                return
            if version != 4:
                raise self.fail("ram.version", f"RAM section version {version}; ram_load "
                                "accepts only 4", at, [])
            self._ram(r)
            return
        own = self._own_desc(at, entry)
        if entry.kind == "old":
            size = own.size if own is not None and own.size is not None else (
                entry.desc.size if entry.desc is not None else None)
            if size is None:
                self._skip_unknown_body(r, at, "old-style section without a size")
            else:
                r.skip(size, "the old-style payload")
            return
        self._load_device(r, entry, version, own, at)

    def _own_desc(self, at: int, entry: Entry) -> DeviceDesc | None:
        own = self._own_by_start.get(at)
        if own is None or self.ctx is None:
            return None
        if own.name != self.ctx.idstr or own.instance_id != self.ctx.instance_id:
            return None
        return own

    def _skip_unknown_body(self, r: _Reader, at: int, why: str) -> None:
        sec = self._model_bodies.get(r.pos)
        if sec is not None and sec.offset == at:
            self.unchecked.append((at, why))
            r.pos = sec.body_end
            return
        err = self.stream.errors[0] if self.stream.errors else None
        if isinstance(err, TruncatedStreamError) and err.offset >= r.pos:
            r.skip(r.end - r.pos + 1, "an undescribed payload")
            self._check_io(r, in_body=True)
        raise self.fail("section.undecodable",
                        f"cannot follow this payload ({why}): no description of it and no "
                        "section footer after it", at, [], in_body=False)

    def _facts(self, vmsd_name: str, version: int, layout: VmsdDesc | None) -> VmsdFacts | None:
        profile = self.dest.profile
        if profile is None:
            return None
        names = [f.name for f in layout.fields] if layout is not None else None
        return profile.find(vmsd_name, version, names)

    def _load_device(self, r: _Reader, entry: Entry, version: int, own: DeviceDesc | None,
                     at: int) -> None:
        dest = entry.desc
        dest_version = entry.version
        name = (dest.vmsd_name if dest is not None and dest.vmsd_name
                else own.vmsd_name if own is not None and own.vmsd_name else entry.vmsd_name)
        assert name is not None
        facts = self._facts(name, dest_version, dest) if dest_version is not None else None
        minimum = facts.minimum if facts is not None else (
            self.dest.profile.minimum(name, dest_version) if self.dest.profile is not None
            and dest_version is not None else None)
        if minimum is not None and version < minimum:
            raise self.fail("section.version",
                            f"version {version} is older than the destination's minimum "
                            f"{minimum}", at,
                            [f"{name}: incoming version_id {version} is too old for local "
                             f"minimum version_id  {minimum}"])
        if own is not None and own.version == version and (
                dest is None or not dest.vmsd_name or own.vmsd_name == dest.vmsd_name):
            layout: VmsdDesc = own
            if dest is not None and dest.version == version:
                self._compare_layouts(own, dest, "", at)
        elif dest is not None:
            layout = dest
            if (own is None and version == dest.version and r.pos in self._model_bodies
                    and self._state_dependent(dest)):
                # Which of these fields the destination reads depends on device state
                # (field_exists tests), so the reference's layout need not be this stream's.
                self._skip_unknown_body(r, at, "no description of its own, and field_exists "
                                        "tests decide its layout")
                return
        elif own is not None:
            layout = own
        else:
            if dest_version is not None and version < dest_version:
                self._gate_check(name, version, dest_version, facts, r.pos, "", entry)
            self._skip_unknown_body(r, at, "no vmstate description")
            return
        self._vmsd(r, layout, version, "", entry, facts)

    def _state_dependent(self, layout: VmsdDesc) -> bool:
        """Whether a field_exists test (per the vmsd facts) shapes this layout or a nested one."""
        key = (layout.vmsd_name, layout.version)
        cached = self._dependent.get(key)
        if cached is not None:
            return cached
        self._dependent[key] = False
        facts = self._facts(layout.vmsd_name, layout.version, layout)
        result = facts is not None and facts.has_field_exists
        if not result:
            for f in layout.fields:
                nested = ([f.struct] if f.struct is not None else []) + list(f.nested)
                if any(n.vmsd_name and self._state_dependent(n) for n in nested):
                    result = True
                    break
        if not result:
            result = any(self._state_dependent(sub) for sub in layout.subsections)
        self._dependent[key] = result
        return result

    def _gate_check(self, name: str, version: int, written_at: int, facts: VmsdFacts | None,
                    at: int, path: str, entry: Entry) -> None:
        """A payload written at `written_at` arrives labelled `version`: can that load?"""
        if facts is None:
            raise self.fail("section.version",
                            f"{name!r} arrives as version {version}, older than the version "
                            f"{written_at} its payload has; which fields a version-{version} "
                            "load reads is unknown (give --target)", at, [],
                            field_path=path or None)
        skipped = facts.skipped_below(version, written_at)
        if skipped or facts.has_field_exists:
            why = (f"a version-{version} load skips {', '.join(skipped)}" if skipped else
                   "field_exists tests (typically version tests) decide which fields a "
                   f"version-{version} load reads")
            raise self.fail("section.version",
                            f"{name!r} arrives as version {version} but its payload was written "
                            f"at version {written_at}: {why}, so the rest of the payload is "
                            "read as something else", at,
                            [f"Missing section footer for {entry.idstr}"], in_body=False)

    def _compare_layouts(self, src: VmsdDesc, dst: VmsdDesc, path: str, at: int) -> None:
        dst_fields = {(f.name, f.index): f for f in dst.fields}
        for f in src.fields:
            d = dst_fields.get((f.name, f.index))
            label = f.name if f.index is None else f"{f.name}[{f.index}]"
            p = f"{path}/{label}" if path else label
            if d is None:
                facts = self._facts(dst.vmsd_name, dst.version, dst)
                if facts is None or facts.reads(f.name, dst.version) is None:
                    self.warn("layout.field",
                              f"the source wrote field {p!r}, which the reference's "
                              f"{dst.vmsd_name!r} did not write (a field_exists test decides; "
                              "the destination may or may not read it)", at, p)
                    continue
                raise self.fail("layout.field",
                                f"the source wrote field {p!r}, which the destination's "
                                f"{dst.vmsd_name!r} v{dst.version} does not read", at, [],
                                field_path=p)
            if d.type != f.type or (d.size != f.size and f.type not in _VARIABLE_SIZE):
                raise self.fail("layout.field",
                                f"field {p!r} is {f.type} of {f.size} bytes in the stream but "
                                f"{d.type} of {d.size} bytes on the destination", at, [],
                                field_path=p)
            if f.struct is not None and d.struct is not None and f.struct.vmsd_name:
                self._compare_layouts(f.struct, d.struct, p, at)

    def _known_subsections(self, parent: str) -> set[str] | None:
        """Subsection names the destination's `parent` vmsd has; None: cannot tell."""
        names = set(self.dest.known_subs.get(parent, ()))
        profile = self.dest.profile
        stated = profile.subsection_names(parent) if profile is not None else None
        if stated is not None:
            names |= stated
        if stated is None and not self.dest.described:
            return None
        return names

    def _vmsd(self, r: _Reader, layout: VmsdDesc, version: int, path: str, entry: Entry,
              facts: VmsdFacts | None) -> None:
        gate = version < layout.version
        if gate:
            self._gate_check(layout.vmsd_name, version, layout.version, facts, r.pos, path,
                             entry)
        for f in layout.fields:
            if gate:
                assert facts is not None
                reads = facts.reads(f.name, version)
                if reads is False:
                    continue
            self.frames.append((layout.vmsd_name, f.name))
            self._field(r, f, path, entry)
            self.frames.pop()
        self._subsections(r, layout, path, entry)

    def _field(self, r: _Reader, f: FieldDesc, path: str, entry: Entry) -> None:
        label = f.name if f.index is None else f"{f.name}[{f.index}]"
        if f.array_len is None:
            fpath = f"{path}/{label}" if path else label
            self._element(r, f, fpath, entry)
            self._check_field_io(r, fpath)
            return
        t = f.type
        natural = INT_INFOS.get(t)
        if (t not in _STRUCTURED and t not in _CHECKED_INFOS and t != "pci irq state"
                and not (natural is not None and f.size == 1 and natural[0] != 1)):
            r.skip(max(f.size, 0) * f.array_len, f"field {path}/{f.name}")
            self._check_field_io(r, f"{path}/{f.name}" if path else f.name)
            return
        for i in range(f.array_len):
            epath = f"{path}/{f.name}[{i}]" if path else f"{f.name}[{i}]"
            self._element(r, f, epath, entry)
            self._check_field_io(r, epath)

    def _check_field_io(self, r: _Reader, path: str) -> None:
        if r.eof is not None:
            ctx = self.ctx
            where = ctx.label if ctx is not None else "a section"
            raise self.fail("truncated", f"the stream ends inside {where}, field {path}",
                            r.eof, [], Errno.EIO, field_path=path)

    def _element(self, r: _Reader, f: FieldDesc, path: str, entry: Entry) -> None:
        t = f.type
        if t == "struct":
            st = f.struct
            if st is None or (not st.vmsd_name and not st.fields and f.size == 1):
                self._nullptr(r, path)
                return
            self._vmsd(r, st, st.version, path, entry, None)
            return
        if t in ("vstruct", "tmp") and f.nested:
            g = f.nested[0]
            self._vmsd(r, g, g.version, path, entry, None)
            return
        if t in ("qtailq", "qlist"):
            i = 0
            while r.u8(f"the {t} element marker"):
                if not f.nested:
                    raise self.fail("layout.queue", f"{t} element without a description",
                                    r.pos, [], field_path=path)
                g = f.nested[min(i, len(f.nested) - 1)]
                self._vmsd(r, g, g.version, f"{path}[{i}]", entry, None)
                i += 1
            return
        if t == "gtree":
            self._gtree(r, f, path, entry)
            return
        natural = INT_INFOS.get(t)
        if natural is not None and f.size == 1 and natural[0] != 1:
            self._nullptr(r, path)
            return
        at = r.pos
        raw = r.read(max(f.size, 0), f"field {path}")
        if t in _CHECKED_INFOS or t == "pci irq state":
            self._check_value(t, raw, at, path, entry)

    def _nullptr(self, r: _Reader, path: str) -> None:
        at = r.pos
        if r.u8("a NULL pointer marker") != 0x30:
            raise self.fail("field.nullptr", "expected the NULL pointer marker 0x30", at,
                            ["vmstate: get_nullptr expected VMS_NULLPTR_MARKER"],
                            field_path=path)

    def _gtree(self, r: _Reader, f: FieldDesc, path: str, entry: Entry) -> None:
        count = r.be32("the gtree node count")
        groups = f.nested
        direct = len(groups) == count
        gi = 0
        seen = 0
        while r.u8("a gtree node marker"):
            if direct:
                r.skip(8, "a gtree key")
            else:
                if gi >= len(groups):
                    raise self.fail("layout.gtree", "more gtree nodes than described", r.pos,
                                    [], field_path=path)
                self._vmsd(r, groups[gi], groups[gi].version, f"{path}[{seen}]/key", entry, None)
                gi += 1
            if gi >= len(groups):
                raise self.fail("layout.gtree", "more gtree nodes than described", r.pos, [],
                                field_path=path)
            self._vmsd(r, groups[gi], groups[gi].version, f"{path}[{seen}]/value", entry, None)
            gi += 1
            seen += 1
        if seen != count:
            raise self.fail("field.gtree", f"gtree says {count} nodes, {seen} follow", r.pos,
                            [], field_path=path)

    def _check_value(self, t: str, raw: bytes, at: int, path: str, entry: Entry) -> None:
        if t == "pci irq state":
            for i in range(0, len(raw) - 3, 4):
                v = int.from_bytes(raw[i : i + 4], "big")
                if v not in (0, 1):
                    raise self.fail("field.irq-state", f"PCI irq state {i // 4} is {v}, not 0 "
                                    "or 1", at + i, [f"irq state {v}: must be 0 or 1."],
                                    field_path=path)
            return
        natural = INT_INFOS.get(t)
        if natural is None or natural[0] != len(raw):
            return
        loaded = int.from_bytes(raw, "big", signed=natural[1])
        ref = entry.values.get(path)
        if ref is None or not isinstance(ref[1], int):
            return
        local = int(ref[1])
        if t == "int32 le":
            if 0 <= loaded <= local:
                return
            raise self.fail("field.le",
                            f"{path} is {loaded}; the destination accepts 0..{local}", at,
                            [f"Invalid value {loaded} expecting positive value <= {local}"],
                            field_path=path)
        if loaded == local:
            return
        bits = len(raw) * 8
        mask = (1 << bits) - 1
        raise self.fail("field.equal",
                        f"{path} must equal the destination's value {local} "
                        f"({local & mask:#x}); the stream has {loaded} ({loaded & mask:#x})", at,
                        [f"{local & mask:x} != {loaded & mask:x}"], field_path=path)

    def _subsections(self, r: _Reader, layout: VmsdDesc, path: str, entry: Entry) -> None:
        parent = layout.vmsd_name
        if not parent:
            return
        known = self._known_subsections(parent)
        while r.peek(0) == 0x05:
            n = r.peek(1)
            if n < len(parent) + 1:
                return
            raw = r.peek_bytes(2, n)
            if len(raw) != n:
                return
            name = raw.decode("latin-1")
            if not name.startswith(parent):
                return
            at = r.pos
            spath = f"{path}/{name}" if path else name
            if known is not None and name not in known:
                raise self.fail("subsection.unknown",
                                f"subsection {name!r} is unknown to the destination's "
                                f"{parent!r}", at, [], Errno.ENOENT, field_path=spath)
            r.skip(2 + n)
            wire = r.be32("the subsection version")
            version = wire & 0xFF
            sub = self._sub_layout(layout, name)
            dest_sub = self.dest.sub_layouts.get(name)
            dest_version = dest_sub.version if dest_sub is not None else None
            facts = None
            profile = self.dest.profile
            if profile is not None:
                facts = profile.find(name, dest_version, [f.name for f in dest_sub.fields]
                                     if dest_sub is not None else None)
                if dest_version is None and facts is not None:
                    dest_version = facts.version
            if wire > 0xFF:
                self.warn("subsection.version",
                          f"subsection version {wire:#x} is wider than 8 bits; QEMU 7.2 keeps "
                          f"only the low byte ({version})", at, spath, severity="info")
            if dest_version is not None and version > dest_version:
                raise self.fail("subsection.version",
                                f"subsection {name!r} version {version} is newer than the "
                                f"destination's {dest_version}", at,
                                [f"{name}: incoming version_id {version} is too new for local "
                                 f"version_id {dest_version}"], field_path=spath)
            if facts is not None and version < facts.minimum:
                raise self.fail("subsection.version",
                                f"subsection {name!r} version {version} is older than the "
                                f"destination's minimum {facts.minimum}", at,
                                [f"{name}: incoming version_id {version} is too old for local "
                                 f"minimum version_id  {facts.minimum}"], field_path=spath)
            if sub is None:
                raise self.fail("subsection.undecodable",
                                f"subsection {name!r}: no description of its fields", at, [],
                                field_path=spath)
            if sub.version != version and sub is not dest_sub and dest_sub is not None:
                sub = dest_sub
            self._vmsd(r, sub, version, spath, entry, facts if version < sub.version else None)

    def _sub_layout(self, layout: VmsdDesc, name: str) -> VmsdDesc | None:
        for sub in layout.subsections:
            if sub.vmsd_name == name:
                return sub
        return self._own_subs.get(name) or self.dest.sub_layouts.get(name)

    # -- RAM -----------------------------------------------------------------------------

    def _ram(self, r: _Reader) -> None:
        self._decompress_failed = False
        try:
            self._ram_records(r)
        except _Fatal as fatal:
            if self.dest.compress:
                # ram_load_precopy ORs in the decompression threads' error (the file's).
                ferr = -int(Errno.EIO) if r.eof is not None else (
                    -1 if self._decompress_failed else 0)
                ret = -fatal.errno | ferr if ferr else -fatal.errno
                if -ret != fatal.errno and -ret in STRERROR:
                    f = fatal.finding
                    assert f.qemu is not None
                    lines = f.qemu.splitlines()
                    lines[-1] = f"load of migration failed: {STRERROR[Errno(-ret)]}"
                    f.qemu = "\n".join(lines)
            raise

    def _ram_records(self, r: _Reader) -> None:
        compress_ok = self.dest.compress is not False
        blocks = self.blocks
        ignore_shared = self.dest.ignore_shared
        if ignore_shared is None:
            ignore_shared = self.src_ignore_shared
        buf = self.buf
        while True:
            self._check_io(r)
            start = r.pos
            if start - self._released > (64 << 20):
                self.stream.release(self._released, start - (1 << 20))
                self._released = start - (1 << 20)
            v = r.be64("a RAM record header")
            flags = v & 0xFFF
            addr = v & ~0xFFF & U64
            if flags & 0x100 and not compress_ok:
                raise self.fail("ram.compress",
                                "compressed page, but the destination does not have the "
                                "compress capability on", start,
                                ["Received an unexpected compressed page"],
                                field_path="ram/record")
            block: str | None = None
            if flags & (0x02 | 0x08 | 0x100 | 0x40):
                if flags & 0x20:
                    block = self.last_block
                    if block is None:
                        raise self.fail("ram.continue",
                                        "RAM_SAVE_FLAG_CONTINUE before any named RAM block",
                                        start, ["Ack, bad migration stream!",
                                                f"Illegal RAM offset {addr:x}"],
                                        field_path="ram/record")
                else:
                    n = r.u8("a RAM block name length")
                    name = r.read(n, "a RAM block name").decode("latin-1")
                    if blocks is not None and name not in blocks:
                        raise self.fail("ram.block",
                                        f"page for RAM block {name!r}, which the destination "
                                        "does not have", start,
                                        [f"Can't find block {name}",
                                         f"Illegal RAM offset {addr:x}"],
                                        field_path="ram/record/block_name")
                    block = self.last_block = name
                if blocks is not None:
                    b = blocks[block]
                    if addr >= b.used_length:
                        raise self.fail("ram.offset",
                                        f"page offset {addr:#x} is outside RAM block {block!r} "
                                        f"({b.used_length:#x} bytes)", start,
                                        [f"Illegal RAM offset {addr:x}"],
                                        field_path="ram/record/addr")
            kind = flags & ~0x20
            if kind == 0x04:
                self._ram_blocks(r, addr, ignore_shared, start)
            elif kind == 0x02:
                fill_at = r.pos
                if r.u8("a ZERO page fill byte"):
                    self.warn("ram.zero-fill",
                              f"ZERO record fills the page with {buf[fill_at]:#04x}, not 0 "
                              "(QEMU accepts any byte)", start, "ram/record",
                              severity="info")
            elif kind == 0x08:
                r.skip(TARGET_PAGE_SIZE, "a page")
            elif kind == 0x100:
                n = r.be32("a compressed page length")
                if n >= 0x80000000 or n > COMPRESS_BOUND_PAGE:
                    signed = n - (1 << 32) if n >= 0x80000000 else n
                    raise self.fail("ram.compress",
                                    f"compressed page length {signed} is outside 0.."
                                    f"{COMPRESS_BOUND_PAGE}", start,
                                    [f"Invalid compressed data length: {signed}"],
                                    field_path="ram/record/compress")
                data = r.read(n, "a compressed page")
                if not _inflates(data):
                    self._decompress_failed = True
                    raise self.fail("ram.compress", "compressed page does not inflate as one "
                                    "complete zlib stream", start, ["decompress data failed"],
                                    Errno.EPERM, field_path="ram/record/compress")
            elif kind == 0x40:
                xh_flags = r.u8("the XBZRLE flag")
                xh_len = r.be16("the XBZRLE length")
                lines: list[str] = []
                why = ""
                if xh_flags != 1:
                    why, lines = (f"XBZRLE encoding flag {xh_flags:#x} is not 1",
                                  ["Failed to load XBZRLE page - wrong compression!"])
                elif xh_len > TARGET_PAGE_SIZE:
                    why, lines = (f"XBZRLE length {xh_len} exceeds the page size",
                                  ["Failed to load XBZRLE page - len overflow!"])
                else:
                    data = r.read(xh_len, "an XBZRLE delta")
                    try:
                        xbzrle.decode(data, bytes(TARGET_PAGE_SIZE))
                    except ValueError as exc:
                        why, lines = (f"XBZRLE delta does not decode: {exc}",
                                      ["Failed to load XBZRLE page - decode error!"])
                if lines:
                    raise self.fail("ram.xbzrle", why, start,
                                    [*lines, f"Failed to decompress XBZRLE page at {addr:x}"],
                                    field_path="ram/record/xbzrle")
            elif kind == 0x10:
                self._check_io(r)
                return
            elif flags & 0x80:
                raise self.fail("ram.flags", "RAM_SAVE_FLAG_HOOK (RDMA) record on a non-RDMA "
                                "channel", start, [], field_path="ram/record")
            else:
                raise self.fail("ram.flags", f"unknown combination of RAM flags {flags:#x}",
                                start, [f"Unknown combination of migration flags: 0x{flags:x}"],
                                field_path="ram/record")

    def _ram_blocks(self, r: _Reader, total: int, ignore_shared: bool, rec: int) -> None:
        blocks = self.blocks
        while total:
            at = r.pos
            n = r.u8("a RAM block list entry")
            name = r.read(n, "a RAM block name").decode("latin-1")
            length = r.be64("a RAM block length")
            if blocks is not None:
                b = blocks.get(name)
                if b is None:
                    raise self.fail("ram.block",
                                    f"RAM block {name!r} in the block list is unknown to the "
                                    "destination", at,
                                    [f'Unknown ramblock "{name}", cannot accept migration'],
                                    field_path="ram/blocks")
                if length != b.used_length:
                    aligned = (length + TARGET_PAGE_SIZE - 1) & ~(TARGET_PAGE_SIZE - 1) & U64
                    if aligned != b.used_length:
                        if b.max_length is None:
                            raise self.fail(
                                "ram.block-size",
                                f"RAM block {name!r} is {length:#x} bytes in the stream, "
                                f"{b.used_length:#x} on the destination (not resizable)", at,
                                [f"Size mismatch: {name}: 0x{aligned:x} != "
                                 f"0x{b.used_length:x}: Invalid argument"],
                                field_path="ram/blocks/used_length")
                        if aligned > b.max_length:
                            raise self.fail(
                                "ram.block-size",
                                f"RAM block {name!r} is {length:#x} bytes, more than its "
                                f"maximum {b.max_length:#x} on the destination", at,
                                [f"Size too large: {name}: 0x{aligned:x} > "
                                 f"0x{b.max_length:x}: Invalid argument"],
                                field_path="ram/blocks/used_length")
                        b.used_length = aligned
            if ignore_shared:
                r.skip(8, "a RAM block address")
            total = (total - length) & U64
        del rec


_STRUCTURED = frozenset({"struct", "vstruct", "tmp", "qtailq", "qlist", "gtree"})

_VARIABLE_SIZE = frozenset({"struct", "vstruct", "tmp", "qtailq", "qlist", "gtree", "buffer",
                            "unused_buffer", "virtio", "bitmap"})


def _inflates(data: bytes) -> bool:
    d = zlib.decompressobj()
    try:
        d.decompress(data, TARGET_PAGE_SIZE)
    except zlib.error:
        return False
    return d.eof


def _uuid_text(u: bytes) -> str:
    h = u.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def simulate(stream: Stream, dest: Destination) -> Simulator:
    return Simulator(stream, dest).run()


__all__ = ["Destination", "Entry", "Finding", "Simulator", "node_paths", "simulate"]
