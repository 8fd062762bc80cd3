"""The large live capture (not committed) is regenerated with real QEMU and checked end to end.

pc-xbzrle-long: a running guest migrated at 512 KiB/s with xbzrle: hundreds of PART sections
and tens of thousands of XBZRLE records. Decode, fast index == generated parser, extract ==
destination memory oracle, writer round trip byte-identical.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from analyzer.model import Stream
from analyzer.ram import extract, kind_counts
from savevm import template
from tests.support.reference import index_records, reference_records

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


@pytest.fixture(scope="module")
def large(large_xbzrle_capture: Any) -> tuple[Path, dict]:  # type: ignore[type-arg]
    return large_xbzrle_capture.stream_path, large_xbzrle_capture.oracle


def test_large_capture_decodes_and_indexes_exactly(large: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    path, _ = large
    with Stream.open(path) as s:
        assert s.errors == []
        assert s.iterations >= 100
        assert kind_counts(s)["XBZRLE"] >= 10000
        assert index_records(s) == reference_records(s)


def test_large_capture_extract_matches_oracle(large: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    path, oracle = large
    with Stream.open(path) as s:
        extract(s, tmp_path)
    for r in oracle["ranges"]:
        with open(tmp_path / r["ramblock"].lstrip("/"), "rb") as f:
            f.seek(r["block_offset"])
            assert hashlib.sha256(f.read(r["size"])).hexdigest() == r["sha256"]


def test_large_capture_round_trips(large: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    path, _ = large
    out = io.BytesIO()
    with Stream.open(path) as s:
        template.replay(s, out)
    assert out.getvalue() == path.read_bytes()
