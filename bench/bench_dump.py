"""Benchmark: `migstream dump --json` against QEMU 7.2 analyze-migration.py `-d state`.

Builds (once, cached in bench/out/) the stream of a paused pc guest whose 2 GiB of RAM all carry
data: QEMU 7.2 boots with its RAM backed by a file of random bytes and migrates to a file. Then
it times both tools alternately on that stream, records each run's peak RSS, and prints both
times and the ratio. The targets (issue 2): ratio >= 3 and our peak RSS < 200 MB.

Usage: python bench/bench_dump.py [--ram-mib 2048] [--runs 3] [--script PATH]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def qmp(sock_path: str) -> tuple[socket.socket, object]:
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock_path)
            f = s.makefile("rw")
            f.readline()
            return s, f
        except OSError:
            time.sleep(0.05)
    raise SystemExit("QMP socket never came up")


def qmp_cmd(f: object, name: str, **args: object) -> dict[str, object]:
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n")  # type: ignore[attr-defined]
    f.flush()  # type: ignore[attr-defined]
    while True:
        r: dict[str, object] = json.loads(f.readline())  # type: ignore[attr-defined]
        if "return" in r or "error" in r:
            return r


def build_stream(ram_mib: int) -> Path:
    stream = OUT / f"filled-{ram_mib}m.bin"
    if stream.exists():
        return stream
    OUT.mkdir(parents=True, exist_ok=True)
    image = OUT / f"ram-{ram_mib}m.img"
    print(f"building {image} ({ram_mib} MiB of random data)", file=sys.stderr)
    with open(image, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(ram_mib):
            f.write(chunk[i % 4096:] + chunk[: i % 4096])
    sock = str(OUT / "qmp.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-S", "-nodefaults",
        "-machine", "pc,memory-backend=mem", "-m", f"{ram_mib}M",
        "-object", f"memory-backend-file,id=mem,size={ram_mib}M,mem-path={image},share=off",
        "-qmp", f"unix:{sock},server=on,wait=off",
    ])
    try:
        _, f = qmp(sock)
        qmp_cmd(f, "qmp_capabilities")
        tmp = stream.with_suffix(".part")
        qmp_cmd(f, "migrate", uri=f"exec:cat > {tmp}")
        while True:
            st = qmp_cmd(f, "query-migrate")["return"]
            status = st.get("status")  # type: ignore[union-attr]
            if status in ("completed", "failed"):
                break
            time.sleep(0.5)
        if status != "completed":
            raise SystemExit(f"migration {status}")
        os.replace(tmp, stream)
        qmp_cmd(f, "quit")
    finally:
        qemu.wait(timeout=60)
        image.unlink(missing_ok=True)
    return stream


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child run, output discarded."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed")
    return dt, ru.ru_maxrss / 1024


def find_script() -> str | None:
    hits = sorted(glob.glob("/opt/qemu-7.2*/scripts/analyze-migration.py"))
    return hits[0] if hits else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ram-mib", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--script", default=find_script(),
                    help="QEMU 7.2 scripts/analyze-migration.py (apt-get source qemu)")
    args = ap.parse_args()
    if not args.script:
        raise SystemExit("analyze-migration.py not found: apt-get source qemu in /opt")
    stream = build_stream(args.ram_mib)
    print(f"stream {stream} ({stream.stat().st_size / 1e9:.2f} GB)")
    ours_cmd = [sys.executable, "-m", "analyzer.cli", "dump", "--json", str(stream)]
    theirs_cmd = [sys.executable, args.script, "-d", "state", "-f", str(stream)]
    ours, theirs, rss = [], [], []
    for _ in range(args.runs):
        t, m = timed(theirs_cmd)
        theirs.append(t)
        t, m = timed(ours_cmd)
        ours.append(t)
        rss.append(m)
    o, t = min(ours), min(theirs)
    print(f"analyze-migration.py -d state: best {t:.3f} s  runs {[round(x, 3) for x in theirs]}")
    print(f"migstream dump --json:         best {o:.3f} s  runs {[round(x, 3) for x in ours]}")
    print(f"speed ratio (analyze-migration / migstream): {t / o:.2f}x  (target >= 3)")
    print(f"migstream peak RSS: {max(rss):.1f} MB  (target < 200 MB)")
    return 0 if t / o >= 3 and max(rss) < 200 else 1


if __name__ == "__main__":
    sys.exit(main())
