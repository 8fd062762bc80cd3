"""Tests of the real-QEMU fixture kit (fixtures/kit) and of the committed captures.

Tests marked ``qemu`` run a real ``qemu-system-x86_64`` (7.2). Without QEMU they are skipped
locally but fail when ``CI=true``, so CI cannot silently lose them. The tests without the
marker only read the committed files in ``fixtures/captures``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # pytest's rootdir is not on sys.path by default
    sys.path.insert(0, str(ROOT))

from fixtures.kit import QemuNotFoundError  # noqa: E402
from fixtures.kit.capture import SCENARIOS, capture  # noqa: E402
from fixtures.kit.dest import load_stream  # noqa: E402
from fixtures.kit.guest import BinutilsMissingError, build_guest  # noqa: E402
from fixtures.kit.scan import scan_stream  # noqa: E402
from fixtures.kit.vm import find_qemu  # noqa: E402

CAPTURES = ROOT / "fixtures" / "captures"
RANGE_KEYS = {"gpa", "size", "ramblock", "block_offset", "sha256", "source_sha256", "dest_sha256"}
ORACLE_KEYS = {
    "name", "stream", "stream_size", "stream_sha256", "qemu", "source", "destination",
    "migration", "timings", "oracle", "ranges", "canary", "info_ramblock", "stream_summary",
}  # fmt: skip


def require_qemu() -> str:
    """Path of QEMU; skip without it, but fail in CI (CI=true)."""
    try:
        return find_qemu()
    except QemuNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but QEMU is missing: {exc}")
        pytest.skip(str(exc))


def check_oracle(oracle: dict[str, Any], stream: Path) -> None:
    assert oracle.keys() >= ORACLE_KEYS
    assert oracle["stream_size"] == stream.stat().st_size
    assert "7.2" in oracle["qemu"]["version_string"]
    assert oracle["qemu"]["query_version"]["qemu"]["major"] == 7
    assert oracle["source"]["command_line"][0].endswith("qemu-system-x86_64")
    assert "-accel" in oracle["source"]["command_line"]
    assert oracle["source"]["final_query_migrate"]["status"] == "completed"
    assert "Block Name" in oracle["info_ramblock"]
    assert oracle["ranges"], "no memory ranges hashed"
    for r in oracle["ranges"]:
        assert r.keys() >= RANGE_KEYS
        assert len(r["sha256"]) == 64
    if oracle["destination"] is not None:
        assert oracle["oracle"]["authoritative"] == "destination"
        assert oracle["destination"]["accepted"] is True
        assert all(r["sha256"] == r["dest_sha256"] for r in oracle["ranges"])


@pytest.mark.qemu
def test_capture_pc_paused_and_load_back(tmp_path: Path) -> None:
    require_qemu()
    res = capture("pc-paused", tmp_path / "out", workdir=tmp_path / "work")
    data = res.stream_path.read_bytes()
    assert data[:4] == b"QEVM"
    assert int.from_bytes(data[4:8], "big") == 3
    oracle = json.loads(res.oracle_path.read_text())
    check_oracle(oracle, res.stream_path)
    assert oracle["canary"] is None  # the paused baseline has no guest
    assert res.summary.has_vmdesc

    sc = SCENARIOS["pc-paused"]
    loaded = load_stream(res.stream_path, sc.resolve_args(tmp_path), timeout=60)
    assert loaded.accepted, loaded.stderr
    assert loaded.status == "completed"
    assert loaded.exit_code == 0


@pytest.mark.qemu
def test_load_stream_rejects_truncated_stream(tmp_path: Path) -> None:
    require_qemu()
    src = CAPTURES / "pc-paused.bin"
    if not src.exists():
        pytest.skip("committed capture pc-paused.bin missing")
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    res = load_stream(bad, SCENARIOS["pc-paused"].resolve_args(tmp_path), timeout=30)
    assert not res.accepted
    assert res.status == "failed"
    assert res.exit_code not in (0, None)
    assert "load of migration failed" in res.stderr


@pytest.mark.qemu
def test_guest_canary_survives_migration(tmp_path: Path) -> None:
    require_qemu()
    try:
        build_guest(tmp_path / "cache")
    except BinutilsMissingError as exc:
        pytest.skip(str(exc))
    res = capture(
        "pc-compress", tmp_path / "out", workdir=tmp_path / "w", cache_dir=tmp_path / "cache"
    )
    oracle = res.oracle
    check_oracle(oracle, res.stream_path)
    assert oracle["canary"]["in_dest_memory"] is True
    assert oracle["canary"]["ramblock"] == "pc.ram"
    assert oracle["destination"]["guest_kept_running_after_cont"] is True
    assert res.summary.records["COMPRESS_PAGE"] >= 100


@pytest.mark.qemu
@pytest.mark.slow
def test_large_xbzrle_capture(large_xbzrle_capture: Any) -> None:
    res = large_xbzrle_capture
    assert res.summary.records["XBZRLE"] >= 10000
    assert res.summary.sections["PART"] >= 100


# -- committed captures (no QEMU needed) ---------------------------------------------------

COMMITTED = sorted(n for n, s in SCENARIOS.items() if not s.large)


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_capture_matches_oracle(name: str) -> None:
    stream = CAPTURES / f"{name}.bin"
    oracle_path = CAPTURES / f"{name}.oracle.json"
    assert stream.exists() and oracle_path.exists(), "regenerate: python -m fixtures.kit capture"
    oracle = json.loads(oracle_path.read_text())
    check_oracle(oracle, stream)
    sc = SCENARIOS[name]
    summary = scan_stream(
        stream.read_bytes(), ignore_shared=bool(sc.capabilities.get("x-ignore-shared"))
    )
    assert summary.to_json() == oracle["stream_summary"]
    assert summary.sections["PART"] >= sc.expect.min_parts
    assert summary.records["XBZRLE"] >= sc.expect.min_xbzrle
    assert summary.records["COMPRESS_PAGE"] >= sc.expect.min_compressed
    assert summary.has_vmdesc == sc.expect.vmdesc
    if sc.guest:
        assert oracle["canary"]["string"] == "MIGSTREAM-CANARY-0123456789abcdef"
        assert oracle["canary"]["gpa"] == 0x90000


def test_committed_set_is_small() -> None:
    total = sum((CAPTURES / f"{n}.bin").stat().st_size for n in COMMITTED)
    assert total < 8 * 1024 * 1024
