"""`migstream diff`: field-level and page-level differences, checked against independent truth.

* two captures of the same running guest taken seconds apart (made here with real QEMU): the
  changed pages are exactly those whose extracted memory differs, and the changed CPU fields
  exactly those whose decoded values differ;
* a single field changed by mutation is reported with its exact path and both values;
* a single page byte changed is reported as that page, one byte;
* unusable inputs give exit 2 and one line.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from analyzer.diff import DiffResult, diff_files
from analyzer.loadsim import node_paths
from analyzer.model import Stream
from analyzer.ram import extract
from formats.constants import TARGET_PAGE_SIZE
from tests.conftest import CAPTURES, require_qemu
from tests.support.cli import run
from tests.support.mutants import apply_ops

PAUSED = CAPTURES / "pc-paused.bin"
LIVE = CAPTURES / "pc-live.bin"




def extracted_page_diff(a: Path, b: Path, tmp: Path) -> set[tuple[str, int]]:
    """Pages whose content differs between the two streams' extracted RAM images."""
    images: list[dict[str, Path]] = []
    for name, path in (("a", a), ("b", b)):
        out = tmp / name
        with Stream.open(path) as s:
            images.append({str(Path(f).relative_to(out)): Path(f) for f in extract(s, out)})
    assert images[0].keys() == images[1].keys()
    changed: set[tuple[str, int]] = set()
    for rel, fa in images[0].items():
        fb = images[1][rel]
        with open(fa, "rb") as x, open(fb, "rb") as y:
            off = 0
            while True:
                pa, pb = x.read(TARGET_PAGE_SIZE), y.read(TARGET_PAGE_SIZE)
                if not pa and not pb:
                    break
                if pa != pb:
                    changed.add((rel, off))
                off += TARGET_PAGE_SIZE
    return changed


def decoded_field_diff(a: Path, b: Path, idstr: str) -> set[str]:
    values: list[dict[str, object]] = []
    for path in (a, b):
        with Stream.open(path) as s:
            sec = next(x for x in s.sections if x.idstr == idstr and x.type == 4)
            assert sec.nodes is not None
            values.append({p: n.value for p, n in node_paths(sec.nodes) if not n.children})
    return {p for p in values[0] if values[0][p] != values[1].get(p)}


def block_file(block: str) -> str:
    return block.lstrip("/")


def check_against_truth(res: DiffResult, a: Path, b: Path, tmp: Path) -> None:
    truth = extracted_page_diff(a, b, tmp)
    reported = {(block_file(blk), off) for blk, off in res.changed_pages()}
    assert reported == truth
    assert not any(r.kind != "changed" for bd in res.ram for r in bd.runs)
    cpu = res.section("cpu")
    assert cpu is not None
    assert {f.path for f in cpu.fields} == decoded_field_diff(a, b, "cpu")


def test_identical_streams(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["diff", str(PAUSED), str(PAUSED)], capsys)
    assert rc == 0 and "no differences" in out


def test_two_captures_against_extracted_memory(tmp_path: Path) -> None:
    """pc-live and pc-xbzrle boot the same guest: a QEMU-free run of the acceptance check."""
    b = CAPTURES / "pc-xbzrle.bin"
    res = diff_files(LIVE, b)
    assert not res.same
    check_against_truth(res, LIVE, b, tmp_path)


def test_single_field_mutation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with Stream.open(PAUSED) as s:
        cpu = next(x for x in s.sections if x.idstr == "cpu")
        assert cpu.nodes is not None
        node = dict(node_paths(cpu.nodes))["env.regs[3]"]
        old = node.value
    assert isinstance(old, int)
    new = old ^ 0x1234_5678_9ABC
    m = tmp_path / "m.bin"
    m.write_bytes(apply_ops(PAUSED.read_bytes(),
                            [["replace", node.offset, new.to_bytes(8, "big").hex()]]))
    res = diff_files(PAUSED, m)
    assert not res.added and not res.removed and not res.config
    assert not any(bd.different for bd in res.ram)
    assert len(res.changed) == 1 and len(res.changed[0].fields) == 1
    f = res.changed[0].fields[0]
    assert (res.changed[0].idstr, f.path, f.type, f.old, f.new) == (
        "cpu", "env.regs[3]", "uint64", old, new)
    rc, out, _ = run(["diff", str(PAUSED), str(m), "--json"], capsys)
    assert rc == 1
    doc = json.loads(out)
    jf = doc["sections"]["changed"][0]["fields"][0]
    assert jf["path"] == "env.regs[3]" and jf["old"] == old and jf["new"] == new
    assert jf["old_hex"] == f"0x{old:016x}" and jf["new_hex"] == f"0x{new:016x}"
    rc, out, _ = run(["diff", str(PAUSED), str(m)], capsys)
    assert rc == 1
    assert f"env.regs[3]  (uint64) 0x{old:016x} ({old}) -> 0x{new:016x} ({new})" in out


def test_sections_and_subsections_added_or_removed() -> None:
    res = diff_files(PAUSED, LIVE)
    assert ("0000:00:03.0/e1000", 0, 0) in res.removed
    cpu = res.section("cpu")
    assert cpu is not None
    added = {f.path: f for f in cpu.fields if f.change == "added"}
    assert added["cpu/msr_smi_count"].type == "subsection"
    assert ("0000:00:02.0/vga.vram", None) in {(b.block, b.size_b) for b in res.ram}
    text = res.text()
    assert "- '0000:00:03.0/e1000' instance 0 only in A" in text
    assert "+ cpu/msr_smi_count  (subsection) only in B: version 1" in text


def test_ignore_patterns(capsys: pytest.CaptureFixture[str]) -> None:
    b = CAPTURES / "pc-xbzrle.bin"
    res = diff_files(LIVE, b, ignore=["timer/*", "mc146818rtc/*", "i8254/*", "cpu/*",
                                      "ram/pc.ram"])
    assert res.same, res.text()
    assert res.ignored > 0
    rc, out, _ = run(["diff", str(LIVE), str(b), "--ignore", "timer/*", "--ignore",
                      "*/env.regs[*]"], capsys)
    assert rc == 1
    assert "'timer'" not in out and "env.regs" not in out and "env.cr[0]" in out


def test_page_change_and_hexdump(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with Stream.open(LIVE) as s:
        r = s.ram
        rows = [i for i in range(len(r)) if (r.addr_flags[i] & 0xFDF) == 0x08]
        i = rows[len(rows) // 2]
        payload, page = r.payload_pos[i], r.addr_flags[i] & ~0xFFF
        block = r.blocks[r.block[i]].idstr
        later = [k for k in range(i + 1, len(r)) if (r.addr_flags[k] & ~0xFFF) == page
                 and r.block[k] == r.block[i] and (r.addr_flags[k] & 0xFDF) in (2, 8, 0x40)]
    assert not later, "pick a page whose last copy is this record"
    data = LIVE.read_bytes()
    m = tmp_path / "m.bin"
    flipped = f"{data[payload + 100] ^ 0xFF:02x}"
    m.write_bytes(apply_ops(data, [["replace", payload + 100, flipped]]))
    res = diff_files(LIVE, m, pages=True)
    assert res.changed_pages() == {(block, page)}
    bd = next(x for x in res.ram if x.different)
    assert bd.bytes_changed == 1 and bd.pages[0].first_diff == 100
    rc, out, _ = run(["diff", str(LIVE), str(m), "--pages"], capsys)
    assert rc == 1
    assert f"page {page:#010x} changed: 1 byte(s)" in out
    assert f"A {page + 96:#010x}:" in out and f"B {page + 96:#010x}:" in out


def test_bad_inputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"garbage " * 20)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(PAUSED.read_bytes()[:5000])
    for argv in (["diff", str(junk), str(PAUSED)], ["diff", str(PAUSED), str(cut)],
                 ["diff", str(PAUSED), str(tmp_path / "missing.bin")],
                 ["diff", str(tmp_path), str(PAUSED)]):
        rc, out, err = run(argv, capsys)
        assert rc == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("migstream: error: "), err


# -- two captures of one running guest, seconds apart (real QEMU) -----------------------


def _migrate(vm: object, out: Path) -> None:
    from fixtures.kit.vm import QemuVM

    assert isinstance(vm, QemuVM)
    vm.qmp.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(out))}"})
    deadline = time.monotonic() + 30
    while True:
        status = vm.qmp.execute("query-migrate")["status"]
        if status == "completed":
            break
        assert status not in ("failed", "cancelled"), status
        assert time.monotonic() < deadline, "migration did not complete"
        time.sleep(0.05)
    last = -1
    while True:  # exec:cat may still be writing when QEMU reports completed
        size = out.stat().st_size if out.exists() else -1
        if size == last and size > 0:
            return
        last = size
        time.sleep(0.1)


@pytest.mark.qemu
def test_same_running_guest_captured_twice(tmp_path: Path) -> None:
    require_qemu()
    from fixtures.kit.guest import build_guest
    from fixtures.kit.vm import QemuVM

    guest = build_guest()
    serial = tmp_path / "serial.log"
    args = ["-machine", "pc", "-m", "16", "-nic", "none", "-vga", "none",
            *guest.drive_args(), "-serial", f"file:{serial}"]
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    with QemuVM(args, workdir=tmp_path, name="diff-source") as vm:
        deadline = time.monotonic() + 20
        while "migstream-guest: boot" not in (serial.read_text(errors="replace")
                                              if serial.exists() else ""):
            assert time.monotonic() < deadline, "guest did not boot"
            time.sleep(0.05)
        time.sleep(0.5)
        _migrate(vm, a)
        vm.qmp.execute("cont")
        time.sleep(1.5)
        _migrate(vm, b)
        vm.quit()
    res = diff_files(a, b)
    assert not res.same
    check_against_truth(res, a, b, tmp_path)
    cpu = res.section("cpu")
    assert cpu is not None and cpu.fields, "the guest ran between the captures"
    assert res.changed_pages(), "the guest dirties pages"
