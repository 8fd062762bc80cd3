"""The `migstream` command: one entry point for every subcommand.

Only this module prints. Exit codes: 0 ok, 1 a check found a difference or a problem
(validate, diff), 2 unreadable input or a usage error. A stream that fails to decode still
prints everything decoded before the failure, then one line naming the offset and section.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from analyzer.model import Stream
from analyzer.vmdesc import VmDescription, parse_vmdesc
from formats.errors import DescriptionError, MigstreamError, UsageError

log = logging.getLogger("migstream")

PLUGIN_MODULES = ("analyzer.validate", "analyzer.diff", "analyzer.tui.command", "savevm.cli")
"""Modules that add subcommands: each has register_cli(add), where add(name, func, help)
returns an argparse subparser whose func(args) returns the exit code. They must import heavy
dependencies (textual, ...) inside the command function: every CLI start imports them."""

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        print(f"migstream: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


class Progress:
    """A one-line progress bar on stderr, shown only on a terminal and for slow work."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        if not self.shown and now - self.start < 0.5:
            return
        self.last = now
        self.shown = True
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}%")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def load_descriptions(path: str) -> VmDescription:
    """Descriptions from a stream with a VMDESCRIPTION, or from a vmdesc JSON file."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == b"QEVM":
        with Stream.open(path) as s:
            if s.vmdesc is None or s.vmdesc_source != "stream":
                raise UsageError(f"{path} has no VMDESCRIPTION to take descriptions from")
            return s.vmdesc
    try:
        with open(path, encoding="utf-8") as f:
            return parse_vmdesc(f.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read descriptions from {path}: {exc}") from None
    except DescriptionError as exc:
        raise UsageError(f"{path}: {exc}") from None


def open_stream(path: str, desc: str | None, label: str = "indexing") -> Stream:
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory")
    descriptions = load_descriptions(desc) if desc else None
    progress = Progress(label, os.path.getsize(path) > (64 << 20))
    try:
        return Stream.open(path, descriptions, progress)
    finally:
        progress.close()


def _finish(stream: Stream) -> int:
    if stream.errors:
        print(f"migstream: error: {stream.errors[0]}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from analyzer.report import info_text

    with open_stream(args.file, args.desc) as stream:
        print(info_text(stream, show_sections=not args.brief))
        return _finish(stream)


def cmd_dump(args: argparse.Namespace) -> int:
    from analyzer.compat import compat_json
    from analyzer.report import dump_dict

    with open_stream(args.file, args.desc) as stream:
        if args.compat:
            print(compat_json(stream))
        else:
            json.dump(dump_dict(stream, records=args.records), sys.stdout,
                      indent=None if args.compact else 1)
            sys.stdout.write("\n")
        return _finish(stream)


def cmd_extract(args: argparse.Namespace) -> int:
    from analyzer.ram import extract

    with open_stream(args.file, args.desc) as stream:
        if stream.errors:
            print(f"migstream: error: {stream.errors[0]}", file=sys.stderr)
            print("migstream: nothing extracted: the stream does not decode completely",
                  file=sys.stderr)
            return EXIT_ERROR
        progress = Progress("extracting", len(stream.ram) > 100_000)
        try:
            files = extract(stream, args.output, progress)
        finally:
            progress.close()
        for name in files:
            print(name)
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="migstream",
        description="Inspect, check and generate QEMU live-migration (savevm) streams.",
    )
    p.add_argument("--debug", action="store_true", help="log details (and tracebacks)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> Any:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        return sp

    desc_help = ("take vmstate descriptions from this stream's VMDESCRIPTION or a vmdesc JSON "
                 "file (for streams without one: postcopy, suppress-vmdesc)")
    sp = add("info", cmd_info, "summarise a stream: machine, phases, sections, RAM")
    sp.add_argument("file")
    sp.add_argument("--brief", action="store_true", help="omit the item table")
    sp.add_argument("--desc", metavar="FILE", help=desc_help)

    sp = add("dump", cmd_dump, "decode a stream to JSON with byte offsets")
    sp.add_argument("file")
    mode = sp.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="full decode with offsets (default)")
    mode.add_argument("--compat", action="store_true",
                      help="JSON equal to QEMU 7.2 scripts/analyze-migration.py -d state")
    sp.add_argument("--records", action="store_true", help="list every RAM record")
    sp.add_argument("--compact", action="store_true", help="no indentation")
    sp.add_argument("--desc", metavar="FILE", help=desc_help)

    for modname in PLUGIN_MODULES:
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (modname + ".").startswith(exc.name + "."):
                continue
            raise
        module.register_cli(add)

    sp = add("extract", cmd_extract,
             "write one raw image per RAM block (named like analyze-migration -x)")
    sp.add_argument("file")
    sp.add_argument("-o", "--output", required=True, metavar="DIR")
    sp.add_argument("--desc", metavar="FILE", help=desc_help)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="migstream: %(levelname)s: %(name)s: %(message)s",
    )
    try:
        rc: int = args.func(args)
        return rc
    except MigstreamError as exc:
        print(f"migstream: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        print(f"migstream: error: internal error ({type(exc).__name__}: {exc}); "
              "rerun with --debug for details", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
