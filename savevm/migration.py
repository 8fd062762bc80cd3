"""The migration driver (migration.c `migration_thread`) on a simulated clock.

An iterate pass (one PART section) takes the time its bytes need at max-bandwidth; the rate
limit allows max-bandwidth / 10 bytes per 100 ms window (BUFFER_DELAY, XFER_LIMIT_RATIO), and a
rate-limited driver sleeps to the end of the window. Before each pass the driver asks the
handlers for their pending bytes with the threshold bandwidth x downtime-limit (0 until the
first window has measured the bandwidth, as in QEMU); once less than that remains it
completes: END sections, FULL device sections, EOF, vmdesc.
Between windows a seeded guest workload writes to RAM (dirtying pages with small in-place
edits, so XBZRLE has work), exactly reproducible for a given seed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from formats.constants import TARGET_PAGE_SIZE
from savevm.qemu_file import QEMUFile
from savevm.ram import RAMBlock, RAMState
from savevm.savevm import (
    MigrationConfig,
    SaveVMState,
    qemu_savevm_state_complete_precopy,
    qemu_savevm_state_header,
    qemu_savevm_state_iterate,
    qemu_savevm_state_pending,
    qemu_savevm_state_setup,
)

log = logging.getLogger(__name__)

BUFFER_DELAY_MS = 100
XFER_LIMIT_RATIO = 1000 // BUFFER_DELAY_MS
MAX_THROTTLE = 128 << 20
"""7.2's default max-bandwidth, bytes per second."""


@dataclass
class MigrationParameters:
    """The migrate-set-parameters that shape the stream."""

    max_bandwidth: int = MAX_THROTTLE
    downtime_limit: int = 300
    """Milliseconds."""
    xbzrle_cache_size: int = 64 << 20
    compress_level: int = 1
    max_iterations: int = 1000
    """Give up converging after this many iterate passes and complete anyway."""


@dataclass
class Workload:
    """A seeded guest that keeps writing to RAM while it is migrated.

    Every simulated second it dirties `dirty_rate` pages chosen from a working set of
    `working_set` pages at the start of `block` (offset `base`), changing `edit_bytes` bytes
    in each, as a running guest's small in-place updates do.
    """

    seed: int = 0
    dirty_rate: int = 0
    """Pages per second; 0 is a paused guest."""
    working_set: int = 1024
    edit_bytes: int = 16
    block: str = "pc.ram"
    base: int = 0x100000
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _carry: float = 0.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def run(self, blocks: dict[str, RAMBlock], ms: float) -> int:
        """Let the guest run for `ms` simulated milliseconds; returns pages written."""
        if self.dirty_rate <= 0:
            return 0
        block = blocks.get(self.block)
        if block is None:
            return 0
        want = self.dirty_rate * ms / 1000.0 + self._carry
        n = int(want)
        self._carry = want - n
        pages = max(1, min(self.working_set, (block.used_length - self.base) // TARGET_PAGE_SIZE))
        rng = self._rng
        for _ in range(n):
            page = rng.randrange(pages)
            off = self.base + page * TARGET_PAGE_SIZE + rng.randrange(
                TARGET_PAGE_SIZE - self.edit_bytes + 1)
            block.write(off, rng.randbytes(self.edit_bytes))
        return n


@dataclass
class MigrationStats:
    """The figures query-migrate reports, for the simulated run."""

    status: str = "setup"
    total_time: int = 0
    """Simulated milliseconds."""
    transferred: int = 0
    duplicate: int = 0
    normal: int = 0
    normal_bytes: int = 0
    dirty_sync_count: int = 0
    iterations: int = 0
    remaining: int = 0
    pages_dirtied: int = 0
    converged: bool = True
    xbzrle_cache: dict[str, int] = field(default_factory=dict)
    compression: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[MigrationStats], None]


class MigrationDriver:
    """Runs one precopy migration of `state` into a QEMUFile."""

    def __init__(
        self,
        state: SaveVMState,
        ram: RAMState,
        cfg: MigrationConfig,
        params: MigrationParameters | None = None,
        workload: Workload | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.state = state
        self.ram = ram
        self.cfg = cfg
        self.params = params or MigrationParameters()
        self.workload = workload or Workload()
        self.progress = progress
        self.stats = MigrationStats()
        self._blocks = {b.idstr: b for b in ram.blocks}

    def run(self, f: QEMUFile) -> MigrationStats:
        p = self.params
        st = self.stats
        qemu_savevm_state_header(f, self.cfg)
        qemu_savevm_state_setup(f, self.state, self.cfg)
        st.status = "active"
        window = max(1, p.max_bandwidth // XFER_LIMIT_RATIO)
        bytes_per_ms = max(1, p.max_bandwidth // 1000)
        threshold = 0
        clock = 0.0
        window_start = 0.0
        f.reset_rate_window()
        f.xfer_limit = window

        def advance(ms: float) -> None:
            nonlocal clock, window_start, threshold
            clock += ms
            st.pages_dirtied += self.workload.run(self._blocks, ms)
            if clock - window_start >= BUFFER_DELAY_MS:
                window_start = clock
                f.reset_rate_window()
                threshold = bytes_per_ms * p.downtime_limit

        while True:
            pre, compat, post = qemu_savevm_state_pending(self.state, threshold)
            pending = pre + compat + post
            st.remaining = pending
            if not pending or pending < threshold:
                break
            if st.iterations >= p.max_iterations:
                st.converged = False
                log.warning("no convergence after %d iterations: completing with %d bytes "
                            "pending", st.iterations, pending)
                break
            if f.rate_limit():
                advance(window_start + BUFFER_DELAY_MS - clock)
                continue
            before = f.total_transferred
            qemu_savevm_state_iterate(f, self.state, self.cfg)
            st.iterations += 1
            advance(max(1.0, (f.total_transferred - before) / bytes_per_ms))
            self._update(int(clock))
            if self.progress is not None:
                self.progress(st)
        f.xfer_limit = None
        qemu_savevm_state_complete_precopy(f, self.state, self.cfg)
        clock += max(1.0, (f.total_transferred - st.transferred) / bytes_per_ms)
        st.status = "completed"
        self._update(int(clock))
        if self.progress is not None:
            self.progress(st)
        return st

    def _update(self, clock: int) -> None:
        c = self.ram.counters
        st = self.stats
        st.total_time = clock
        st.transferred = c.transferred
        st.duplicate = c.duplicate
        st.normal = c.normal
        st.normal_bytes = c.normal * TARGET_PAGE_SIZE
        st.dirty_sync_count = c.dirty_sync_count
        if self.ram.use_xbzrle:
            st.xbzrle_cache = {
                "cache-size": self.params.xbzrle_cache_size,
                "bytes": c.xbzrle_bytes,
                "pages": c.xbzrle_pages,
                "cache-miss": c.xbzrle_cache_miss,
                "overflow": c.xbzrle_overflow,
            }
        if self.ram.use_compression:
            st.compression = {"pages": c.compressed_pages,
                              "compressed-size": c.compressed_bytes}
