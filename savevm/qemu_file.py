"""QEMUFile, the write side: big-endian primitives, counted strings, byte accounting, rate limit.

Mirrors migration/qemu-file.c's put functions. Bytes go to any binary file object (or are
collected in memory); `total_transferred` counts every byte put, which is what the vmdesc
builder measures field sizes with. The rate limit works like QEMU's: `rate_limit()` is true
once `bytes_xfer` exceeds `xfer_limit` within the current window, and the driver resets the
window (migration.c `migration_rate_limit`).
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")


class QEMUFile:
    """An output migration stream."""

    def __init__(self, out: BinaryIO | None = None) -> None:
        self._out: BinaryIO = out if out is not None else io.BytesIO()
        self.total_transferred = 0
        self.bytes_xfer = 0
        """Bytes put since the rate-limit window was last reset."""
        self.xfer_limit: int | None = None
        """Bytes allowed per window; None is unlimited (qemu_file_set_rate_limit)."""

    # -- primitives ----------------------------------------------------------------------

    def put_buffer(self, data: bytes | bytearray | memoryview) -> None:
        self._out.write(data)
        n = len(data)
        self.total_transferred += n
        self.bytes_xfer += n

    def put_byte(self, v: int) -> None:
        self.put_buffer(bytes((v & 0xFF,)))

    def put_be16(self, v: int) -> None:
        self.put_buffer(_BE16.pack(v & 0xFFFF))

    def put_be32(self, v: int) -> None:
        self.put_buffer(_BE32.pack(v & 0xFFFFFFFF))

    def put_be64(self, v: int) -> None:
        self.put_buffer(_BE64.pack(v & 0xFFFFFFFFFFFFFFFF))

    def put_counted_string(self, s: str | bytes) -> None:
        """qemu_put_counted_string: a length byte and the bytes; QEMU asserts len < 256."""
        data = s.encode("latin-1") if isinstance(s, str) else s
        if len(data) > 255:
            raise ValueError(f"counted string of {len(data)} bytes exceeds 255: {data[:40]!r}")
        self.put_byte(len(data))
        self.put_buffer(data)

    # -- rate limiting -------------------------------------------------------------------

    def rate_limit(self) -> bool:
        """qemu_file_rate_limit: true once this window's budget is spent."""
        return self.xfer_limit is not None and self.bytes_xfer > self.xfer_limit

    def reset_rate_window(self) -> None:
        self.bytes_xfer = 0

    # -- access --------------------------------------------------------------------------

    def getvalue(self) -> bytes:
        """The bytes written, when writing to memory."""
        if not isinstance(self._out, io.BytesIO):
            raise TypeError("getvalue() is only available for in-memory QEMUFiles")
        return self._out.getvalue()

    def flush(self) -> None:
        self._out.flush()
