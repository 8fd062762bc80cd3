"""What a destination QEMU knows about its vmsds: versions, minimum versions, gated fields.

Streams carry each section's version and (in the VMDESCRIPTION) the fields the source wrote, but
not what the destination's loader accepts: the minimum version a vmsd still loads, which fields a
lower incoming version skips (``field->version_id``), and which subsections exist at all. A
QEMU ``-dump-vmstate`` file states exactly that for every device class; `parse_dump_vmstate`
reads one (``migstream validate --target``). `builtin_profile` is the same for the QEMU 7.2
this toolkit targets (analyzer/qemu72_profile_data.py, generated from 7.2's own dump).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from formats.errors import DescriptionError

_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


@dataclass(slots=True)
class VmsdFacts:
    """One vmsd as the destination has it."""

    name: str
    version: int
    minimum: int
    gated: dict[str, list[tuple[int, bool]]] = field(default_factory=dict)
    """Field name -> (version_id, has a field_exists callback) per occurrence in the table."""
    subsections: list[str] | None = None
    """Known subsection names; None when the source of these facts does not say."""
    field_names: list[str] | None = None
    """Every field name in table order, when known (used to tell same-named vmsds apart)."""

    @property
    def has_field_exists(self) -> bool:
        """Some field's presence is decided by a callback (often a version test)."""
        return any(exists for occ in self.gated.values() for _, exists in occ)

    def skipped_below(self, version: int, written_at: int) -> list[str]:
        """Fields present at `written_at` that a load at `version` does not read."""
        return [name for name, occ in self.gated.items()
                for v, exists in occ if not exists and version < v <= written_at]

    def reads(self, vmdesc_name: str, version: int) -> bool | None:
        """Whether a load at `version` reads the field the vmdesc calls `vmdesc_name`.

        vmdesc names a field `name[k]` when the table has several fields called `name`; k is
        the position among them. None when a field_exists callback decides (unknowable here).
        """
        name, k = vmdesc_name, 0
        occurrences = self.gated.get(name)
        if occurrences is None:
            m = _INDEX.match(vmdesc_name)
            if m is not None and m.group(1) in self.gated:
                name, k = m.group(1), int(m.group(2))
                occurrences = self.gated[name]
        if occurrences is None:
            return True
        if len(occurrences) == 1:
            k = 0
        if k >= len(occurrences):
            return True
        field_version, exists = occurrences[k]
        if exists:
            return None
        return field_version <= version


@dataclass(slots=True)
class Profile:
    """Facts per vmsd name (several vmsds may share a name) plus the machine type, if known."""

    label: str
    vmsds: dict[str, list[VmsdFacts]]
    machine: str | None = None

    def find(self, name: str, version: int | None = None,
             field_names: list[str] | None = None) -> VmsdFacts | None:
        """The variant of `name` whose version (and field names, when given) match."""
        candidates = self.vmsds.get(name, [])
        if version is not None:
            candidates = [c for c in candidates if c.version == version]
        if len(candidates) > 1 and field_names is not None:
            wanted = {_INDEX.sub(r"\1", n) for n in field_names}
            narrowed = [c for c in candidates
                        if c.field_names is not None and wanted <= set(c.field_names)]
            candidates = narrowed or candidates
        return candidates[0] if len(candidates) == 1 else None

    def minimum(self, name: str, version: int | None) -> int | None:
        """The minimum version of `name` at `version`, when every such variant agrees."""
        mins = {c.minimum for c in self.vmsds.get(name, [])
                if version is None or c.version == version}
        return mins.pop() if len(mins) == 1 else None

    def knows(self, name: str) -> bool:
        return name in self.vmsds

    def subsection_names(self, parent: str) -> set[str] | None:
        """Every subsection name any vmsd called `parent` knows; None if not stated."""
        names: set[str] = set()
        stated = False
        for c in self.vmsds.get(parent, []):
            if c.subsections is not None:
                stated = True
                names.update(c.subsections)
        return names if stated else None


def _facts_from_dump(vmsd: dict[str, Any], where: str) -> VmsdFacts:
    try:
        name = str(vmsd["name"])
        fields = [(str(f["field"]), int(f["version_id"]), bool(f["field_exists"]))
                  for f in vmsd.get("Fields", [])]
        facts = VmsdFacts(name, int(vmsd["version_id"]), int(vmsd["minimum_version_id"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DescriptionError(f"{where}: not a -dump-vmstate vmsd object ({exc})") from None
    for fname, version, exists in fields:
        if version > 0 or exists:
            facts.gated[fname] = [(v, e) for n, v, e in fields if n == fname]
    facts.field_names = [n for n, _, _ in fields]
    subs = vmsd.get("Subsections")
    if subs is not None:
        facts.subsections = [str(s.get("name")) for s in subs if isinstance(s, dict)]
    return facts


def parse_dump_vmstate(text: str, label: str = "target") -> Profile:
    """Read a QEMU ``-dump-vmstate`` JSON file; raises DescriptionError when it is not one."""
    try:
        root = json.loads(text)
    except ValueError as exc:
        raise DescriptionError(f"not JSON: {exc}") from None
    if not isinstance(root, dict) or not isinstance(root.get("vmschkmachine"), dict):
        raise DescriptionError(
            "not a QEMU -dump-vmstate file (no \"vmschkmachine\" object at the top)")
    profile = Profile(label, {}, machine=str(root["vmschkmachine"].get("Name") or "") or None)

    def add(vmsd: Any, where: str) -> None:
        if not isinstance(vmsd, dict):
            raise DescriptionError(f"{where}: expected an object")
        facts = _facts_from_dump(vmsd, where)
        variants = profile.vmsds.setdefault(facts.name, [])
        if facts not in variants:
            variants.append(facts)
        for f in vmsd.get("Fields", []):
            if isinstance(f, dict) and "Description" in f:
                add(f["Description"], f"{where}/{f.get('field')}")
        for s in vmsd.get("Subsections", []):
            add(s, f"{where}/{s.get('name') if isinstance(s, dict) else '?'}")

    for key, entry in root.items():
        if key == "vmschkmachine":
            continue
        if not isinstance(entry, dict) or "Description" not in entry:
            raise DescriptionError(f"entry {key!r} has no \"Description\"")
        add(entry["Description"], key)
    return profile


@cache
def builtin_profile() -> Profile:
    """QEMU 7.2 x86_64 facts shipped with migstream (see analyzer/qemu72_profile_data.py)."""
    from analyzer.qemu72_profile_data import PROFILE_JSON, QEMU_VERSION

    data: dict[str, list[dict[str, Any]]] = json.loads(PROFILE_JSON)
    vmsds: dict[str, list[VmsdFacts]] = {}
    for name, variants in data.items():
        for v in variants:
            vmsds.setdefault(name, []).append(VmsdFacts(
                name, int(v["v"]), int(v["min"]),
                {k: [(int(a), bool(b)) for a, b in occ] for k, occ in v["gated"].items()},
                list(v["subs"]) if "subs" in v else None,
                list(v["fields"]) if "fields" in v else None,
            ))
    return Profile(f"built-in {QEMU_VERSION.removeprefix('QEMU emulator version ')} profile",
                   vmsds)
