"""Record what QEMU 7.2's own stream analyzer makes of our fixture streams.

For every fixture stream (default: all ``fixtures/captures/*.bin``) this runs QEMU 7.2's
``scripts/analyze-migration.py -d state -f FILE`` -- taken from the Debian source package, which
this project never copies -- and stores:

* its standard output, unchanged, as ``tests/data/compat/<fixture-stem>.state.json`` when it
  exits 0;
* otherwise the last line of its error output, as ``<fixture-stem>: <line>`` in
  ``tests/data/compat/unreadable.json`` (sorted keys).

The analyzer is looked for under ``/opt/qemu-7.2*/scripts/`` unless ``--script`` names it. Get it
with ``apt-get source qemu`` run in ``/opt`` (it needs a ``deb-src`` entry for bookworm).

The output depends only on the fixtures and the analyzer: each run is started in the fixture's
own directory with the bare file name, so no machine-specific path reaches the stored messages,
and files are rewritten only when their content changes. With the default fixture set, data for
fixtures that no longer exist is removed.

Usage: ``python tests/tools/make_compat_data.py [FIXTURE.bin ...] [--script PATH] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FIXTURES = REPO / "fixtures" / "captures"
DEFAULT_OUT = REPO / "tests" / "data" / "compat"
UNREADABLE = "unreadable.json"
STATE_SUFFIX = ".state.json"
SCRIPT_GLOB = "qemu-7.2*/scripts/analyze-migration.py"

HOW_TO_GET = """\
QEMU 7.2's scripts/analyze-migration.py was not found under /opt/qemu-7.2*/scripts/.
It ships in Debian bookworm's qemu source package. To get it (as root):

  1. add a deb-src entry, e.g. /etc/apt/sources.list.d/debian-src.sources containing
       Types: deb-src
       URIs: http://deb.debian.org/debian
       Suites: bookworm bookworm-updates
       Components: main
       Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
  2. apt-get update
  3. cd /opt && apt-get source qemu      (unpacks /opt/qemu-7.2+dfsg/; nothing to build)

or pass its location with --script PATH."""


@dataclass(frozen=True)
class Outcome:
    """Result of running the analyzer on one fixture."""

    stem: str
    state: str | None  # analyzer stdout when it succeeded
    error: str | None  # last error line when it failed


def find_script(explicit: Path | None, roots: list[Path] | None = None) -> Path | None:
    """The analyzer to use: ``explicit`` if given (and present), else the newest under /opt."""
    if explicit is not None:
        return explicit if explicit.is_file() else None
    found: list[Path] = []
    for root in roots if roots is not None else [Path("/opt")]:
        found.extend(p for p in root.glob(SCRIPT_GLOB) if p.is_file())
    return sorted(found)[-1] if found else None


def last_error_line(stderr: str, returncode: int) -> str:
    """The last non-blank line of the error output (a traceback's exception line)."""
    for line in reversed(stderr.splitlines()):
        if line.strip():
            return line.strip()
    return f"exit status {returncode} with no error output"


def run_analyzer(script: Path, fixture: Path, python: str, timeout: float) -> Outcome:
    """Run ``analyze-migration.py -d state -f`` on one fixture."""
    stem = fixture.stem
    env = dict(os.environ, PYTHONHASHSEED="0", LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    try:
        proc = subprocess.run(
            [python, str(script.resolve()), "-d", "state", "-f", fixture.name],
            cwd=fixture.resolve().parent,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="backslashreplace",
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(stem, None, f"timed out after {timeout:g} s")
    if proc.returncode == 0:
        return Outcome(stem, proc.stdout, None)
    return Outcome(stem, None, last_error_line(proc.stderr, proc.returncode))


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def store(outcomes: list[Outcome], out: Path, keep: set[str] | None) -> dict[str, str]:
    """Write the state files and update ``unreadable.json``; return the unreadable map.

    ``keep``: when given, data for stems outside it (vanished fixtures) is deleted.
    """
    out.mkdir(parents=True, exist_ok=True)
    unreadable_path = out / UNREADABLE
    unreadable: dict[str, str] = {}
    if unreadable_path.is_file():
        loaded = json.loads(unreadable_path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            unreadable = {str(k): str(v) for k, v in loaded.items()}
    for o in outcomes:
        state_path = out / f"{o.stem}{STATE_SUFFIX}"
        if o.state is not None:
            unreadable.pop(o.stem, None)
            _write_if_changed(state_path, o.state)
        else:
            unreadable[o.stem] = o.error or "unknown error"
            state_path.unlink(missing_ok=True)
    if keep is not None:
        for stem in [s for s in unreadable if s not in keep]:
            del unreadable[stem]
        for p in out.glob(f"*{STATE_SUFFIX}"):
            if p.name.removesuffix(STATE_SUFFIX) not in keep:
                p.unlink()
    text = json.dumps(dict(sorted(unreadable.items())), indent=2, sort_keys=True) + "\n"
    _write_if_changed(unreadable_path, text)
    return unreadable


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "fixtures",
        nargs="*",
        type=Path,
        help=f"stream files (default: {DEFAULT_FIXTURES.relative_to(REPO)}/*.bin)",
    )
    ap.add_argument("--script", type=Path, help="path of QEMU 7.2 analyze-migration.py")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the analyzer")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per fixture")
    args = ap.parse_args(argv)

    script = find_script(args.script)
    if script is None:
        if args.script is not None:
            print(f"error: {args.script} does not exist", file=sys.stderr)
        print(HOW_TO_GET, file=sys.stderr)
        return 2

    default_set = not args.fixtures
    fixtures: list[Path] = (
        sorted(DEFAULT_FIXTURES.glob("*.bin")) if default_set else list(args.fixtures)
    )
    missing = [f for f in fixtures if not f.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    fixtures.sort(key=lambda p: p.name)

    print(f"analyzer: {script}")
    outcomes: list[Outcome] = []
    for fx in fixtures:
        o = run_analyzer(script, fx, args.python, args.timeout)
        outcomes.append(o)
        print(f"  {o.stem}: {'ok' if o.state is not None else 'unreadable: ' + str(o.error)}")
    keep = {o.stem for o in outcomes} if default_set else None
    unreadable = store(outcomes, args.out, keep)
    ok = sum(o.state is not None for o in outcomes)
    print(f"{ok} read, {len(outcomes) - ok} unreadable; {len(unreadable)} in {UNREADABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
