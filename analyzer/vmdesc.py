"""VMState descriptions as a stream's VMDESCRIPTION JSON gives them (QEMU 7.2 vmstate.c).

The JSON has duplicate keys (qtailq, qlist and gtree repeat the nested vmsd keys once per
element), so it is parsed into ordered key/value pairs and then into typed descriptions:
`DeviceDesc` per section written, `VmsdDesc` for nested structs and subsections, `FieldDesc` per
field object. The same types describe what the decoder walks and what `dump` prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from formats.constants import NESTED_VMSD_TYPES
from formats.errors import DescriptionError

Pairs = list[tuple[str, Any]]


@dataclass(slots=True)
class VmsdDesc:
    """A VMStateDescription as written: its name, version, fields and written subsections."""

    vmsd_name: str
    version: int
    fields: list[FieldDesc] = field(default_factory=list)
    subsections: list[VmsdDesc] = field(default_factory=list)
    has_subsections_key: bool = False


@dataclass(slots=True)
class FieldDesc:
    """One field object of the vmdesc (an element run, or one indexed element)."""

    name: str
    type: str
    size: int
    array_len: int | None = None
    index: int | None = None
    struct: VmsdDesc | None = None
    """The nested vmsd of a `struct` field; an empty one marks a NULL pointer element."""
    nested: list[VmsdDesc] = field(default_factory=list)
    """vstruct/tmp: one nested vmsd; qtailq/qlist: one per element; gtree: per key and value."""

    @property
    def count(self) -> int:
        return self.array_len if self.array_len is not None else 1


@dataclass(slots=True)
class DeviceDesc(VmsdDesc):
    """One entry of "devices": a FULL section's description, keyed by (name, instance_id)."""

    name: str = ""
    instance_id: int = 0
    size: int | None = None
    """Only old-style (save_state) sections say their size; vmsd sections do not."""

    @property
    def old_style(self) -> bool:
        return self.size is not None


@dataclass(slots=True)
class VmDescription:
    """The whole VMDESCRIPTION: page size and devices in stream order."""

    page_size: int
    devices: list[DeviceDesc]
    text: str = ""

    def lookup(self) -> DeviceLookup:
        return DeviceLookup(self.devices)


class DeviceLookup:
    """Hands out device descriptions by (idstr, instance_id), in order for duplicates.

    Real streams repeat (idstr, instance) pairs ("slirp" 0 twice with two user netdevs); the
    vmdesc lists one entry per section written, so the n-th section with a key takes the n-th
    entry with that key.
    """

    def __init__(self, devices: list[DeviceDesc]) -> None:
        self._by_key: dict[tuple[str, int], list[DeviceDesc]] = {}
        for dev in devices:
            self._by_key.setdefault((dev.name, dev.instance_id), []).append(dev)
        self._taken: dict[tuple[str, int], int] = {}

    def take(self, idstr: str, instance_id: int) -> DeviceDesc | None:
        key = (idstr, instance_id)
        entries = self._by_key.get(key)
        if not entries:
            return None
        n = self._taken.get(key, 0)
        self._taken[key] = n + 1
        return entries[min(n, len(entries) - 1)]


def _pairs_hook(pairs: Pairs) -> Pairs:
    return pairs


def _get(pairs: Pairs, key: str, default: Any = None) -> Any:
    for k, v in pairs:
        if k == key:
            return v
    return default


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DescriptionError(f"{what} is not an integer: {value!r}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise DescriptionError(f"{what} is not a string: {value!r}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise DescriptionError(f"{what} is not a list")
    return value


def _vmsd_groups(pairs: Pairs, where: str) -> Iterator[VmsdDesc]:
    """Split a field object's inlined vmsd keys into one VmsdDesc per repetition."""
    cur: VmsdDesc | None = None
    for k, v in pairs:
        if k == "vmsd_name":
            if cur is not None:
                yield cur
            cur = VmsdDesc(_str(v, f"{where}.vmsd_name"), 0)
        elif cur is None:
            continue
        elif k == "version":
            cur.version = _int(v, f"{where}.version")
        elif k == "fields":
            cur.fields = [parse_field(f, where) for f in _list(v, f"{where}.fields")]
        elif k == "subsections":
            cur.has_subsections_key = True
            cur.subsections = [
                parse_vmsd(s, f"{where}.subsections") for s in _list(v, f"{where}.subsections")
            ]
    if cur is not None:
        yield cur


def parse_vmsd(obj: Any, where: str) -> VmsdDesc:
    pairs = _list(obj, where)
    groups = list(_vmsd_groups(pairs, where))
    if not groups:
        return VmsdDesc("", 0)
    return groups[0]


def parse_field(obj: Any, where: str) -> FieldDesc:
    pairs = _list(obj, where)
    name = _str(_get(pairs, "name"), f"{where} field name")
    path = f"{where}.{name}"
    ftype = _str(_get(pairs, "type", "unknown"), f"{path}.type")
    size = _int(_get(pairs, "size", 0), f"{path}.size")
    fd = FieldDesc(name, ftype, size)
    array_len = _get(pairs, "array_len")
    if array_len is not None:
        fd.array_len = _int(array_len, f"{path}.array_len")
    index = _get(pairs, "index")
    if index is not None:
        fd.index = _int(index, f"{path}.index")
    if ftype == "struct":
        sub = _get(pairs, "struct")
        fd.struct = parse_vmsd(sub, path) if sub is not None else VmsdDesc("", 0)
    elif ftype in NESTED_VMSD_TYPES or _get(pairs, "vmsd_name") is not None:
        fd.nested = list(_vmsd_groups(pairs, path))
    return fd


def parse_device(obj: Any) -> DeviceDesc:
    pairs = _list(obj, "device")
    name = _str(_get(pairs, "name"), "device name")
    instance_id = _int(_get(pairs, "instance_id", 0), f"{name}.instance_id")
    groups = list(_vmsd_groups(pairs, name))
    size = _get(pairs, "size")
    if groups:
        g = groups[0]
        return DeviceDesc(
            g.vmsd_name, g.version, g.fields, g.subsections, g.has_subsections_key,
            name=name, instance_id=instance_id,
        )
    fields = [parse_field(f, name) for f in _list(_get(pairs, "fields", []), f"{name}.fields")]
    return DeviceDesc(
        "", 0, fields, name=name, instance_id=instance_id,
        size=_int(size, f"{name}.size") if size is not None else sum(f.size for f in fields),
    )


def parse_vmdesc(text: str) -> VmDescription:
    """Parse VMDESCRIPTION JSON text; raises DescriptionError with the reason."""
    try:
        root = json.loads(text, object_pairs_hook=_pairs_hook)
    except (ValueError, RecursionError) as exc:
        raise DescriptionError(f"VMDESCRIPTION is not valid JSON: {exc}") from None
    pairs = _list(root, "VMDESCRIPTION")
    page_size = _int(_get(pairs, "page_size", 4096), "page_size")
    devices = [parse_device(d) for d in _list(_get(pairs, "devices", []), "devices")]
    return VmDescription(page_size, devices, text)


def pairs_to_plain(obj: Any) -> Any:
    """Turn parsed pairs back into plain JSON values (later duplicate keys win, as dict() does)."""
    if isinstance(obj, list) and obj and all(
        isinstance(p, tuple) and len(p) == 2 for p in obj
    ):
        return {k: pairs_to_plain(v) for k, v in obj}
    if isinstance(obj, list):
        return [pairs_to_plain(v) for v in obj]
    return obj
