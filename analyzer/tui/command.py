"""The `migstream browse FILE [FILE2] [--desc F]` subcommand (textual is imported only here,
inside the command, so other subcommands start without it)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from formats.errors import UsageError


def cmd_browse(args: argparse.Namespace) -> int:
    from analyzer.cli import load_descriptions

    paths = [args.file] + ([args.file2] if args.file2 else [])
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(f"{p}: no such file")
        if os.path.isdir(p):
            raise UsageError(f"{p} is a directory")
    descriptions = load_descriptions(args.desc) if args.desc else None
    from analyzer.tui.app import run

    return run(paths, descriptions)


def register_cli(add: Callable[[str, Callable[[argparse.Namespace], int], str], Any]) -> None:
    sp = add("browse", cmd_browse,
             "browse a stream in a terminal UI (tree, hex, details); two files: diff mode")
    sp.add_argument("file")
    sp.add_argument("file2", nargs="?", help="a second stream: show both and their differences")
    sp.add_argument("--desc", metavar="FILE",
                    help="vmstate descriptions from this stream's VMDESCRIPTION or a vmdesc "
                         "JSON file (for streams without one)")
