"""Benchmark: `migstream browse` on the stream of a guest with N MiB of RAM (default 4096).

Builds the stream once with real QEMU exactly as bench_dump.py does (a paused pc guest whose RAM
is a memory-backend-file full of random bytes, migrated to a file; cached in bench/out/), then
starts the browser in a real terminal (tmux, 160x48) and polls the screen:

* first paint: from launching the process until the first screen is drawn (title, tree root,
  the first hex row); target < 1 s;
* full index: until the status bar no longer says "indexing" and shows the findings bullet;
* peak memory: VmHWM of the browser process (and its anonymous RSS), read from /proc just
  before quitting.

Usage: python bench/bench_browse.py [--ram-mib 4096] [--runs 3] [--cold]
(--cold drops the page cache before each run; needs root.)
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_dump import build_stream  # noqa: E402

log = logging.getLogger("bench_browse")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-t", session, "-p")


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[key] = int(rest.split()[0])
    return out


def one_run(stream: Path, cold: bool) -> tuple[float, float, dict[str, int]]:
    if cold:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    session = f"bench-browse-{os.getpid()}"
    cmd = f"exec {shlex.quote(sys.executable)} -m analyzer.cli browse {shlex.quote(str(stream))}"
    t0 = time.perf_counter()
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", "-c", str(ROOT),
         f"env TERM=xterm-256color sh -c {shlex.quote(cmd)}")
    tmux("set-option", "-t", session, "window-size", "manual")
    tmux("resize-window", "-t", session, "-x", "160", "-y", "48")
    try:
        pid = int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])
        first = full = None
        mem: dict[str, int] = {}
        while time.perf_counter() - t0 < 600:
            s = screen(session)
            now = time.perf_counter() - t0
            if first is None and stream.name in s and " 000000000 51 45 56 4d" in s:
                first = now
            lines = s.rstrip().splitlines()
            status = lines[-2] if len(lines) >= 2 else ""
            indexed = "▼ " + stream.name + "  " in s and "indexing" not in s
            if first is not None and indexed and "●" in status:
                full = now
                mem = proc_status(pid)
                break
            time.sleep(0.01)
        if first is None or full is None:
            raise SystemExit(f"the browser never finished; last screen:\n{screen(session)}")
        tmux("send-keys", "-t", session, "q")
        return first, full, mem
    finally:
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ram-mib", type=int, default=4096)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each run")
    args = ap.parse_args()
    stream = build_stream(args.ram_mib)
    log.info("stream %s (%.2f GB)", stream, stream.stat().st_size / 1e9)
    firsts, fulls, peaks, anons = [], [], [], []
    for _ in range(args.runs):
        first, full, mem = one_run(stream, args.cold)
        firsts.append(first)
        fulls.append(full)
        peaks.append(mem.get("VmHWM", 0) / 1024)
        anons.append(mem.get("RssAnon", 0) / 1024)
        log.info("run: first paint %.3f s, full index %.3f s, peak RSS %.1f MB "
                 "(anonymous %.1f MB)", first, full, peaks[-1], anons[-1])
    cache = "cold" if args.cold else "warm"
    log.info("time to first paint (%s cache): best %.3f s  runs %s  (target < 1 s)", cache,
             min(firsts), [round(x, 3) for x in firsts])
    log.info("time to full index  (%s cache): best %.3f s  runs %s", cache, min(fulls),
             [round(x, 3) for x in fulls])
    log.info("peak RSS (VmHWM): max %.1f MB; anonymous RSS at full index: max %.1f MB",
             max(peaks), max(anons))
    return 0 if min(firsts) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
