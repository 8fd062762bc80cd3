"""The stream model: one migration stream indexed over mmap, with every item's byte range.

`Stream.open(path)` walks the stream item by item with the generated Kaitai parser
(formats/generated), decodes device payloads from the vmstate descriptions (the stream's own
VMDESCRIPTION, located first from the tail, or descriptions given by the caller), and indexes
RAM records into compact arrays with formats.ram_scan. Page payloads are never copied.

Decoding never raises for bad stream content: the first fatal problem is kept in
`Stream.errors` (a StreamError with offset, section and field path) and everything decoded
before it stays available. Every consumer (info, dump, extract, validate, diff, the TUI) reads
this model instead of parsing the stream its own way.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kaitaistruct import KaitaiStream, KaitaiStructError

from analyzer.vmdesc import DeviceDesc, DeviceLookup, VmDescription, parse_vmdesc
from analyzer.vmstate import Node, VmstateDecoder
from formats.constants import (
    QEMU_VM_FILE_MAGIC,
    QEMU_VM_FILE_VERSION,
    QEMU_VM_FILE_VERSION_COMPAT,
    TARGET_PAGE_SIZE,
    MigCmd,
    SectionType,
)
from formats.errors import DescriptionError, MigstreamError, StreamError, TruncatedStreamError
from formats.generated.qemu_migration import QemuMigration
from formats.ram_scan import RamIndex

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
"""progress(bytes_done, bytes_total)"""

_BE32 = struct.Struct(">I")


class Phase(StrEnum):
    """Where in QEMU's save sequence an item was written (savevm.c, migration.c)."""

    SETUP = "setup"
    ITERATE = "iterate"
    COMPLETE = "complete"
    POSTCOPY_PACKAGE = "postcopy package"
    POSTCOPY = "postcopy"


@dataclass(slots=True)
class Item:
    """One top-level item (or one item inside a PACKAGED blob)."""

    index: int
    type: SectionType
    offset: int
    end: int
    phase: Phase
    round: int = 0
    """0 in setup; k for the k-th iterate pass (PART); iterations + 1 in completion."""
    parent: int | None = None
    """Index of the PACKAGED command item this item sits in."""

    @property
    def size(self) -> int:
        return self.end - self.offset

    @property
    def label(self) -> str:
        return self.type.short


@dataclass(slots=True)
class Section(Item):
    """A START, PART, END or FULL section."""

    section_id: int = 0
    idstr: str = ""
    instance_id: int = 0
    version_id: int = 0
    body_start: int = 0
    body_end: int = 0
    footer_offset: int | None = None
    is_ram: bool = False
    desc: DeviceDesc | None = None
    nodes: list[Node] | None = None
    """Decoded payload fields; None when the payload could not be decoded."""
    undecoded_reason: str | None = None
    ram_rows: tuple[int, int] = (0, 0)
    """[first, last) rows of the stream's RamIndex that belong to this section."""

    @property
    def label(self) -> str:
        return f"{self.type.short} {self.name}"

    @property
    def name(self) -> str:
        return f"{self.idstr}#{self.instance_id}" if self.idstr else f"id {self.section_id}"

    @property
    def where(self) -> str:
        """How errors name this section."""
        return f"{self.idstr!r} (section id {self.section_id}, instance {self.instance_id})"


@dataclass(slots=True)
class Command(Item):
    """A QEMU_VM_COMMAND item."""

    cmd: int = 0
    len_data: int = 0
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        try:
            return MigCmd(self.cmd).short
        except ValueError:
            return f"UNKNOWN_{self.cmd}"

    @property
    def label(self) -> str:
        return f"COMMAND {self.name}"


@dataclass(slots=True)
class ConfigSubsection:
    name: str
    version: int
    offset: int
    size: int
    value: Any


@dataclass(slots=True)
class Configuration(Item):
    """The QEMU_VM_CONFIGURATION item."""

    machine: str = ""
    subsections: list[ConfigSubsection] = field(default_factory=list)

    @property
    def capabilities(self) -> list[str]:
        for sub in self.subsections:
            if sub.name == "configuration/capabilities":
                return list(sub.value)
        return []

    @property
    def uuid(self) -> bytes | None:
        for sub in self.subsections:
            if sub.name == "configuration/uuid":
                return bytes(sub.value)
        return None

    @property
    def label(self) -> str:
        return f"CONFIGURATION {self.machine}"


class _Root:
    """Stands in for the generated top-level object: what nested types read from `_root`."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.ignore_shared = False
        self.postcopy_page_sizes = False


def find_vmdesc(buf: memoryview, raw: mmap.mmap | bytes) -> tuple[int, int] | None:
    """Locate `06 be32 len {json}` at the tail; returns (offset of 0x06, json length).

    Like analyze-migration.py it looks from the end, but it requires the length to reach the
    end of the JSON exactly (the JSON text contains no 0x06 byte), so trailing bytes after a
    real vmdesc are tolerated and a '{' inside RAM data is not mistaken for it.
    """
    size = len(buf)
    lo = max(0, size - (64 << 20))
    limit = size
    for _ in range(64):
        p = raw.rfind(b"\x06", lo, limit) if limit > lo else -1
        if p < 1:
            return None
        limit = p
        if p + 6 > size or buf[p + 5] != 0x7B or buf[p - 1] != 0x00:
            continue
        (n,) = _BE32.unpack_from(buf, p + 1)
        end = p + 5 + n
        if end <= size and buf[end - 1] == 0x7D:
            return p, n
    return None


class Stream:
    """An indexed migration stream. Use `Stream.open(path)`; close it (or use `with`)."""

    def __init__(self, path: str, buf: memoryview, mm: mmap.mmap | None) -> None:
        self.path = path
        self.buf = buf
        self._mm = mm
        self.size = len(buf)
        self.file_version: int | None = None
        self.configuration: Configuration | None = None
        self.items: list[Item] = []
        self.ram = RamIndex()
        self.eof_offset: int | None = None
        self.vmdesc: VmDescription | None = None
        self.vmdesc_offset: int | None = None
        self.vmdesc_len: int | None = None
        self.vmdesc_source: str | None = None
        """"stream" (its own VMDESCRIPTION), "external" (given by the caller) or None."""
        self.footers: bool | None = None
        self.errors: list[StreamError] = []
        self.notes: list[str] = []
        self.iterations = 0
        self._bytes: bytes | None = None
        self._fd: int | None = None
        self._ram_first = 0
        self._desc_cache: dict[int, DeviceDesc | None] = {}

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        descriptions: VmDescription | None = None,
        progress: ProgressFn | None = None,
        on_mapped: Callable[[Stream], None] | None = None,
    ) -> Stream:
        """Open and index a stream file. Raises MigstreamError only if the file is unusable.

        `on_mapped(stream)` is called once the file is mapped, before indexing: a browser can
        show `stream.items` as they are appended (from another thread), and an exception raised
        by `progress` cancels the indexing (the caller then closes the stream).
        """
        p = os.fspath(path)
        try:
            with open(p, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except OSError as exc:
            raise MigstreamError(f"cannot read {p}: {exc.strerror or exc}") from None
        buf = memoryview(mm) if mm is not None else memoryview(b"")
        stream = cls(p, buf, mm)
        try:
            stream._fd = os.open(p, os.O_RDONLY)
            stream.ram.fd = stream._fd
        except OSError:
            stream._fd = None
        if on_mapped is not None:
            on_mapped(stream)
        stream._index(descriptions, progress)
        return stream

    @classmethod
    def from_bytes(cls, data: bytes, descriptions: VmDescription | None = None) -> Stream:
        stream = cls("<bytes>", memoryview(data), None)
        stream._index(descriptions, None)
        return stream

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.ram.fd = None
        if self._mm is not None:
            try:
                self.buf.release()
                self._mm.close()
            except BufferError:
                log.debug("a view of %s is still alive; the mapping closes when it goes", self.path)
            self._mm = None

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def sections(self) -> list[Section]:
        return [i for i in self.items if isinstance(i, Section)]

    @property
    def commands(self) -> list[Command]:
        return [i for i in self.items if isinstance(i, Command)]

    @property
    def machine(self) -> str | None:
        return self.configuration.machine if self.configuration else None

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self.buf[offset : offset + size])

    # -- indexing ------------------------------------------------------------------------

    def _index(self, descriptions: VmDescription | None, progress: ProgressFn | None) -> None:
        self._progress = progress
        self._lookup: DeviceLookup | None = None
        self._started: dict[int, Section] = {}
        self._body_cache: dict[int, tuple[int, list[Node] | None, str | None]] = {}
        self._sub_base = 0
        self._phase_state = {"package_seen": False, "first_part_id": -1}
        self._load_descriptions(descriptions)
        if progress is not None:
            self.ram.progress = lambda pos: progress(pos, self.size)
        try:
            pos = self._header()
            self._root = _Root(self)
            self._io = KaitaiStream(_BufferIO(self.buf))
            pos = self._items(pos, self.size, None)
            self._tail(pos)
        except StreamError as exc:
            if exc.section is None:
                exc.section = self._context(exc.offset)
            self.errors.append(exc)
            log.debug("stream error: %s", exc)
        if progress is not None:
            progress(self.size, self.size)

    def _load_descriptions(self, descriptions: VmDescription | None) -> None:
        found = find_vmdesc(self.buf, self._raw())
        if found is not None:
            off, n = found
            self.vmdesc_offset, self.vmdesc_len = off, n
            if descriptions is None:
                text = bytes(self.buf[off + 5 : off + 5 + n]).decode("utf-8", "replace")
                try:
                    descriptions = parse_vmdesc(text)
                    self.vmdesc_source = "stream"
                except DescriptionError as exc:
                    self.notes.append(f"the stream's VMDESCRIPTION is unusable: {exc}")
        if descriptions is not None and self.vmdesc_source is None:
            self.vmdesc_source = "external"
        self.vmdesc = descriptions
        if descriptions is not None:
            self._lookup = descriptions.lookup()

    def _raw(self) -> mmap.mmap | bytes:
        if self._mm is not None:
            return self._mm
        if self._bytes is None:
            self._bytes = bytes(self.buf)
        return self._bytes

    def _header(self) -> int:
        if self.size < 8:
            raise TruncatedStreamError(
                f"file is {self.size} bytes, too short for the 8-byte stream header", 0, None,
                "header",
            )
        magic, version = struct.unpack_from(">II", self.buf, 0)
        if magic != QEMU_VM_FILE_MAGIC:
            raise StreamError(
                f"not a migration stream: magic {magic:#010x} is not 0x5145564d ('QEVM')",
                0, None, "header/magic",
            )
        self.file_version = version
        if version != QEMU_VM_FILE_VERSION:
            why = "obsolete (QEMU_VM_FILE_VERSION_COMPAT)" if (
                version == QEMU_VM_FILE_VERSION_COMPAT) else "unsupported"
            raise StreamError(f"stream version {version} is {why}; QEMU writes 3", 4, None,
                              "header/file_version")
        return 8

    def _items(self, pos: int, end: int, parent: int | None) -> int:
        """Index items from pos until EOF (top level) or `end` (a PACKAGED blob)."""
        io = self._io
        while True:
            if pos >= end:
                if parent is not None:
                    return pos
                raise TruncatedStreamError(
                    "stream ends before QEMU_VM_EOF", pos, self._last_section_where(), None
                )
            t = self.buf[pos]
            if t == 0x08 and pos + 9 <= end and (self.buf[pos + 1] << 8 | self.buf[pos + 2]) == 7:
                self._sub_base = pos + 9
            io.seek(pos)
            try:
                gen = QemuMigration.Item(io, self._root, self._root)
            except StreamError:
                raise
            except (KaitaiStructError, EOFError, ValueError, UnicodeDecodeError) as exc:
                raise self._kaitai_error(exc, pos, io) from None
            item_end = io.pos()
            if item_end > end:
                raise StreamError("item runs past the end of its PACKAGED blob", pos,
                                  self._last_section_where(), None)
            item = self._make_item(gen, pos, item_end, parent)
            self.items.append(item)
            if self._progress is not None:
                self._progress(item_end, self.size)
            if isinstance(item, Command) and item.cmd == MigCmd.MIG_CMD_PACKAGED:
                inner = item.args["package_offset"]
                self._items(inner, inner + item.args["len_package"], item.index)
                self._phase_state["package_seen"] = True
            pos = item_end
            if t == SectionType.QEMU_VM_EOF:
                if parent is not None:
                    raise StreamError("QEMU_VM_EOF inside a PACKAGED blob", pos - 1, None, None)
                self.eof_offset = pos - 1
                return pos

    def _tail(self, pos: int) -> None:
        if pos >= self.size:
            if self.vmdesc_source == "stream":
                self.notes.append("found a VMDESCRIPTION-like tail that is not after EOF")
            return
        if self.buf[pos] != SectionType.QEMU_VM_VMDESCRIPTION:
            self.notes.append(
                f"{self.size - pos} bytes after QEMU_VM_EOF that are not a VMDESCRIPTION "
                f"(QEMU only warns: 'Expected vmdescription section, but got {self.buf[pos]}')"
            )
            return
        self._io.seek(pos)
        try:
            QemuMigration.Vmdescription(self._io, self._root, self._root)
        except (KaitaiStructError, EOFError) as exc:
            raise self._kaitai_error(exc, pos, self._io).with_context(
                "VMDESCRIPTION", "vmdesc") from None
        if self.vmdesc_offset != pos:
            self.notes.append(
                "the VMDESCRIPTION after EOF is not where the tail scan found one; device "
                "payloads were decoded with other descriptions"
            )
            self.vmdesc_offset = pos
            self.vmdesc_len = _BE32.unpack_from(self.buf, pos + 1)[0]
        trailing = self.size - (pos + 5 + (self.vmdesc_len or 0))
        if trailing > 0:
            self.notes.append(f"{trailing} trailing bytes after the VMDESCRIPTION (QEMU ignores)")

    def _context(self, offset: int) -> str:
        """A section label for errors raised outside any section."""
        if offset < 8:
            return "header"
        last = self._last_section_where()
        if last is not None:
            return f"top level, {last}"
        if self.configuration is not None:
            return "top level, after CONFIGURATION"
        return "top level, before any section"

    def _last_section_where(self) -> str | None:
        for item in reversed(self.items):
            if isinstance(item, Section):
                return f"after {item.where}"
        return None

    def _kaitai_error(self, exc: Exception, item_pos: int, io: KaitaiStream) -> StreamError:
        where = self._peek_section_where(item_pos)
        src = getattr(exc, "src_path", None)
        pos = min(io.pos(), self.size)
        if isinstance(exc, EOFError) or "end of stream" in str(exc).lower() or (
            "requested" in str(exc) and "available" in str(exc)
        ):
            return TruncatedStreamError(
                f"stream ends inside the item that starts at offset {item_pos}", pos, where, src
            )
        msg = str(exc)
        if src and msg.startswith(str(src)):
            msg = msg[len(str(src)) :].lstrip(": ")
        return StreamError(msg, pos, where, src)

    def _peek_section_where(self, pos: int) -> str | None:
        t = self.buf[pos] if pos < self.size else None
        try:
            if t in (1, 4):
                sid = _BE32.unpack_from(self.buf, pos + 1)[0]
                n = self.buf[pos + 5]
                name = bytes(self.buf[pos + 6 : pos + 6 + n]).decode("latin-1")
                inst = _BE32.unpack_from(self.buf, pos + 6 + n)[0]
                return f"{name!r} (section id {sid}, instance {inst})"
            if t in (2, 3):
                sid = _BE32.unpack_from(self.buf, pos + 1)[0]
                sec = self._started.get(sid)
                return sec.where if sec else f"id {sid}"
        except (struct.error, IndexError):
            return None
        if t == 7:
            return "CONFIGURATION"
        if t == 8:
            return "COMMAND"
        return None

    # -- building items ------------------------------------------------------------------

    def _phase_for(self, t: SectionType, parent: int | None, section_id: int) -> tuple[Phase, int]:
        st = self._phase_state
        if parent is not None:
            return Phase.POSTCOPY_PACKAGE, self.iterations + 1
        post = bool(st["package_seen"])
        if t == SectionType.QEMU_VM_SECTION_START:
            return Phase.SETUP, 0
        if t == SectionType.QEMU_VM_SECTION_PART:
            if st["first_part_id"] < 0:
                st["first_part_id"] = section_id
            if section_id == st["first_part_id"]:
                self.iterations += 1
            return (Phase.POSTCOPY if post else Phase.ITERATE), self.iterations
        if t in (SectionType.QEMU_VM_SECTION_END, SectionType.QEMU_VM_SECTION_FULL,
                 SectionType.QEMU_VM_EOF):
            return (Phase.POSTCOPY if post else Phase.COMPLETE), self.iterations + 1
        if not any(isinstance(i, Section) for i in self.items):
            return Phase.SETUP, 0
        if post:
            return Phase.POSTCOPY, self.iterations + 1
        return (Phase.COMPLETE if self.iterations else Phase.SETUP), (
            self.iterations + 1 if self.iterations else 0)

    def _make_item(self, gen: Any, pos: int, end: int, parent: int | None) -> Item:
        t = SectionType(int(gen.section_type))
        index = len(self.items)
        body: Any = getattr(gen, "body", None)
        if t == SectionType.QEMU_VM_CONFIGURATION:
            return self._make_configuration(body, index, pos, end, parent)
        if t == SectionType.QEMU_VM_COMMAND:
            return self._make_command(body, index, pos, end, parent)
        if t == SectionType.QEMU_VM_EOF:
            phase, rnd = self._phase_for(t, parent, 0)
            return Item(index, t, pos, end, phase, rnd, parent)
        phase, rnd = self._phase_for(t, parent, body.section_id)
        sec = Section(index, t, pos, end, phase, rnd, parent, section_id=body.section_id)
        if t in (SectionType.QEMU_VM_SECTION_START, SectionType.QEMU_VM_SECTION_FULL):
            sec.idstr = body.idstr.value
            sec.instance_id = body.instance_id
            sec.version_id = body.version_id
            sec.body_start = pos + 14 + len(sec.idstr.encode("latin-1"))
            self._started[sec.section_id] = sec
        else:
            sec.body_start = pos + 5
            owner = self._started.get(sec.section_id)
            if owner is not None:
                sec.idstr, sec.instance_id = owner.idstr, owner.instance_id
                sec.version_id = owner.version_id
        has_footer = bool(body.has_footer)
        sec.footer_offset = end - 5 if has_footer else None
        sec.body_end = end - 5 if has_footer else end
        if self.footers is None:
            self.footers = has_footer
        sec.is_ram = sec.idstr == "ram"
        if sec.is_ram:
            if t == SectionType.QEMU_VM_SECTION_START:
                self._ram_first = len(self.ram)
                scan_end = self.ram.scan(self.buf, sec.body_start, index, sec.where)
                if scan_end != sec.body_end:
                    raise StreamError("RAM START payload framing disagrees with the grammar",
                                      sec.body_start, sec.where, "ram")
            sec.ram_rows = (self._ram_first, len(self.ram))
        else:
            cached = self._body_cache.pop(sec.body_start, None)
            if cached is not None:
                _, sec.nodes, sec.undecoded_reason = cached
                sec.desc = self._desc_cache.pop(sec.body_start, None)
        return sec

    def _make_configuration(
        self, body: Any, index: int, pos: int, end: int, parent: int | None
    ) -> Configuration:
        cfg = Configuration(index, SectionType.QEMU_VM_CONFIGURATION, pos, end, Phase.SETUP,
                            0, parent, machine=body.name)
        off = pos + 5 + body.len_name
        for sub in getattr(body, "subsections", None) or []:
            name = sub.name.value
            hdr = 2 + len(name) + 4
            value: Any
            if name == "configuration/capabilities":
                value = [c.value for c in sub.body.caps]
                size = hdr + 4 + sum(1 + len(c) for c in value)
                if "x-ignore-shared" in value:
                    self._root.ignore_shared = True
                    self.ram.ignore_shared = True
            elif name == "configuration/uuid":
                value = bytes(sub.body.uuid)
                size = hdr + 16
            else:
                value = int(sub.body)
                size = hdr + 4
            cfg.subsections.append(ConfigSubsection(name, sub.version_id, off, size, value))
            off += size
        if self.configuration is None and parent is None:
            self.configuration = cfg
        return cfg

    def _make_command(
        self, body: Any, index: int, pos: int, end: int, parent: int | None
    ) -> Command:
        cmd = int(body.cmd)
        phase, rnd = self._phase_for(SectionType.QEMU_VM_COMMAND, parent, 0)
        c = Command(index, SectionType.QEMU_VM_COMMAND, pos, end, phase, rnd, parent, cmd=cmd,
                    len_data=body.len_data)
        data: Any = getattr(body, "data", None)
        c.args["payload_offset"] = pos + 5
        if cmd == MigCmd.MIG_CMD_PING:
            c.args["value"] = data.value
        elif cmd == MigCmd.MIG_CMD_POSTCOPY_ADVISE:
            if getattr(data, "ram_page_size_summary", None) is not None:
                c.args["ram_page_size_summary"] = data.ram_page_size_summary
                c.args["target_page_size"] = getattr(data, "target_page_size", None)
                if data.ram_page_size_summary != TARGET_PAGE_SIZE:
                    self.notes.append(
                        "POSTCOPY_ADVISE reports huge-page RAM blocks; their block-list "
                        "page-size fields are not decoded"
                    )
        elif cmd == MigCmd.MIG_CMD_POSTCOPY_RAM_DISCARD:
            c.args["block"] = data.block_name
            c.args["ranges"] = [(r.start, r.length) for r in data.ranges]
        elif cmd == MigCmd.MIG_CMD_PACKAGED:
            c.args["len_package"] = data.len_package
            c.args["package_offset"] = pos + 9
        elif cmd == MigCmd.MIG_CMD_RECV_BITMAP:
            c.args["block"] = data.value
        return c

    # -- the section_body hook (formats.section_body.BodyDecoder) ------------------------

    def decode_section_body(
        self,
        io: KaitaiStream,
        section_type: int,
        section_id: int,
        idstr: str,
        instance_id: int,
        version_id: int,
    ) -> Any:
        in_package = io is not self._io
        base = self._sub_base if in_package else 0
        start = base + io.pos()
        cached = self._body_cache.get(start)
        if cached is not None:
            io.seek(cached[0] - base)
            return cached[1]
        t = SectionType(section_type)
        if t in (SectionType.QEMU_VM_SECTION_PART, SectionType.QEMU_VM_SECTION_END):
            owner = self._started.get(section_id)
            if owner is None:
                raise StreamError(
                    f"{t.short} for section id {section_id} that no START/FULL opened "
                    f"(QEMU: 'Unknown savevm section {section_id}')",
                    start - 5, None, "section_id",
                )
            if owner.is_ram:
                self._ram_first = len(self.ram)
                end = self.ram.scan(self.buf, start, len(self.items), owner.where)
                self.release(start, end)
                io.seek(end - base)
                return None
            idstr, instance_id = owner.idstr, owner.instance_id
            desc = owner.desc
            where = owner.where
        else:
            where = f"{idstr!r} (section id {section_id}, instance {instance_id})"
            desc = self._lookup.take(idstr, instance_id) if self._lookup else None
        nodes: list[Node] | None = None
        reason: str | None = None
        if desc is not None:
            dec = VmstateDecoder(self.buf, where)
            nodes, end = dec.decode_vmsd(desc, start, "")
        else:
            reason = (
                "no vmstate description for this section"
                + ("" if self.vmdesc is not None else " (the stream has no VMDESCRIPTION)")
            )
            end = self._find_footer(start, section_id, where)
        self._body_cache[start] = (end, nodes, reason)
        self._desc_cache[start] = desc
        io.seek(end - base)
        return nodes

    def release(self, start: int, end: int) -> None:
        """Drop the mapping of [start, end) after reading through it sequentially.

        The kernel maps whole (up to 2 MiB) page-cache folios around every byte read through
        the mmap, and those pages count as resident memory of this process; long passes over a
        multi-GB stream call this behind them. Pages fault back in if read again."""
        if self._mm is None or end - start < (4 << 20):
            return
        lo = start & ~(mmap.PAGESIZE - 1)
        hi = end & ~(mmap.PAGESIZE - 1)
        if hi > lo:
            self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def _find_footer(self, start: int, section_id: int, where: str) -> int:
        """Frame an undescribed payload by its footer followed by a plausible next item."""
        needle = b"\x7e" + _BE32.pack(section_id)
        pos = start
        limit = min(self.size, start + (256 << 20))
        raw = self._raw()
        while True:
            f = raw.find(needle, pos, limit)
            if f < 0:
                raise StreamError(
                    "cannot frame this payload: no vmstate description and no section footer "
                    "followed by a valid item",
                    start, where, None,
                )
            if self._plausible_item(f + 5):
                return f
            pos = f + 1

    def _plausible_item(self, p: int) -> bool:
        b = self.buf
        if p >= self.size:
            return False
        t = b[p]
        try:
            if t == 0:
                return p + 1 == self.size or b[p + 1] == 0x06
            if t in (1, 4):
                n = b[p + 5]
                name = bytes(b[p + 6 : p + 6 + n])
                return n > 0 and len(name) == n and all(32 < c < 127 for c in name)
            if t in (2, 3):
                return _BE32.unpack_from(b, p + 1)[0] in self._started
            if t == 8:
                return 1 <= (b[p + 1] << 8 | b[p + 2]) <= 10
        except (IndexError, struct.error):
            return False
        return False


class _BufferIO:
    """A read-only, seekable file object over a memoryview, for KaitaiStream."""

    def __init__(self, buf: memoryview) -> None:
        self._buf = buf
        self._pos = 0
        self._size = len(buf)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self._size - self._pos
        start = self._pos
        end = min(self._size, start + n)
        self._pos = end
        return bytes(self._buf[start:end])

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 1:
            pos += self._pos
        elif whence == 2:
            pos += self._size
        self._pos = max(0, pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """The buffer belongs to the Stream."""
