"""Hand-written indexer for RAM section payloads (ram.c records), for bulk speed.

The grammar in qemu_migration.ksy (`ram_section_body`) is the reference; the generated parser
creates an object and copies 4 KiB per page, which is too slow and too big for multi-GB streams.
This scanner walks the same records straight over a buffer (normally an mmap), never copies a
payload, and appends one row per record to compact arrays. tests/test_ram_scan.py proves it
yields exactly the records the generated parser yields on every fixture.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from formats.constants import (
    COMPRESS_BOUND_PAGE,
    ENCODING_FLAG_XBZRLE,
    TARGET_PAGE_SIZE,
    RamFlag,
)
from formats.errors import StreamError, TruncatedStreamError

BufferLike = bytes | bytearray | memoryview | mmap.mmap

_BE64 = struct.Struct(">Q")
_BE32 = struct.Struct(">I")
_BE16 = struct.Struct(">H")

ZERO = int(RamFlag.RAM_SAVE_FLAG_ZERO)
MEM_SIZE = int(RamFlag.RAM_SAVE_FLAG_MEM_SIZE)
PAGE = int(RamFlag.RAM_SAVE_FLAG_PAGE)
EOS = int(RamFlag.RAM_SAVE_FLAG_EOS)
CONTINUE = int(RamFlag.RAM_SAVE_FLAG_CONTINUE)
XBZRLE = int(RamFlag.RAM_SAVE_FLAG_XBZRLE)
COMPRESS_PAGE = int(RamFlag.RAM_SAVE_FLAG_COMPRESS_PAGE)
MULTIFD_FLUSH = int(RamFlag.RAM_SAVE_FLAG_MULTIFD_FLUSH)
_BULK_BYTES = 2048 * (8 + TARGET_PAGE_SIZE)
PAGE_STRIDE = 8 + TARGET_PAGE_SIZE
ZERO_STRIDE = 8 + 1
_LITTLE = sys.byteorder == "little"
_MISMATCH_TABLES = {
    low: bytes(0 if b == low else 1 for b in range(256)) for low in (0x22, 0x28)
}
"""translate() tables: 0 where a header's last byte equals the expected flags, else 1."""
_BITS_8_15 = 1 if _LITTLE else 6
_RUN_STRUCTS: dict[tuple[int, int], struct.Struct] = {}


def _run_struct(stride: int, n: int) -> struct.Struct:
    """A Struct that unpacks the be64 headers of n records of a fixed stride in one call."""
    st = _RUN_STRUCTS.get((stride, n))
    if st is None:
        if len(_RUN_STRUCTS) > 256:
            _RUN_STRUCTS.clear()
        st = _RUN_STRUCTS[(stride, n)] = struct.Struct(">" + f"Q{stride - 8}x" * n)
    return st


_NIBBLE_TAB = bytes(0 if b & 0x0F == 0 else 1 for b in range(256))
"""translate() table: 1 where flag bits 8-11 (COMPRESS_PAGE, MULTIFD_FLUSH, ...) are set."""


@dataclass(slots=True)
class RamBlockInfo:
    """One entry of the RAM_SAVE_FLAG_MEM_SIZE block list (or a block only named by a page)."""

    idstr: str
    used_length: int
    page_size: int | None = None
    addr: int | None = None
    listed: bool = True
    """False for a block named by a page record but absent from the MEM_SIZE list."""
    entry_offset: int = -1


class RamIndex:
    """Every RAM record of a stream, in stream order, as parallel arrays.

    Row i: `rec_pos[i]` file offset of the be64 header, `addr_flags[i]` that header,
    `block[i]` index into `blocks` (-1 for records without a block), `payload_pos[i]` offset of
    the payload after the optional block name, `section[i]` the index of the item (section)
    the record is in.
    """

    def __init__(self, ignore_shared: bool = False, postcopy_page_sizes: bool = False) -> None:
        self.ignore_shared = ignore_shared
        self.postcopy_page_sizes = postcopy_page_sizes
        self.rec_pos = array("Q")
        self.addr_flags = array("Q")
        self.block = array("i")
        self.payload_pos = array("Q")
        self.section = array("I")
        self.blocks: list[RamBlockInfo] = []
        self.mem_size_total: int | None = None
        self._by_name: dict[bytes, int] = {}
        self.last_block = -1
        self.fd: int | None = None
        """When set, runs of records are read with pread instead of through the mapping."""
        self._wbuf: bytearray | None = None
        self.counts: dict[int, dict[int, int]] = {}
        """section index -> record kind (flags & ~CONTINUE) -> number of records."""
        self.progress: Callable[[int], None] | None = None
        """Called with the current offset every 65536 records while scanning."""
        """`last_sent_block` as the loader tracks it; it carries over section boundaries."""

    def __len__(self) -> int:
        return len(self.rec_pos)

    def block_index(self, name: bytes, listed: bool = False, used_length: int = 0) -> int:
        idx = self._by_name.get(name)
        if idx is None:
            idx = len(self.blocks)
            self._by_name[name] = idx
            self.blocks.append(RamBlockInfo(name.decode("latin-1"), used_length, listed=listed))
        return idx

    def payload_len(self, i: int, buf: BufferLike) -> int:
        """The payload length of row i (header and block name excluded)."""
        kind = self.addr_flags[i] & 0xFDF
        p = self.payload_pos[i]
        mv = memoryview(buf)
        if kind == PAGE:
            return TARGET_PAGE_SIZE
        if kind == ZERO:
            return 1
        if kind == XBZRLE:
            return 3 + int(_BE16.unpack_from(mv, p + 1)[0])
        if kind == COMPRESS_PAGE:
            return 4 + int(_BE32.unpack_from(mv, p)[0])
        return 0

    def scan(self, buf: BufferLike, pos: int, section: int, section_name: str = "ram") -> int:
        """Index records from `pos` up to and including RAM_SAVE_FLAG_EOS; return the end.

        Raises StreamError (with the record's offset) on anything ram_load_precopy rejects
        structurally: unknown flag combinations, CONTINUE before any named block, bad XBZRLE
        or compressed lengths, truncation.
        """
        mv = memoryview(buf)
        size = len(mv)
        unpack64 = _BE64.unpack_from
        rec_pos = self.rec_pos.append
        addr_flags = self.addr_flags.append
        block = self.block.append
        payload_pos = self.payload_pos.append
        sec = self.section.append
        last = self.last_block
        by_name = self._by_name
        counts = self.counts.setdefault(section, {})
        try:
            while True:
                start = pos
                if pos + 8 > size:
                    raise TruncatedStreamError(
                        "stream ends inside a RAM record header", pos, section_name, "ram/record"
                    )
                (v,) = unpack64(mv, pos)
                kind = v & 0xFDF
                pos += 8
                if kind in (PAGE, ZERO, XBZRLE, COMPRESS_PAGE):
                    if v & CONTINUE:
                        if last < 0:
                            raise StreamError(
                                "RAM_SAVE_FLAG_CONTINUE before any named RAM block "
                                "(QEMU: 'Ack, bad migration stream!')",
                                start,
                                section_name,
                                "ram/record",
                            )
                    else:
                        if pos >= size:
                            raise TruncatedStreamError(
                                "stream ends inside a RAM block name", pos, section_name,
                                "ram/record/block_name",
                            )
                        n = mv[pos]
                        if n == 0 or pos + 1 + n > size:
                            raise StreamError(
                                "bad RAM block name length", pos, section_name,
                                "ram/record/block_name",
                            )
                        name = bytes(mv[pos + 1 : pos + 1 + n])
                        idx = by_name.get(name)
                        last = idx if idx is not None else self.block_index(name)
                        pos += 1 + n
                    rec_pos(start)
                    addr_flags(v)
                    block(last)
                    payload_pos(pos)
                    sec(section)
                    counts[kind] = counts.get(kind, 0) + 1
                    if kind == PAGE:
                        pos += TARGET_PAGE_SIZE
                        if pos + 8 <= size and mv[pos + 7] == 0x28:
                            pos = self._bulk(mv, pos, PAGE_STRIDE, 0x28, last, section, counts)
                    elif kind == ZERO:
                        pos += 1
                        if pos + 8 <= size and mv[pos + 7] == 0x22:
                            pos = self._bulk(mv, pos, ZERO_STRIDE, 0x22, last, section, counts)
                    elif kind == XBZRLE:
                        if pos + 3 > size:
                            raise TruncatedStreamError(
                                "stream ends inside an XBZRLE header", pos, section_name,
                                "ram/record/xbzrle",
                            )
                        if mv[pos] != ENCODING_FLAG_XBZRLE:
                            raise StreamError(
                                f"XBZRLE encoding flag {mv[pos]:#x} is not "
                                "ENCODING_FLAG_XBZRLE (1)",
                                pos, section_name, "ram/record/xbzrle/encoding_flag",
                            )
                        elen = (mv[pos + 1] << 8) | mv[pos + 2]
                        if elen > TARGET_PAGE_SIZE:
                            raise StreamError(
                                f"XBZRLE length {elen} exceeds the page size",
                                pos + 1, section_name, "ram/record/xbzrle/len_encoded",
                            )
                        pos += 3 + elen
                    else:
                        if pos + 4 > size:
                            raise TruncatedStreamError(
                                "stream ends inside a compressed page header", pos,
                                section_name, "ram/record/compress",
                            )
                        (clen,) = _BE32.unpack_from(mv, pos)
                        if clen > COMPRESS_BOUND_PAGE:
                            raise StreamError(
                                f"compressed page length {clen} exceeds compressBound(4096)",
                                pos, section_name, "ram/record/compress/len_compressed",
                            )
                        pos += 4 + clen
                    if not len(self.rec_pos) & 0xFFFF and self.progress is not None:
                        self.progress(pos)
                    if pos > size:
                        raise TruncatedStreamError(
                            "stream ends inside a RAM page payload", start, section_name,
                            "ram/record/payload",
                        )
                    continue
                if kind in (EOS, MULTIFD_FLUSH):
                    counts[kind] = counts.get(kind, 0) + 1
                    rec_pos(start)
                    addr_flags(v)
                    block(-1)
                    payload_pos(pos)
                    sec(section)
                    if kind == EOS:
                        return pos
                    continue
                if kind == MEM_SIZE:
                    counts[kind] = counts.get(kind, 0) + 1
                    rec_pos(start)
                    addr_flags(v)
                    block(-1)
                    payload_pos(pos)
                    sec(section)
                    pos = self._scan_block_list(mv, pos, v & ~0xFFF, section_name)
                    continue
                raise StreamError(
                    f"unknown combination of migration flags: {v & 0xFFF:#x}",
                    start, section_name, "ram/record/addr_flags",
                )
        finally:
            self.last_block = last

    def _bulk(
        self,
        mv: memoryview,
        pos: int,
        stride: int,
        low: int,
        block: int,
        section: int,
        counts: dict[int, int],
    ) -> int:
        """Index a run of PAGE|CONTINUE or ZERO|CONTINUE records at C speed.

        Such records have a fixed stride, so the header bytes of a run can be gathered with
        strided slices; the run ends at the first header whose flags differ. Returns the offset
        after the run (pos itself when the run is empty).
        """
        kind = low & 0xDF
        size = len(mv)
        low_tab = _MISMATCH_TABLES[low]
        while True:
            n = min((size - pos) // stride, _BULK_BYTES // stride)
            if n <= 0:
                return pos
            src, o = self._window(mv, pos, n * stride)
            lows = src[o + 7 : o + 7 + n * stride : stride].tobytes().translate(low_tab)
            j = lows.find(1)
            j = n if j < 0 else j
            if j == 0:
                return pos
            vals = array("Q", _run_struct(stride, j).unpack_from(src, o))
            k = vals.tobytes()[_BITS_8_15 :: 8].translate(_NIBBLE_TAB).find(1)
            if k >= 0:
                j = k
                del vals[k:]
                if j == 0:
                    return pos
            end = pos + j * stride
            self.rec_pos.extend(range(pos, end, stride))
            self.addr_flags.extend(vals)
            self.block.extend(array("i", [block]) * j)
            self.payload_pos.extend(range(pos + 8, end + 8, stride))
            self.section.extend(array("I", [section]) * j)
            counts[kind] = counts.get(kind, 0) + j
            pos = end
            if self.progress is not None:
                self.progress(pos)
            if j < n:
                return pos

    def _window(self, mv: memoryview, pos: int, n: int) -> tuple[memoryview, int]:
        """n bytes at pos: read into a reused buffer when a file descriptor is set.

        Copying runs through pread is cheaper than faulting in every page of a multi-GB mapping,
        and it keeps the process's resident set small.
        """
        if self.fd is None:
            return mv, pos
        if self._wbuf is None:
            self._wbuf = bytearray(_BULK_BYTES)
        view = memoryview(self._wbuf)[:n]
        got = os.preadv(self.fd, [view], pos)
        if got != n:
            return mv, pos
        return view, 0

    def _scan_block_list(self, mv: memoryview, pos: int, total: int, section_name: str) -> int:
        self.mem_size_total = total
        remaining = total
        size = len(mv)
        while remaining:
            entry = pos
            if pos >= size:
                raise TruncatedStreamError(
                    "stream ends inside the RAM block list", pos, section_name, "ram/blocks"
                )
            n = mv[pos]
            extra = 8 * (int(self.ignore_shared) + int(self.postcopy_page_sizes))
            if n == 0 or pos + 1 + n + 8 + extra > size:
                raise StreamError(
                    "bad RAM block list entry", pos, section_name, "ram/blocks/idstr"
                )
            name = bytes(mv[pos + 1 : pos + 1 + n])
            pos += 1 + n
            (length,) = _BE64.unpack_from(mv, pos)
            pos += 8
            if length == 0 or length > remaining:
                raise StreamError(
                    f"RAM block {name.decode('latin-1')!r} length {length:#x} does not fit the "
                    f"remaining total {remaining:#x}",
                    pos - 8, section_name, "ram/blocks/used_length",
                )
            remaining -= length
            page_size = addr = None
            if self.postcopy_page_sizes:
                (page_size,) = _BE64.unpack_from(mv, pos)
                pos += 8
            if self.ignore_shared:
                (addr,) = _BE64.unpack_from(mv, pos)
                pos += 8
            idx = self.block_index(name, listed=True, used_length=length)
            info = self.blocks[idx]
            info.used_length, info.listed, info.entry_offset = length, True, entry
            info.page_size, info.addr = page_size, addr
        return pos
