"""Output files that never exist half-written: write to a temporary name, rename when done."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO


@contextmanager
def atomic_output(path: str | os.PathLike[str], buffering: int = 1 << 20) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces `path`, on any error it is removed."""
    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=".migstream-", dir=directory)
    try:
        with os.fdopen(fd, "wb", buffering=buffering) as fh:
            yield fh
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
