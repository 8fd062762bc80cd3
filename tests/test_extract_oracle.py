"""`migstream extract` reproduces guest memory exactly as real QEMU 7.2 held it.

Each capture's oracle (fixtures/captures/*.oracle.json) holds sha256 sums of guest-physical
ranges read back with `pmemsave` from the destination that loaded the stream (the source for
paused captures), and where the tiny guest ran, the canary string's location.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from analyzer.cli import main
from analyzer.model import Stream
from analyzer.ram import RamImage, block_file_name
from tests.conftest import oracle_of


def _read(out: Path, block: str, offset: int, size: int) -> bytes:
    with open(out / block_file_name(block), "rb") as f:
        f.seek(offset)
        return f.read(size)


def test_extract_matches_pmemsave_oracle(capture: Path, tmp_path: Path,
                                         capsys: object) -> None:
    oracle = oracle_of(capture)
    assert oracle is not None, f"{capture.name} has no oracle"
    out = tmp_path / "ram"
    assert main(["extract", str(capture), "-o", str(out)]) == 0
    assert oracle["ranges"], "oracle without ranges"
    for r in oracle["ranges"]:
        data = _read(out, r["ramblock"], r["block_offset"], r["size"])
        assert len(data) == r["size"]
        assert hashlib.sha256(data).hexdigest() == r["sha256"], (r["ramblock"], r["gpa_hex"])
    canary = oracle.get("canary")
    if canary:
        got = _read(out, canary["ramblock"], canary["block_offset"], len(canary["string"]))
        assert got == canary["string"].encode()
    assert not list(out.rglob(".migstream-*")), "temporary files left behind"


def test_extract_file_names_follow_analyze_migration(capture: Path, tmp_path: Path) -> None:
    with Stream.open(capture) as s:
        names = [b.idstr for b in s.ram.blocks if b.listed]
    out = tmp_path / "x"
    assert main(["extract", str(capture), "-o", str(out)]) == 0
    for name in names:
        assert (out / name.lstrip("/")).is_file()


def test_page_view_agrees_with_extract(capture: Path, tmp_path: Path) -> None:
    """RamImage.page (random access, used by diff and the TUI) equals the extracted image."""
    out = tmp_path / "ram"
    assert main(["extract", str(capture), "-o", str(out)]) == 0
    with Stream.open(capture) as s:
        img = RamImage(s)
        blocks = s.ram.blocks
        checked = 0
        for (bi, off), _row in list(img.last_copy.items())[::7]:
            page = img.page(bi, off)
            assert page == _read(out, blocks[bi].idstr, off, 4096), (blocks[bi].idstr, off)
            checked += 1
        assert checked > 0


def test_oracle_files_record_how_they_were_made(capture: Path) -> None:
    oracle = oracle_of(capture)
    assert oracle is not None
    assert oracle["qemu"]["version_string"].startswith("QEMU emulator version 7.2")
    assert oracle["source"]["command_line"][0].endswith("qemu-system-x86_64")
    assert json.dumps(oracle["migration"])
