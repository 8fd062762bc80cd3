"""`migstream validate` on the real captures: verdicts, findings, --target, CLI exit codes.

The big agreement check against real QEMU is tests/test_validate_mutants.py; here: every
capture is accepted by a destination like itself, specific corruptions give the finding (check,
offset, section, field, QEMU text) QEMU's loader would, a real `-dump-vmstate` file works as
--target, and unusable inputs give exit 2 with one line on stderr.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from analyzer.model import Stream
from analyzer.validate import validate
from tests.conftest import CAPTURES, capture_paths, require_qemu
from tests.support.cli import run
from tests.support.mutants import apply_ops

PAUSED = CAPTURES / "pc-paused.bin"
Q35 = CAPTURES / "q35-paused.bin"




def mutate(tmp_path: Path, base: Path, ops: list[list[object]], name: str = "m.bin") -> Path:
    p = tmp_path / name
    p.write_bytes(apply_ops(base.read_bytes(), ops))
    return p


def section(path: Path, idstr: str, instance: int = 0) -> tuple[int, int, int]:
    """(header offset, version field offset, footer offset) of a FULL/START section."""
    with Stream.open(path) as s:
        for sec in s.sections:
            if sec.idstr == idstr and sec.instance_id == instance and sec.type in (1, 4):
                assert sec.footer_offset is not None
                return sec.offset, sec.offset + 10 + len(idstr), sec.footer_offset
    raise KeyError(idstr)


@pytest.mark.parametrize("path", capture_paths(), ids=lambda p: p.stem)
def test_every_capture_loads_on_a_destination_like_itself(path: Path) -> None:
    report = validate(path, reference=path)
    assert report.loads, report.text()
    assert report.exit_code == 0
    assert not report.errors


def test_version_bump_names_section_offset_and_qemu_text(tmp_path: Path) -> None:
    _, voff, _ = section(PAUSED, "timer")
    m = mutate(tmp_path, PAUSED, [["replace", voff, "00000003"]])
    report = validate(m, reference=PAUSED)
    assert not report.loads and report.exit_code == 1
    f = report.first_error
    assert f is not None
    assert (f.check, f.idstr, f.section_id) == ("section.version", "timer", 0)
    assert f.offset == voff
    assert f.qemu is not None
    assert f.qemu.splitlines() == ["savevm: unsupported version 3 for 'timer' v2",
                                   "load of migration failed: Invalid argument"]


def test_version_drop_uses_field_gating(tmp_path: Path) -> None:
    _, voff, _ = section(PAUSED, "timer")
    m = mutate(tmp_path, PAUSED, [["replace", voff, "00000001"]])
    f = validate(m, reference=PAUSED).first_error
    assert f is not None and f.check == "section.version"
    assert "cpu_clock_offset" in f.message
    assert f.qemu is not None and f.qemu.startswith("Missing section footer for timer")


def test_equal_field_change_reports_field_path_and_values(tmp_path: Path) -> None:
    with Stream.open(PAUSED) as s:
        sec = next(x for x in s.sections if x.idstr == "PCIBUS")
        assert sec.nodes is not None
        nirq = next(n for n in sec.nodes if n.name == "nirq")
    m = mutate(tmp_path, PAUSED, [["replace", nirq.offset, "00000005"]])
    f = validate(m, reference=PAUSED).first_error
    assert f is not None
    assert (f.check, f.field, f.offset, f.idstr) == ("field.equal", "nirq", nirq.offset, "PCIBUS")
    assert f.qemu is not None
    assert f.qemu.splitlines()[:2] == ["4 != 5", "Failed to load PCIBUS:nirq"]


def test_unknown_subsection_is_enoent(tmp_path: Path) -> None:
    _, _, footer = section(PAUSED, "cpu")
    bogus = "05" + bytes([len("cpu/bogus")]).hex() + b"cpu/bogus".hex() + "00000001"
    m = mutate(tmp_path, PAUSED, [["insert", footer, bogus]])
    f = validate(m, reference=PAUSED).first_error
    assert f is not None and f.check == "subsection.unknown" and f.offset == footer
    assert f.field == "cpu/bogus"
    assert f.qemu is not None and f.qemu.endswith("No such file or directory")


def test_ram_offset_outside_block(tmp_path: Path) -> None:
    with Stream.open(PAUSED) as s:
        r = s.ram
        i = next(k for k in range(len(r)) if (r.addr_flags[k] & 0xFDF) == 0x02
                 and r.blocks[r.block[k]].idstr == "pc.ram")
        rec, v = r.rec_pos[i], r.addr_flags[i]
    bad = (16 << 20) | (v & 0xFFF)
    m = mutate(tmp_path, PAUSED, [["replace", rec, bad.to_bytes(8, "big").hex()]])
    f = validate(m, reference=PAUSED).first_error
    assert f is not None and f.check == "ram.offset" and f.offset == rec
    assert f.idstr == "ram" and f.qemu is not None
    assert f.qemu.splitlines()[0] == "Illegal RAM offset 1000000"


def test_self_validation_checks_the_streams_own_descriptions(tmp_path: Path) -> None:
    """Without a destination the stream is checked against itself: a body longer than its
    vmdesc entry says fails where QEMU would."""
    _, _, footer = section(PAUSED, "pcspk")
    m = mutate(tmp_path, PAUSED, [["insert", footer, "00"]])
    report = validate(m)
    f = report.first_error
    assert f is not None and f.scope == "own" and f.check == "section.footer"
    assert f.qemu is not None and f.qemu.startswith("Missing section footer for pcspk")


def test_machine_option_overrides_the_destination(tmp_path: Path) -> None:
    assert validate(PAUSED, reference=PAUSED, machine="pc-i440fx-7.2").loads
    f = validate(PAUSED, reference=PAUSED, machine="pc-i440fx-8.0").first_error
    assert f is not None and f.check == "config.machine"
    assert f.qemu is not None and "local is 'pc-i440fx-8.0'" in f.qemu


def test_json_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, voff, _ = section(PAUSED, "apic")
    m = mutate(tmp_path, PAUSED, [["replace", voff, "00000002"]])
    rc, out, _ = run(["validate", str(m), "--reference", str(PAUSED), "--json"], capsys)
    assert rc == 1
    doc = json.loads(out)
    assert doc["loads"] is False and doc["exit_code"] == 1
    f = next(x for x in doc["findings"] if x["severity"] == "error")
    assert f["check"] == "section.version" and f["idstr"] == "apic"
    assert f["qemu_error"].startswith("apic: incoming version_id 2 is too old")
    for key in ("offset", "section", "field", "message", "scope", "section_id"):
        assert key in f


def test_text_report_lists_findings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    start, _, _ = section(PAUSED, "hpet")
    m = mutate(tmp_path, PAUSED, [["replace", start + 6, b"hpeT".hex()]])
    rc, out, _ = run(["validate", str(m), "--reference", str(PAUSED)], capsys)
    assert rc == 1
    assert "would NOT load" in out
    assert "Unknown savevm section or instance 'hpeT' 0" in out
    rc, out, _ = run(["validate", str(PAUSED), "--reference", str(PAUSED)], capsys)
    assert rc == 0 and "would load" in out


# -- bad inputs: exit 2, one line, no traceback ----------------------------------------


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("migstream: error: ")
    return lines[0]


def test_not_a_stream(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not a migration stream at all")
    rc, out, err = run(["validate", str(junk)], capsys)
    assert rc == 2 and out == ""
    assert "not a migration stream" in one_line(err)


def test_truncated_stream(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cut = tmp_path / "cut.bin"
    cut.write_bytes(PAUSED.read_bytes()[:300_000])
    rc, out, err = run(["validate", str(cut), "--reference", str(PAUSED)], capsys)
    assert rc == 2 and out == ""
    line = one_line(err)
    assert "offset 300000" in line and "'ram'" in line
    rc, out, err = run(["validate", str(cut), "--json"], capsys)
    assert rc == 2 and json.loads(out)["unreadable"] is True
    one_line(err)


def test_empty_and_missing_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    rc, _, err = run(["validate", str(empty)], capsys)
    assert rc == 2
    one_line(err)
    rc, _, err = run(["validate", str(tmp_path / "missing.bin")], capsys)
    assert rc == 2 and "no such file" in one_line(err)


@pytest.mark.parametrize("content", [b"{not json", b'{"a": 1}', b"[1, 2]", b"\xff\xfe\x00"],
                         ids=["not-json", "no-vmschkmachine", "list", "binary"])
def test_wrong_target_json(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                           content: bytes) -> None:
    bad = tmp_path / "dump.json"
    bad.write_bytes(content)
    rc, out, err = run(["validate", str(PAUSED), "--target", str(bad)], capsys)
    assert rc == 2 and out == ""
    assert str(bad) in one_line(err)


def test_stream_given_as_target_and_junk_as_reference(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    rc, _, err = run(["validate", str(PAUSED), "--target", str(PAUSED)], capsys)
    assert rc == 2 and "use --reference" in one_line(err)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    rc, _, err = run(["validate", str(PAUSED), "--reference", str(junk)], capsys)
    assert rc == 2 and "reference" in one_line(err)


# -- a real -dump-vmstate file --------------------------------------------------------


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    qemu = require_qemu()
    out: dict[str, Path] = {}
    d = tmp_path_factory.mktemp("dumps")
    for machine in ("pc", "q35"):
        out[machine] = d / f"{machine}.json"
        subprocess.run([qemu, "-machine", machine, "-dump-vmstate", str(out[machine])],
                       check=True, capture_output=True, timeout=60)
    return out


@pytest.mark.qemu
def test_target_dump_vmstate(dumps: dict[str, Path], tmp_path: Path) -> None:
    assert validate(PAUSED, target=dumps["pc"]).loads
    assert validate(Q35, target=dumps["q35"]).loads
    f = validate(Q35, target=dumps["pc"]).first_error
    assert f is not None and f.check == "config.machine"
    _, voff, _ = section(Q35, "0000:00:1f.0/ICH9LPC")
    m = mutate(tmp_path, Q35, [["replace", voff, "00000002"]])
    f = validate(m, target=dumps["q35"]).first_error
    assert f is not None and f.check == "section.version"
    assert f.qemu is not None
    assert f.qemu.startswith("savevm: unsupported version 2 for '0000:00:1f.0/ICH9LPC' v1")
    _, voff, _ = section(Q35, "hpet")
    m = mutate(tmp_path, Q35, [["replace", voff, "00000003"]])
    report = validate(m, target=dumps["q35"], reference=Q35)
    assert report.first_error is not None and report.first_error.idstr == "hpet"
