"""`migstream validate`: would a QEMU 7.2 destination load this stream, and if not, why?

Three layers of checks, each reported as `Finding`s with a severity, byte offset, section,
field path, a plain explanation and the error QEMU would print:

* structure: what the stream model (analyzer.model) finds while indexing it (framing, footers,
  commands, RAM records, EOF, the VMDESCRIPTION and whether it matches the sections written);
* own descriptions: the loader replayed (analyzer.loadsim) against a destination built from the
  stream itself, so every device body must consume exactly what its own vmdesc entry says and
  every RAM page must fit its own block list;
* destination: the loader replayed against the destination the user names: ``--reference``, a
  stream captured on the destination configuration (its device set, versions, `equal` and
  `int32 le` values, RAM block sizes, configuration), and/or ``--target``, a QEMU
  ``-dump-vmstate`` file (machine type, vmsd versions, minimum versions, version-gated fields,
  known subsections). Without ``--target`` the QEMU 7.2 facts shipped with migstream are used.

The verdict is the destination layer's (the own-description layer's when no destination is
named): exit 0 loads, 1 does not, 2 the input is unreadable (not a stream, or it ends early).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from analyzer.loadsim import Destination, Finding, Simulator, simulate
from analyzer.model import Stream
from analyzer.qemu_profile import Profile, builtin_profile, parse_dump_vmstate
from analyzer.report import painter, use_color
from formats.errors import DescriptionError, MigstreamError, TruncatedStreamError, UsageError

__all__ = ["Finding", "Report", "load_target", "register_cli", "validate"]

EXIT_LOADS = 0
EXIT_REJECTED = 1
EXIT_UNREADABLE = 2

StreamArg = str | os.PathLike[str] | Stream


@dataclass
class Report:
    """The outcome of `validate` for one stream."""

    path: str
    destination: str
    loads: bool
    unreadable: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.unreadable:
            return EXIT_UNREADABLE
        return EXIT_LOADS if self.loads else EXIT_REJECTED

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def first_error(self) -> Finding | None:
        """The check the destination fails (QEMU stops at the first one)."""
        for f in self.findings:
            if f.severity == "error" and f.scope == "destination":
                return f
        errors = self.errors
        return errors[0] if errors else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "destination": self.destination,
            "loads": self.loads,
            "unreadable": self.unreadable,
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "summary": {sev: sum(1 for f in self.findings if f.severity == sev)
                        for sev in ("error", "warning", "info")},
        }

    def one_line(self) -> str:
        """The single-line message for an unreadable input."""
        f = self.first_error
        if f is None:
            return f"{self.path}: unreadable"
        where = f"at offset {f.offset} (0x{f.offset:x})" if f.offset is not None else ""
        if f.section:
            where += f" in section {f.section}"
        if f.field:
            where += f", field {f.field}"
        return f"{self.path}: {where}: {f.message}" if where else f"{self.path}: {f.message}"

    def text(self, color: bool = False) -> str:
        paint = painter(color)
        out = [f"{self.path}", f"  destination  {self.destination}"]
        verdict = (paint("green", "would load") if self.loads else
                   paint("red", "would NOT load"))
        if self.unreadable:
            verdict += " (unreadable input)"
        out.append(f"  verdict      {verdict}")
        counts = self.to_dict()["summary"]
        out.append(f"  findings     {counts['error']} error(s), {counts['warning']} warning(s), "
                   f"{counts['info']} note(s)")
        for f in self.findings:
            out.append("")
            sev = {"error": paint("red", "error  "), "warning": paint("yellow", "warning"),
                   "info": paint("cyan", "note   ")}[f.severity]
            head = [sev, f"[{f.scope}/{f.check}]"]
            if f.offset is not None:
                head.append(f"offset {f.offset} (0x{f.offset:x})")
            out.append("  " + " ".join(head))
            if f.section:
                out.append(f"           section {f.section}")
            if f.field:
                out.append(f"           field   {f.field}")
            out.append(f"           {f.message}")
            if f.qemu:
                lines = f.qemu.splitlines()
                out.append(f"           QEMU:   {lines[0]}")
                out.extend(f"                   {ln}" for ln in lines[1:])
        return "\n".join(out)




def load_target(path: str | os.PathLike[str]) -> Profile:
    """Read a QEMU -dump-vmstate file; UsageError when it cannot be one."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UsageError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if raw[:4] == b"QEVM":
        raise UsageError(f"{p}: is a migration stream, not a -dump-vmstate JSON file "
                         "(use --reference for streams)")
    try:
        return parse_dump_vmstate(raw.decode("utf-8"), label=f"target {p}")
    except UnicodeDecodeError:
        raise UsageError(f"{p}: not a QEMU -dump-vmstate file (not UTF-8 text)") from None
    except DescriptionError as exc:
        raise UsageError(f"{p}: {exc}") from None


def _open(arg: StreamArg, what: str) -> tuple[Stream, bool]:
    """(stream, opened here)."""
    if isinstance(arg, Stream):
        return arg, False
    p = os.fspath(arg)
    if not os.path.exists(p):
        raise UsageError(f"{p}: no such file")
    if os.path.isdir(p):
        raise UsageError(f"{p} is a directory")
    try:
        return Stream.open(p), True
    except MigstreamError as exc:
        raise UsageError(f"{what} {p}: {exc}") from None


def _describe(dest: Destination) -> str:
    parts = [dest.label]
    detail = []
    if dest.machine:
        detail.append(dest.machine)
    if dest.entries is not None:
        detail.append(f"{len(dest.entries)} sections")
    if dest.blocks is not None:
        detail.append(f"{len(dest.blocks)} RAM blocks")
    if dest.profile is not None:
        detail.append(f"vmsd facts: {dest.profile.label}")
    if detail:
        parts.append(f"({', '.join(detail)})")
    return " ".join(parts)


def validate(
    stream: StreamArg,
    *,
    target: str | os.PathLike[str] | Profile | None = None,
    reference: StreamArg | None = None,
    machine: str | None = None,
) -> Report:
    """Check one stream; see the module docstring. Raises UsageError for unusable arguments."""
    profile = (target if isinstance(target, Profile) else
               load_target(target) if target is not None else builtin_profile())
    s, close_s = _open(stream, "stream")
    ref: Stream | None = None
    close_ref = False
    try:
        if reference is not None:
            ref, close_ref = _open(reference, "reference")
            if ref.errors:
                raise UsageError(f"reference {ref.path} does not decode completely: "
                                 f"{ref.errors[0]}")
        return _validate(s, profile, target is not None, ref, machine)
    finally:
        if close_s:
            s.close()
        if ref is not None and close_ref:
            ref.close()


def _validate(s: Stream, profile: Profile, have_target: bool, ref: Stream | None,
              machine: str | None) -> Report:
    own_dest = Destination.from_stream(s, "the stream's own configuration and descriptions",
                                       builtin_profile() if not have_target else profile)
    if ref is not None:
        dest: Destination | None = Destination.from_stream(ref, f"reference {ref.path}", profile)
    elif have_target:
        dest = Destination.from_profile(profile)
    else:
        dest = None
    if dest is not None and machine is not None:
        dest.machine = machine
    if dest is None and machine is not None:
        own_dest.machine = machine

    own = simulate(s, own_dest)
    for f in own.findings:
        f.scope = "own"
    if own.fatal is not None:
        own.fatal.scope = "own"
    main: Simulator = own if dest is None else simulate(s, dest)
    report = Report(s.path, _describe(dest if dest is not None else own_dest),
                    loads=main.fatal is None)

    findings: list[Finding] = []
    if main is not own:
        findings.extend(main.findings)
        if main.fatal is not None:
            findings.append(main.fatal)
        if own.fatal is not None and not _same(own.fatal, main.fatal):
            own.fatal.severity = "error" if main.fatal is not None else "warning"
            if main.fatal is None:
                own.fatal.message += (" (a destination like the source would reject it; the "
                                      "named destination accepts it)")
            findings.append(own.fatal)
        findings.extend(f for f in own.findings if not any(_same(f, g) for g in findings))
    else:
        findings.extend(own.findings)
        if own.fatal is not None:
            findings.append(own.fatal)
    findings.extend(_structure(s, main))
    report.findings = findings
    fatal = main.fatal
    report.unreadable = bool(
        (fatal is not None and (fatal.truncated or fatal.check == "header.magic"))
        or (s.errors and isinstance(s.errors[0], TruncatedStreamError) and fatal is not None)
    )
    return report


def _same(a: Finding, b: Finding | None) -> bool:
    return b is not None and a.check == b.check and a.offset == b.offset


def _structure(s: Stream, sim: Simulator) -> list[Finding]:
    """What the stream model noticed that the loader replay does not report."""
    out: list[Finding] = []
    fatal = sim.fatal
    for err in s.errors:
        if fatal is not None and fatal.offset is not None and err.offset >= fatal.offset:
            continue
        out.append(Finding(
            "warning" if fatal is None else "info", "parse",
            f"migstream's parser stops here: {err.message}"
            + (" (QEMU's loader reads on)" if fatal is None else ""),
            err.offset, section=err.section, field=err.field_path, scope="structure"))
    for note in s.notes:
        out.append(Finding("info", "note", note, None, scope="structure"))
    out.extend(_vmdesc_checks(s))
    return out


def _vmdesc_checks(s: Stream) -> list[Finding]:
    if s.vmdesc is None or s.vmdesc_source != "stream":
        return []
    out: list[Finding] = []
    written = [sec for sec in s.sections if sec.type == 4 and sec.parent is None]
    devices = s.vmdesc.devices
    for i, (sec, dev) in enumerate(zip(written, devices, strict=False)):
        if (sec.idstr, sec.instance_id) != (dev.name, dev.instance_id):
            out.append(Finding(
                "warning", "vmdesc.order",
                f"VMDESCRIPTION entry {i} is {dev.name!r} instance {dev.instance_id}, but FULL "
                f"section {i} is {sec.idstr!r} instance {sec.instance_id} (QEMU never reads "
                "the VMDESCRIPTION; tools that do are misled)",
                sec.offset, section=sec.where, idstr=sec.idstr, section_id=sec.section_id,
                instance_id=sec.instance_id, scope="structure"))
            break
        if not dev.old_style and dev.version != sec.version_id:
            out.append(Finding(
                "warning", "vmdesc.version",
                f"the section header says version {sec.version_id}, its VMDESCRIPTION entry "
                f"{dev.version}; QEMU loads it as version {sec.version_id}",
                sec.offset, section=sec.where, idstr=sec.idstr, section_id=sec.section_id,
                instance_id=sec.instance_id, scope="structure"))
    if len(written) != len(devices) and not s.errors:
        out.append(Finding(
            "warning", "vmdesc.count",
            f"the VMDESCRIPTION describes {len(devices)} devices, the stream has "
            f"{len(written)} FULL sections", s.vmdesc_offset, scope="structure"))
    return out


# -- CLI -------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    report = validate(args.file, target=args.target, reference=args.reference,
                      machine=args.machine)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif not report.unreadable:
        print(report.text(color=use_color(args.color)))
    if report.unreadable:
        print(f"migstream: error: {report.one_line()}", file=sys.stderr)
    return report.exit_code


def register_cli(add: Callable[..., Any]) -> None:
    sp = add("validate", cmd_validate,
             "check a stream's structure, its own descriptions and whether a destination "
             "(--reference stream, --target -dump-vmstate JSON) would load it")
    sp.add_argument("file")
    sp.add_argument("--target", metavar="VMSTATE_JSON",
                    help="QEMU -dump-vmstate output of the destination build")
    sp.add_argument("--reference", metavar="STREAM",
                    help="a stream captured on the destination configuration")
    sp.add_argument("--machine", metavar="NAME",
                    help="the destination's machine type (e.g. pc-i440fx-7.2)")
    sp.add_argument("--json", action="store_true", help="machine-readable report")
    sp.add_argument("--color", action="store_true", help="colour even when not on a terminal")
