"""The "ram" live handler of migration/ram.c: blocks, dirty bitmap, page sender, XBZRLE cache.

`RAMState` mirrors 7.2's save side: `ram_save_setup` writes the MEM_SIZE block list,
`ram_save_iterate` sends dirty pages (rate limited) and `ram_save_complete` the rest after a
final bitmap sync, each ending in EOS. Per page `ram_save_target_page` picks, in QEMU's order:
compression (when on, XBZRLE not yet active, and the block is the last one sent), a ZERO
record, then XBZRLE against the page cache (once a full pass has completed) or a PAGE. Block
names are sent only when the block differs from `last_sent_block`, which carries over
sections. The dirty log is what the guest writes; `migration_bitmap_sync` folds it into the
migration bitmap.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from formats import xbzrle
from formats.constants import ENCODING_FLAG_XBZRLE, TARGET_PAGE_SIZE, RamFlag
from savevm.qemu_file import QEMUFile
from savevm.savevm import SaveVMHandlers, SaveVMState

log = logging.getLogger(__name__)

RAM_SAVE_FLAG_ZERO = int(RamFlag.RAM_SAVE_FLAG_ZERO)
RAM_SAVE_FLAG_MEM_SIZE = int(RamFlag.RAM_SAVE_FLAG_MEM_SIZE)
RAM_SAVE_FLAG_PAGE = int(RamFlag.RAM_SAVE_FLAG_PAGE)
RAM_SAVE_FLAG_EOS = int(RamFlag.RAM_SAVE_FLAG_EOS)
RAM_SAVE_FLAG_CONTINUE = int(RamFlag.RAM_SAVE_FLAG_CONTINUE)
RAM_SAVE_FLAG_XBZRLE = int(RamFlag.RAM_SAVE_FLAG_XBZRLE)
RAM_SAVE_FLAG_COMPRESS_PAGE = int(RamFlag.RAM_SAVE_FLAG_COMPRESS_PAGE)

CACHED_PAGE_LIFETIME = 2
ZERO_PAGE = bytes(TARGET_PAGE_SIZE)


@dataclass(eq=False)
class RAMBlock:
    """A RAMBlock: name, length, contents and the two dirty maps (one byte per page)."""

    idstr: str
    used_length: int
    data: bytearray | memoryview | None = None
    """Guest contents; None means all zeros (allocated on first write)."""
    page_size: int = TARGET_PAGE_SIZE
    addr: int = 0
    """Guest-physical base of the block's memory region (sent with x-ignore-shared)."""
    offset: int = 0
    """The block's ram_addr_t offset (keys the XBZRLE cache)."""
    bmap: bytearray = field(default_factory=bytearray)
    dirty_log: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if self.used_length % TARGET_PAGE_SIZE:
            raise ValueError(f"RAM block {self.idstr} length {self.used_length:#x} is not "
                             "page aligned")
        pages = self.used_length // TARGET_PAGE_SIZE
        self.bmap = bytearray(b"\x01") * pages
        self.dirty_log = bytearray(pages)

    @property
    def pages(self) -> int:
        return self.used_length // TARGET_PAGE_SIZE

    def page(self, page: int) -> bytes | memoryview:
        """The page's current contents (a view: copy it to keep it)."""
        if self.data is None:
            return ZERO_PAGE
        start = page * TARGET_PAGE_SIZE
        return memoryview(self.data)[start : start + TARGET_PAGE_SIZE]

    def write(self, offset: int, data: bytes) -> None:
        """A guest write: changes contents and marks the pages in the dirty log."""
        if self.data is None:
            self.data = bytearray(self.used_length)
        end = offset + len(data)
        if offset < 0 or end > self.used_length:
            raise ValueError(f"write [{offset:#x}, {end:#x}) outside RAM block {self.idstr}")
        self.data[offset:end] = data
        first = offset // TARGET_PAGE_SIZE
        last = (end - 1) // TARGET_PAGE_SIZE
        self.dirty_log[first : last + 1] = b"\x01" * (last - first + 1)


class PageCache:
    """migration/page_cache.c: a direct-mapped cache of num_items pages with ages."""

    def __init__(self, size: int) -> None:
        n = size // TARGET_PAGE_SIZE
        if n < 1 or n & (n - 1):
            raise ValueError("xbzrle cache size must be a power-of-two number of pages")
        self.max_num_items = n
        self._addr = [-1] * n
        self._age = [0] * n
        self._data: list[bytes | None] = [None] * n

    def _pos(self, addr: int) -> int:
        return (addr // TARGET_PAGE_SIZE) & (self.max_num_items - 1)

    def is_cached(self, addr: int, age: int) -> bool:
        pos = self._pos(addr)
        if self._addr[pos] == addr:
            self._age[pos] = age
            return True
        return False

    def insert(self, addr: int, data: bytes, age: int) -> bool:
        pos = self._pos(addr)
        if (self._data[pos] is not None and self._addr[pos] != addr
                and self._age[pos] + CACHED_PAGE_LIFETIME > age):
            return False
        self._data[pos] = bytes(data)
        self._age[pos] = age
        self._addr[pos] = addr
        return True

    def get(self, addr: int) -> bytes:
        data = self._data[self._pos(addr)]
        assert data is not None
        return data

    def set(self, addr: int, data: bytes) -> None:
        self._data[self._pos(addr)] = bytes(data)


@dataclass
class RamCounters:
    """The "ram" and "xbzrle-cache" figures of query-migrate."""

    transferred: int = 0
    duplicate: int = 0
    normal: int = 0
    dirty_sync_count: int = 0
    xbzrle_pages: int = 0
    xbzrle_bytes: int = 0
    xbzrle_cache_miss: int = 0
    xbzrle_overflow: int = 0
    compressed_pages: int = 0
    compressed_bytes: int = 0


class RAMState:
    """The RAM save state and its SaveVMHandlers."""

    def __init__(
        self,
        blocks: list[RAMBlock],
        *,
        xbzrle_enabled_cap: bool = False,
        xbzrle_cache_size: int = 64 << 20,
        compress: bool = False,
        compress_level: int = 1,
        ignore_shared: bool = False,
        postcopy: bool = False,
    ) -> None:
        self.blocks = blocks
        self.use_xbzrle = xbzrle_enabled_cap
        self.use_compression = compress
        self.compress_level = compress_level
        self.ignore_shared = ignore_shared
        self.postcopy = postcopy
        self.cache = PageCache(xbzrle_cache_size) if xbzrle_enabled_cap else None
        self.counters = RamCounters()
        self.last_seen_block: int | None = None
        self.last_sent_block: RAMBlock | None = None
        self.last_page = 0
        self.xbzrle_enabled = False
        self.last_stage = False
        self.migration_dirty_pages = sum(b.pages for b in blocks)
        self.max_iterate_pages: int | None = None
        """Stands in for 7.2's 50 ms MAX_WAIT per iterate call (None: rate limit only)."""
        self.on_page: Callable[[RAMBlock, int, int], None] | None = None
        """Called as (block, page, record flags) for every record sent."""

    # -- records -------------------------------------------------------------------------

    def save_page_header(self, f: QEMUFile, block: RAMBlock, offset: int) -> int:
        if block is self.last_sent_block:
            offset |= RAM_SAVE_FLAG_CONTINUE
        f.put_be64(offset)
        size = 8
        if not offset & RAM_SAVE_FLAG_CONTINUE:
            f.put_counted_string(block.idstr)
            size += 1 + len(block.idstr)
            self.last_sent_block = block
        return size

    def send_zero(self, f: QEMUFile, block: RAMBlock, page: int, fill: int = 0) -> None:
        n = self.save_page_header(f, block, page * TARGET_PAGE_SIZE | RAM_SAVE_FLAG_ZERO)
        f.put_byte(fill)
        self.counters.duplicate += 1
        self.counters.transferred += n + 1
        self._notify(block, page, RAM_SAVE_FLAG_ZERO)

    def send_page(self, f: QEMUFile, block: RAMBlock, page: int,
                  data: bytes | memoryview) -> None:
        n = self.save_page_header(f, block, page * TARGET_PAGE_SIZE | RAM_SAVE_FLAG_PAGE)
        f.put_buffer(data)
        self.counters.normal += 1
        self.counters.transferred += n + TARGET_PAGE_SIZE
        self._notify(block, page, RAM_SAVE_FLAG_PAGE)

    def send_xbzrle(self, f: QEMUFile, block: RAMBlock, page: int, encoded: bytes) -> None:
        n = self.save_page_header(f, block, page * TARGET_PAGE_SIZE | RAM_SAVE_FLAG_XBZRLE)
        f.put_byte(ENCODING_FLAG_XBZRLE)
        f.put_be16(len(encoded))
        f.put_buffer(encoded)
        n += 3 + len(encoded)
        self.counters.xbzrle_bytes += n - 8
        self.counters.transferred += n
        self._notify(block, page, RAM_SAVE_FLAG_XBZRLE)

    def send_compressed(self, f: QEMUFile, block: RAMBlock, page: int,
                        data: bytes | memoryview) -> None:
        comp = zlib.compressobj(self.compress_level)
        blob = comp.compress(data) + comp.flush()
        n = self.save_page_header(f, block,
                                  page * TARGET_PAGE_SIZE | RAM_SAVE_FLAG_COMPRESS_PAGE)
        f.put_be32(len(blob))
        f.put_buffer(blob)
        self.counters.compressed_pages += 1
        self.counters.compressed_bytes += len(blob)
        self.counters.transferred += n + 4 + len(blob)
        self._notify(block, page, RAM_SAVE_FLAG_COMPRESS_PAGE)

    def send_eos(self, f: QEMUFile) -> None:
        f.put_be64(RAM_SAVE_FLAG_EOS)
        self.counters.transferred += 8

    def send_block_list(self, f: QEMUFile) -> None:
        total = sum(b.used_length for b in self.blocks)
        f.put_be64(total | RAM_SAVE_FLAG_MEM_SIZE)
        for b in self.blocks:
            f.put_counted_string(b.idstr)
            f.put_be64(b.used_length)
            if self.postcopy and b.page_size != TARGET_PAGE_SIZE:
                f.put_be64(b.page_size)
            if self.ignore_shared:
                f.put_be64(b.addr)

    def _notify(self, block: RAMBlock, page: int, flags: int) -> None:
        if self.on_page is not None:
            self.on_page(block, page, flags)

    def postcopy_discard_reset(self) -> None:
        """ram_postcopy_send_discard_bitmap forgets where the search and the sender were."""
        self.last_seen_block = None
        self.last_sent_block = None
        self.last_page = 0

    # -- dirty tracking ------------------------------------------------------------------

    def migration_bitmap_sync(self) -> None:
        """Fold the guest's dirty log into the migration bitmap and clear the log."""
        self.counters.dirty_sync_count += 1
        for b in self.blocks:
            if b.dirty_log.find(1) >= 0:
                n = len(b.bmap)
                merged = int.from_bytes(b.bmap, "big") | int.from_bytes(b.dirty_log, "big")
                b.bmap[:] = merged.to_bytes(n, "big")
                b.dirty_log[:] = bytes(n)
        self.migration_dirty_pages = sum(b.bmap.count(1) for b in self.blocks)

    def _find_dirty(self, block: int, page: int) -> int:
        idx = self.blocks[block].bmap.find(1, page)
        return idx if idx >= 0 else self.blocks[block].pages

    # -- the page decision ---------------------------------------------------------------

    def _save_page_use_compression(self) -> bool:
        return self.use_compression and not self.xbzrle_enabled

    def ram_save_target_page(self, f: QEMUFile, block: RAMBlock, page: int) -> int:
        data = block.page(page)
        if self._save_page_use_compression() and block is self.last_sent_block:
            if data == ZERO_PAGE:
                self.send_zero(f, block, page)
            else:
                self.send_compressed(f, block, page, data)
            return 1
        if data == ZERO_PAGE:
            self.send_zero(f, block, page)
            if not self._save_page_use_compression() and self.xbzrle_enabled:
                assert self.cache is not None
                self.cache.insert(block.offset + page * TARGET_PAGE_SIZE, ZERO_PAGE,
                                  self.counters.dirty_sync_count)
            return 1
        return self.ram_save_page(f, block, page, data)

    def ram_save_page(self, f: QEMUFile, block: RAMBlock, page: int,
                      data: bytes | memoryview) -> int:
        if self.xbzrle_enabled:
            assert self.cache is not None
            addr = block.offset + page * TARGET_PAGE_SIZE
            age = self.counters.dirty_sync_count
            if not self.cache.is_cached(addr, age):
                self.counters.xbzrle_cache_miss += 1
                if not self.last_stage and self.cache.insert(addr, bytes(data), age):
                    data = self.cache.get(addr)
            else:
                self.counters.xbzrle_pages += 1
                old = self.cache.get(addr)
                encoded = xbzrle.encode(old, bytes(data), TARGET_PAGE_SIZE)
                if not self.last_stage and encoded != b"":
                    self.cache.set(addr, bytes(data))
                if encoded == b"":
                    return 0
                if encoded is not None:
                    self.send_xbzrle(f, block, page, encoded)
                    return 1
                self.counters.xbzrle_overflow += 1
        self.send_page(f, block, page, data)
        return 1

    # -- the dirty-page search -----------------------------------------------------------

    def _clear_dirty(self, block: RAMBlock, page: int) -> bool:
        if block.bmap[page]:
            block.bmap[page] = 0
            self.migration_dirty_pages -= 1
            return True
        return False

    def ram_find_and_save_block(self, f: QEMUFile) -> int:
        """Send the next dirty page after where the last search stopped; 0 when none."""
        if not self.blocks:
            return 0
        if self.last_seen_block is None:
            self.last_seen_block, self.last_page = 0, 0
        bi, page = self.last_seen_block, self.last_page
        complete_round = False
        pages = 0
        while True:
            page = self._find_dirty(bi, page)
            if complete_round and bi == self.last_seen_block and page >= self.last_page:
                break
            if page >= self.blocks[bi].pages:
                page = 0
                bi += 1
                if bi == len(self.blocks):
                    bi = 0
                    complete_round = True
                    if self.use_xbzrle:
                        self.xbzrle_enabled = True
                continue
            block = self.blocks[bi]
            if self._clear_dirty(block, page):
                pages = self.ram_save_target_page(f, block, page)
            page += 1
            if pages:
                break
        self.last_seen_block, self.last_page = bi, page
        return pages

    # -- SaveVMHandlers ------------------------------------------------------------------

    def save_setup(self, f: QEMUFile, opaque: object) -> int:
        self.counters.dirty_sync_count = 1
        self.send_block_list(f)
        self.send_eos(f)
        return 0

    def save_live_iterate(self, f: QEMUFile, opaque: object) -> int:
        done = 0
        sent = 0
        while not f.rate_limit():
            pages = self.ram_find_and_save_block(f)
            if pages == 0:
                done = 1
                break
            sent += 1
            if self.max_iterate_pages is not None and sent >= self.max_iterate_pages:
                break
        self.send_eos(f)
        return done

    def save_live_complete_precopy(self, f: QEMUFile, opaque: object) -> int:
        self.last_stage = True
        self.migration_bitmap_sync()
        while self.ram_find_and_save_block(f):
            pass
        self.send_eos(f)
        return 0

    def save_live_pending(self, opaque: object, threshold: int) -> tuple[int, int, int]:
        remaining = self.migration_dirty_pages * TARGET_PAGE_SIZE
        if remaining < threshold:
            self.migration_bitmap_sync()
            remaining = self.migration_dirty_pages * TARGET_PAGE_SIZE
        return (0, remaining, 0) if self.postcopy else (remaining, 0, 0)

    def handlers(self) -> SaveVMHandlers:
        return SaveVMHandlers(
            save_setup=self.save_setup,
            save_live_iterate=self.save_live_iterate,
            save_live_complete_precopy=self.save_live_complete_precopy,
            save_live_pending=self.save_live_pending,
            has_postcopy=lambda _o: self.postcopy,
        )

    def register(self, state: SaveVMState, section_id: int | None = None) -> None:
        """register_savevm_live("ram", 0, 4, &savevm_ram_handlers, &ram_state)."""
        state.register_savevm_live("ram", 0, 4, self.handlers(), self, section_id=section_id)
