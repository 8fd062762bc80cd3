"""What the writer generates, real QEMU 7.2 loads: memory read back equals ours; guests resume.

Each test generates a stream (through the live driver: setup, iterate rounds under a bandwidth
cap with a seeded workload dirtying pages, completion), loads it into a fresh QEMU 7.2 with
`-incoming defer` + `migrate-incoming exec:cat`, and compares `pmemsave` sha256 of the
guest-physical ranges that map 1:1 onto pc.ram with the writer's final RAM.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest

from analyzer.model import Stream
from analyzer.ram import kind_counts
from savevm.migration import MigrationParameters, Workload
from savevm.profiles import GenerateOptions, generate, load_profile, machine_from_stream
from tests.conftest import CAPTURES, require_qemu

pytestmark = pytest.mark.qemu

MiB = 1 << 20


def _ranges(size: int) -> list[tuple[int, int]]:
    """pc.ram below the legacy VGA/ROM hole and above 1 MiB, where GPA == block offset."""
    return [(0, 0xA0000), (0x100000, size - 0x100000)]


def _load_and_compare(stream: Path, machine_args: list[str], ram: bytes,
                      capabilities: dict[str, bool] | None = None) -> None:
    from fixtures.kit.dest import load_stream
    from fixtures.kit.memory import MemRange

    ranges = [MemRange(gpa, size, "pc.ram", gpa) for gpa, size in _ranges(len(ram))]
    result = load_stream(stream, machine_args, capabilities=capabilities, ranges=ranges,
                         timeout=90)
    assert result.accepted, (result.status, result.stderr[-2000:])
    for gpa, size in _ranges(len(ram)):
        want = hashlib.sha256(ram[gpa : gpa + size]).hexdigest()
        assert result.range_sha256[gpa] == want, f"guest memory at {gpa:#x} differs"


@pytest.mark.parametrize("profile", ["pc-i440fx-7.2", "pc-q35-7.2"])
@pytest.mark.parametrize("mode", ["rounds", "xbzrle", "compress"])
def test_qemu_loads_generated_stream(profile: str, mode: str, tmp_path: Path) -> None:
    require_qemu()
    machine = load_profile(profile)
    image = random.Random(f"{profile}-{mode}").randbytes(16 * MiB)
    opts = GenerateOptions(
        ram_image=image,
        xbzrle=mode == "xbzrle",
        compress=mode == "compress",
        params=MigrationParameters(max_bandwidth=2 * MiB, downtime_limit=50),
        workload=Workload(seed=7, dirty_rate=150, working_set=256),
    )
    out = tmp_path / "gen.bin"
    stats = generate(machine, out, opts)
    assert stats.converged and stats.iterations >= 10
    with Stream.open(out) as s:
        assert s.errors == []
        counts = kind_counts(s)
        assert len([x for x in s.sections if x.type.short == "PART"]) == stats.iterations
    if mode == "xbzrle":
        assert counts.get("XBZRLE", 0) > 20, counts
    if mode == "compress":
        assert counts.get("COMPRESS_PAGE", 0) > 1000, counts
    ram = machine.block("pc.ram")
    assert ram is not None and ram.data is not None
    _load_and_compare(out, machine.qemu_args, bytes(ram.data),
                      {"compress": True} if mode == "compress" else None)


def _passes(log: str) -> list[int]:
    return [int(x, 16) for x in re.findall(r"pass ([0-9a-f]{8})", log)]


def test_guest_resumes_from_regenerated_stream(tmp_path: Path) -> None:
    """A running guest's capture, regenerated with a fresh schedule, runs on after `cont`."""
    require_qemu()
    import json

    from fixtures.kit.dest import load_stream
    from fixtures.kit.guest import build_guest

    capture = CAPTURES / "pc-live.bin"
    oracle = json.loads(capture.with_suffix(".oracle.json").read_text())
    before = _passes(oracle["source"]["serial_log_tail"])
    with Stream.open(capture) as s:
        machine = machine_from_stream(s)
        original_parts = s.iterations
    opts = GenerateOptions(params=MigrationParameters(max_bandwidth=1 * MiB),
                           workload=Workload(seed=11, dirty_rate=100, base=0x200000))
    out = tmp_path / "resume.bin"
    stats = generate(machine, out, opts)
    assert stats.iterations != original_parts
    args = [*oracle["source"]["machine_args_template"], *build_guest().drive_args()]
    result = load_stream(out, args, cont=True, run_seconds=3.0, serial=True, timeout=90)
    assert result.accepted, result.stderr[-2000:]
    after = _passes(result.serial_log or "")
    assert after, f"the guest printed nothing after cont: {result.serial_log!r}"
    assert after[0] > before[-1], (before[-3:], after[:3])
    assert after == sorted(after) and len(after) >= 2


def test_bad_profiles_fail_before_writing(tmp_path: Path) -> None:
    from savevm.profiles import ProfileError, builtin_profile_path

    text = builtin_profile_path("pc-i440fx-7.2").read_text()
    base = str(builtin_profile_path("pc-i440fx-7.2").parent / "pc-i440fx-7.2.base.bin.xz")
    assert Path(base).exists()
    cases = {
        "unknown field": (text.replace("    cpu_ticks_offset: 0\n",
                                       "    cpu_ticks_offset: 0\n    no_such_field: 1\n", 1),
                          r"'timer'.*unknown field 'no_such_field'"),
        "wrong type": (text.replace("    cpu_ticks_offset: 0\n",
                                    "    cpu_ticks_offset: hello\n", 1),
                       r"'timer'.*cpu_ticks_offset.*expected an integer"),
        "out of range": (text.replace("    halted: 0\n", "    halted: 4294967296\n", 1),
                         r"'cpu_common'.*halted.*out of range"),
        "wrong array length": (re.sub(r"(    env\.regs: \[)(\d+), ", r"\1", text, count=1),
                               r"'cpu'.*env\.regs.*expected a list of 16"),
        "unknown device": (text.replace("- idstr: timer\n", "- idstr: timerx\n", 1),
                           r"unknown device 'timerx'"),
    }
    out = tmp_path / "out.bin"
    out.write_bytes(b"previous contents")
    for name, (bad, pattern) in cases.items():
        assert bad != text, name
        p = tmp_path / f"{name.replace(' ', '-')}.yaml"
        p.write_text(bad.replace("base: pc-i440fx-7.2", "base: pc-i440fx-7.2"))
        with pytest.raises(ProfileError, match=pattern):
            generate(load_profile(p), out)
        assert out.read_bytes() == b"previous contents", name
        assert not list(tmp_path.glob(".migstream-*")), name


def test_generate_cli_reports_bad_profile_in_one_line(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from analyzer.cli import main
    from savevm.profiles import builtin_profile_path

    text = builtin_profile_path("pc-i440fx-7.2").read_text()
    p = tmp_path / "bad.yaml"
    p.write_text(text.replace("    halted: 0\n", "    halted: -5\n", 1))
    rc = main(["generate", "--profile", str(p), "-o", str(tmp_path / "o.bin")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "cpu_common" in err[0] and "halted" in err[0]
    assert not (tmp_path / "o.bin").exists()


def test_edited_profile_is_written_and_loads(tmp_path: Path) -> None:
    """Change a field value and drop a subsection in the YAML: the stream shows both, QEMU
    7.2 loads it (an omitted subsection is allowed by the loader)."""
    require_qemu()
    from fixtures.kit.dest import load_stream
    from savevm.profiles import builtin_profile_path

    text = builtin_profile_path("pc-i440fx-7.2").read_text()
    edited = text.replace("    cur_entry: 0\n", "    cur_entry: 25\n", 1)
    edited = edited.replace("    fw_cfg/dma:\n      dma_addr: 0\n", "", 1)
    assert edited.count("\n") == text.count("\n") - 2
    p = tmp_path / "edited.yaml"
    p.write_text(edited)
    machine = load_profile(p)
    out = tmp_path / "edited.bin"
    generate(machine, out)
    with Stream.open(out) as s:
        fw = next(x for x in s.sections if x.idstr == "fw_cfg")
        assert fw.nodes is not None
        names = {n.name: n for n in fw.nodes}
        assert names["cur_entry"].value == 25
        assert "fw_cfg/dma" not in names and "fw_cfg/acpi_mr" in names
    result = load_stream(out, machine.qemu_args, timeout=60)
    assert result.accepted, result.stderr[-1000:]
