"""`migstream generate`: write a migration stream from a template capture or a YAML profile."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from formats.errors import MigstreamError, UsageError

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?(/s)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """"32M", "512K", "1G", "4096" -> bytes (binary multiples)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 32M, 512K, 4096)")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def register_cli(add: Callable[[str, Callable[[argparse.Namespace], int], str], Any]) -> None:
    sp = add("generate", cmd_generate,
             "write a migration stream that QEMU 7.2 loads, from a template or a profile")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--template", metavar="STREAM",
                     help="a captured stream: its devices, values and RAM")
    src.add_argument("--profile", metavar="YAML",
                     help="a YAML profile, or a built-in one: pc-i440fx-7.2, pc-q35-7.2")
    sp.add_argument("-o", "--output", required=True, metavar="OUT")
    sp.add_argument("--ram-image", metavar="FILE", help="contents of pc.ram (zero padded)")
    sp.add_argument("--ram-block", default="pc.ram", help="the block --ram-image fills")
    sp.add_argument("--bandwidth", type=parse_size, default=128 << 20, metavar="BYTES/S",
                    help="max-bandwidth (default 128M)")
    sp.add_argument("--downtime-limit", type=int, default=300, metavar="MS")
    sp.add_argument("--dirty-rate", type=int, default=0, metavar="PAGES/S",
                    help="guest workload: pages dirtied per second (default 0: paused)")
    sp.add_argument("--working-set", type=int, default=1024, metavar="PAGES")
    sp.add_argument("--xbzrle", action="store_true", help="the xbzrle capability")
    sp.add_argument("--xbzrle-cache-size", type=parse_size, default=64 << 20)
    sp.add_argument("--compress", action="store_true", help="the compress capability")
    sp.add_argument("--compress-level", type=int, default=1, choices=range(0, 10))
    sp.add_argument("--max-iterations", type=int, default=1000)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--replay", action="store_true",
                    help="re-emit the template exactly as captured (same sections and records)")
    sp.add_argument("--desc", metavar="FILE",
                    help="descriptions for a template without VMDESCRIPTION")
    sp.add_argument("--write-profile", metavar="YAML",
                    help="also write the machine as an editable YAML profile")
    sp.add_argument("--json", action="store_true", help="print the statistics as JSON")


def _progress(enabled: bool) -> Callable[[Any], None]:
    start = time.monotonic()
    state = {"last": 0.0}

    def show(st: Any) -> None:
        if not enabled:
            return
        now = time.monotonic()
        if st.status != "completed" and now - state["last"] < 0.2:
            return
        state["last"] = now
        sys.stderr.write(f"\r{st.status:<9} iteration {st.iterations:>5}  "
                         f"{st.transferred / 1e6:9.1f} MB  remaining "
                         f"{st.remaining / 1e6:8.1f} MB  {now - start:5.1f}s")
        if st.status == "completed":
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def cmd_generate(args: argparse.Namespace) -> int:
    from analyzer.cli import load_descriptions, open_stream
    from savevm import profiles, template
    from savevm.migration import MigrationParameters, Workload

    if args.replay:
        if not args.template:
            raise UsageError("--replay needs --template")
        with open_stream(args.template, args.desc) as stream:
            _write_atomic(args.output, lambda fh: template.replay(stream, fh))
        print(f"wrote {args.output} ({os.path.getsize(args.output):,} bytes, replayed)")
        return 0
    try:
        if args.template:
            descriptions = load_descriptions(args.desc) if args.desc else None
            from analyzer.model import Stream

            with Stream.open(args.template, descriptions) as stream:
                machine = profiles.machine_from_stream(stream)
        else:
            machine = profiles.load_profile(args.profile)
        ram_image = None
        if args.ram_image:
            try:
                with open(args.ram_image, "rb") as fh:
                    ram_image = fh.read()
            except OSError as exc:
                raise UsageError(f"cannot read {args.ram_image}: {exc.strerror}") from None
        opts = profiles.GenerateOptions(
            ram_image=ram_image,
            ram_block=args.ram_block,
            xbzrle=args.xbzrle,
            compress=args.compress,
            params=MigrationParameters(
                max_bandwidth=args.bandwidth, downtime_limit=args.downtime_limit,
                xbzrle_cache_size=args.xbzrle_cache_size, compress_level=args.compress_level,
                max_iterations=args.max_iterations),
            workload=Workload(seed=args.seed, dirty_rate=args.dirty_rate,
                              working_set=args.working_set),
        )
        if args.write_profile:
            text = profiles.profile_text(machine, machine.base)
            _write_atomic(args.write_profile, lambda fh: fh.write(text.encode()))
        stats = profiles.generate(machine, args.output, opts,
                                  _progress(sys.stderr.isatty() and not args.json))
    except profiles.ProfileError as exc:
        raise MigstreamError(str(exc)) from None
    if args.json:
        print(json.dumps(stats.as_dict(), indent=1))
    else:
        print(f"wrote {args.output}: {os.path.getsize(args.output):,} bytes, "
              f"{stats.iterations} iterations, {stats.dirty_sync_count} dirty syncs, "
              f"{stats.normal:,} normal pages, {stats.duplicate:,} zero pages, "
              f"{stats.pages_dirtied:,} pages dirtied by the workload"
              + (f", xbzrle {stats.xbzrle_cache}" if stats.xbzrle_cache else "")
              + (f", compressed {stats.compression}" if stats.compression else "")
              + ("" if stats.converged else "; DID NOT CONVERGE (completed at max-iterations)"))
    return 0


def _write_atomic(path: str, write: Callable[[Any], Any]) -> None:
    from analyzer.output import atomic_output

    with atomic_output(path) as fh:
        write(fh)
