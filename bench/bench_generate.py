"""Benchmark: `savevm.generate` throughput against QEMU 7.2's own migrate-to-file.

1. Capture a paused `-machine pc -m 1024 -nodefaults` guest as the template (real QEMU).
2. Generate a stream of that machine whose pc.ram is 1 GiB of random (non-zero) data, with the
   bandwidth cap lifted (timed: ours).
3. Load our stream into QEMU 7.2 (-incoming defer), lift max-bandwidth, migrate it out to a
   file with `exec:cat > FILE` (timed from `migrate` to `completed`: QEMU's).
Prints both times, both throughputs and their ratio (target: ours >= 0.5 x QEMU's).

Usage: python bench/bench_generate.py [--ram-mib 1024]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_dump import qmp, qmp_cmd  # noqa: E402


def qemu_args(ram_mib: int) -> list[str]:
    return ["-machine", "pc", "-m", str(ram_mib), "-nodefaults"]


def run_qemu(extra: list[str], sock: str) -> subprocess.Popen[bytes]:
    if os.path.exists(sock):
        os.unlink(sock)
    return subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-display", "none",
                             "-qmp", f"unix:{sock},server=on,wait=off", *extra])


def migrate_out(f: object, path: str) -> float:
    qmp_cmd(f, "migrate-set-parameters", **{"max-bandwidth": 1 << 40})
    t0 = time.perf_counter()
    qmp_cmd(f, "migrate", uri=f"exec:cat > {path}")
    while True:
        st = qmp_cmd(f, "query-migrate")["return"]
        if st.get("status") in ("completed", "failed"):  # type: ignore[union-attr]
            break
        time.sleep(0.02)
    dt = time.perf_counter() - t0
    if st.get("status") != "completed":  # type: ignore[union-attr]
        raise SystemExit(f"QEMU migration failed: {st}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ram-mib", type=int, default=1024)
    args = ap.parse_args()
    from analyzer.model import Stream
    from savevm.migration import MigrationParameters
    from savevm.profiles import GenerateOptions, generate, machine_from_stream

    with tempfile.TemporaryDirectory(prefix="migstream-bench-") as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        template = os.path.join(tmp, "template.bin")
        q = run_qemu([*qemu_args(args.ram_mib), "-S"], sock)
        _, f = qmp(sock)
        qmp_cmd(f, "qmp_capabilities")
        migrate_out(f, template)
        qmp_cmd(f, "quit")
        q.wait(timeout=60)

        chunk = random.Random(0).randbytes(1 << 20)
        image = b"".join(chunk[i % 4096 :] + chunk[: i % 4096] for i in range(args.ram_mib))
        with Stream.open(template) as s:
            machine = machine_from_stream(s, with_ram=False)
        ours_path = os.path.join(tmp, "ours.bin")
        opts = GenerateOptions(ram_image=image,
                               params=MigrationParameters(max_bandwidth=1 << 40))
        t0 = time.perf_counter()
        generate(machine, ours_path, opts)
        ours = time.perf_counter() - t0
        size = os.path.getsize(ours_path)

        q = run_qemu([*qemu_args(args.ram_mib), "-S", "-incoming", "defer"], sock)
        _, f = qmp(sock)
        qmp_cmd(f, "qmp_capabilities")
        qmp_cmd(f, "migrate-incoming", uri=f"exec:cat {ours_path}")
        while qmp_cmd(f, "query-migrate")["return"].get("status") not in (  # type: ignore[union-attr]
                "completed", "failed"):
            time.sleep(0.05)
        theirs_path = os.path.join(tmp, "qemu.bin")
        theirs = migrate_out(f, theirs_path)
        qmp_cmd(f, "quit")
        q.wait(timeout=60)
        qsize = os.path.getsize(theirs_path)

    print(f"guest RAM {args.ram_mib} MiB of random data")
    print(f"migstream generate:    {ours:.3f} s  {size / ours / 1e6:8.1f} MB/s  ({size:,} bytes)")
    print(f"QEMU 7.2 migrate-to-file: {theirs:.3f} s  {qsize / theirs / 1e6:8.1f} MB/s  "
          f"({qsize:,} bytes)")
    ratio = (size / ours) / (qsize / theirs)
    print(f"throughput ratio (migstream / QEMU): {ratio:.2f}  (target >= 0.5)")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
