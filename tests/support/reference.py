"""A reference parse with the generated Kaitai parser only (no hand-written RAM scanner).

`reference_records(path)` parses a whole stream with formats.generated's QemuMigration, where
the section_body hook decodes device payloads with the vmstate decoder and RAM PART/END
payloads with the generated `ram_section_body` type, and returns every RAM record as a tuple.
`index_records(stream)` returns the same tuples from the analyzer's RamIndex.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from kaitaistruct import KaitaiStream

from analyzer.model import Stream
from formats.generated.qemu_migration import QemuMigration

Record = tuple[Any, ...]


class ReferenceContext:
    """The section_body hook for the reference parse.

    RAM PART/END payloads go to the generated `ram_section_body`; device payloads (not what
    this reference is about) are skipped to the end the analyzer's model found for them.
    """

    def __init__(self, stream: Stream, main_io: BytesIO) -> None:
        self.main_io = main_io
        self.body_end = {s.body_start: s.body_end for s in stream.sections}
        packages = [c.args["package_offset"] for c in stream.commands
                    if "package_offset" in c.args]
        self.package_base = packages[0] if packages else 0
        self.root: Any = None

    def _is_ram(self, section_id: int) -> bool:
        for item in getattr(self.root, "items", []):
            if item.section_type.value == 1 and item.body.section_id == section_id:
                return bool(item.body.idstr.value == "ram")
        return False

    def decode_section_body(self, io: KaitaiStream, section_type: int, section_id: int,
                            idstr: str, instance_id: int, version_id: int) -> Any:
        if section_type in (2, 3) and self._is_ram(section_id):
            return QemuMigration.RamSectionBody(io, None, self.root)
        base = 0 if io._io is self.main_io else self.package_base
        io.seek(self.body_end[base + io.pos()] - base)
        return None


def _record_tuple(rec: Any, block: str | None) -> Record:
    kind = rec.kind
    payload: Any = None
    if kind == 0x004:
        payload = tuple(
            (b.idstr.value, b.used_length, getattr(b, "page_size", None), getattr(b, "addr", None))
            for b in (getattr(rec.payload, "blocks", None) or [])
        )
    elif kind == 0x002:
        payload = rec.payload.fill
    elif kind == 0x008:
        payload = bytes(rec.payload.data)
    elif kind == 0x040:
        payload = bytes(rec.payload.encoded)
    elif kind == 0x100:
        payload = bytes(rec.payload.compressed)
    return (rec.addr_flags, block, payload)


def reference_records(stream: Stream) -> list[Record]:
    with open(stream.path, "rb") as f:
        data = f.read()
    main_io = BytesIO(data)
    ctx = ReferenceContext(stream, main_io)
    ignore_shared = bool(stream.configuration and
                         "x-ignore-shared" in stream.configuration.capabilities)
    io = KaitaiStream(main_io)
    root = QemuMigration.__new__(QemuMigration)
    ctx.root = root
    QemuMigration.__init__(root, ctx, ignore_shared, False, io)
    out: list[Record] = []
    last: str | None = None

    def walk(items: list[Any]) -> None:
        nonlocal last
        for item in items:
            body = getattr(item, "body", None)
            recs = None
            if item.section_type.value in (1, 4) and body.idstr.value == "ram":
                recs = body.ram.records
            elif item.section_type.value in (2, 3) and body.body.value is not None:
                recs = body.body.value.records
            elif item.section_type.value == 8 and getattr(body, "package", None) is not None:
                walk(body.package.items)
            for rec in recs or []:
                name = rec.block_name.value if getattr(rec, "block_name", None) else None
                if rec.kind in (0x002, 0x008, 0x040, 0x100):
                    last = name if name is not None else last
                    block = last
                else:
                    block = None
                out.append(_record_tuple(rec, block))

    walk(root.items)
    return out


def index_records(stream: Stream) -> list[Record]:
    ram = stream.ram
    buf = stream.buf
    out: list[Record] = []
    for i in range(len(ram)):
        v = ram.addr_flags[i]
        kind = v & 0xFDF
        p = ram.payload_pos[i]
        block = ram.blocks[ram.block[i]].idstr if ram.block[i] >= 0 else None
        payload: Any = None
        if kind == 0x004:
            payload = tuple(
                (b.idstr, b.used_length, b.page_size, b.addr) for b in ram.blocks if b.listed
            )
        elif kind == 0x002:
            payload = buf[p]
        elif kind == 0x008:
            payload = bytes(buf[p : p + 4096])
        elif kind == 0x040:
            n = (buf[p + 1] << 8) | buf[p + 2]
            payload = bytes(buf[p + 3 : p + 3 + n])
        elif kind == 0x100:
            n = int.from_bytes(buf[p : p + 4], "big")
            payload = bytes(buf[p + 4 : p + 4 + n])
        out.append((v, block, payload))
    return out
