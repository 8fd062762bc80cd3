"""Build analyzer/qemu72_profile_data.py: what QEMU 7.2's loader knows about each vmsd.

`migstream validate` needs three facts the streams themselves never carry: a vmsd's minimum
version, which of its fields are gated by a version (so a lower incoming version reads fewer
bytes), and the full list of subsections it knows. QEMU 7.2 prints them for every device class
with ``qemu-system-x86_64 -dump-vmstate FILE``; this script runs that, keeps only those facts, and
adds the entries the dump never contains (non-device registrations: "timer", "cpu",
"cpu_common", "apic", "PCIBUS", "ide", "i2c_bus", "globalstate", "acpi_build", the cpu
subsections, "configuration"), which were read from the QEMU 7.2 source (file named per entry).

Usage: ``python tests/tools/make_vmstate_profile.py [--qemu BINARY]``. The output depends only on
the QEMU binary; rerun it when the installed QEMU changes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "analyzer" / "qemu72_profile_data.py"

# Facts read from the QEMU 7.2 source for vmsds that -dump-vmstate does not print.
# name: (version_id, minimum_version_id, {field: [[version_id, has field_exists], ...]},
#        subsections, source file)
_CPU_SUBSECTIONS = [
    "cpu/exception_info", "cpu/steal_time_msr", "cpu/async_pf_msr", "cpu/async_pf_int_msr",
    "cpu/async_pv_eoi_msr", "cpu/poll_control_msr", "cpu/fpop_ip_dp", "cpu/msr_tsc_adjust",
    "cpu/msr_smi_count", "cpu/msr_tscdeadline", "cpu/msr_ia32_misc_enable",
    "cpu/msr_ia32_feature_control", "cpu/msr_architectural_pmu", "cpu/mpx",
    "cpu/msr_hyperv_hypercall", "cpu/msr_hyperv_vapic", "cpu/msr_hyperv_time",
    "cpu/msr_hyperv_crash", "cpu/msr_hyperv_runtime", "cpu/msr_hyperv_synic",
    "cpu/msr_hyperv_stimer", "cpu/msr_hyperv_reenlightenment", "cpu/avx512", "cpu/xss",
    "cpu/umwait", "cpu/pkru", "cpu/pkrs", "cpu/tsc_khz", "cpu/nested_state", "cpu/mcg_ext_ctl",
    "cpu/spec_ctrl", "cpu/amd_tsc_scale_msr", "cpu/intel_pt", "cpu/virt_ssbd", "cpu/svn_npt",
    "cpu/svm_guest", "cpu/efer32", "cpu/msr_tsx_ctrl", "cpu/intel_sgx", "cpu/pdptrs",
    "cpu/msr_xfd", "cpu/intel_amx_xtile", "cpu/arch_lbr", "cpu/triple_fault",
]
SOURCE_FACTS: dict[str, tuple[int, int, dict[str, list[list[Any]]], list[str], str]] = {
    "timer": (2, 1, {"cpu_clock_offset": [[2, False]]}, ["timer/icount"],
              "softmmu/cpu-timers.c"),
    "timer/icount": (1, 1, {}, ["timer/icount/warp_timer", "timer/icount/timer_adjust",
                                "timer/icount/shift"], "softmmu/cpu-timers.c"),
    "cpu": (12, 11, {"env.xcr0": [[12, False]], "env.xstate_bv": [[12, False]],
                     "env.xmm_regs": [[0, False], [12, False]]},
            _CPU_SUBSECTIONS, "target/i386/machine.c"),
    "cpu_common": (1, 1, {}, ["cpu_common/exception_index", "cpu_common/crash_occurred"],
                   "cpu.c"),
    "cpu_common/exception_index": (1, 1, {}, [], "cpu.c"),
    "cpu_common/crash_occurred": (1, 1, {}, [], "cpu.c"),
    "apic": (3, 3, {}, ["apic_sipi"], "hw/intc/apic_common.c"),
    "apic_sipi": (1, 1, {}, [], "hw/intc/apic_common.c"),
    "PCIBUS": (1, 1, {}, [], "hw/pci/pci.c"),
    "ide": (3, 0, {"bus": [[1, False]], "bus[0].ifs": [[3, False]], "bus[1].ifs": [[3, False]]},
            [], "hw/ide/pci.c"),
    "i2c_bus": (1, 1, {}, [], "hw/i2c/core.c"),
    "globalstate": (1, 1, {}, [], "migration/global_state.c"),
    "acpi_build": (1, 1, {}, [], "hw/i386/acpi-build.c"),
    "configuration": (1, 0, {}, ["configuration/target-page-bits", "configuration/capabilities",
                                 "configuration/uuid"], "migration/savevm.c"),
}
for _name in _CPU_SUBSECTIONS:
    SOURCE_FACTS.setdefault(_name, (1, 1, {}, [], "target/i386/machine.c"))


def _variant(vmsd: dict[str, Any]) -> dict[str, Any]:
    fields = [(f["field"], int(f["version_id"]), bool(f["field_exists"]))
              for f in vmsd.get("Fields", [])]
    gated: dict[str, list[list[Any]]] = {}
    for name, version, exists in fields:
        if version > 0 or exists:
            gated[name] = [[v, e] for n, v, e in fields if n == name]
    out: dict[str, Any] = {
        "v": int(vmsd["version_id"]),
        "min": int(vmsd["minimum_version_id"]),
        "fields": [name for name, _, _ in fields],
        "gated": gated,
    }
    if "Subsections" in vmsd:
        out["subs"] = [s["name"] for s in vmsd["Subsections"]]
    return out


def collect(dump: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """vmsd name -> distinct variants (different vmsds can share a name)."""
    out: dict[str, list[dict[str, Any]]] = {}

    def walk(vmsd: dict[str, Any]) -> None:
        v = _variant(vmsd)
        variants = out.setdefault(vmsd["name"], [])
        if v not in variants:
            variants.append(v)
        for f in vmsd.get("Fields", []):
            if "Description" in f:
                walk(f["Description"])
        for s in vmsd.get("Subsections", []):
            walk(s)

    for key, entry in dump.items():
        if key != "vmschkmachine":
            walk(entry["Description"])
    for name, (version, minimum, gated, subs, source) in SOURCE_FACTS.items():
        out.setdefault(name, []).append({
            "v": version, "min": minimum, "gated": gated, "subs": subs, "source": source,
        })
    for variants in out.values():
        if len(variants) == 1:
            variants[0].pop("fields", None)
    return dict(sorted(out.items()))


def render(profile: dict[str, list[dict[str, Any]]], qemu_version: str) -> str:
    lines = [
        '"""QEMU 7.2 x86_64 vmstate facts for `migstream validate` (GENERATED: do not edit).',
        "",
        "Made by tests/tools/make_vmstate_profile.py from `qemu-system-x86_64 -dump-vmstate`",
        f"({qemu_version}) plus facts read from the 7.2 source for non-device",
        "registrations. Per vmsd name, its variants: version (v), minimum version (min),",
        "version-gated or field_exists fields (gated: name -> [[version_id, field_exists], ...]",
        "per occurrence), known subsections (subs) and, where names collide, all field names.",
        '"""',
        "",
        "# ruff: noqa: E501",
        "",
        f"QEMU_VERSION = {json.dumps(qemu_version)}",
        "",
        "PROFILE_JSON = r'''{",
    ]
    items = list(profile.items())
    for i, (name, variants) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(name)}: {json.dumps(variants, separators=(',', ':'))}{sep}")
    lines.append("}'''")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dump.json"
        subprocess.run([args.qemu, "-machine", "pc", "-nodefaults", "-dump-vmstate", str(path)],
                       check=True, capture_output=True, timeout=60)
        dump = json.loads(path.read_text())
    version = subprocess.run([args.qemu, "--version"], check=True, capture_output=True,
                             text=True, timeout=30).stdout.splitlines()[0]
    args.out.write_text(render(collect(dump), version))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
