"""Machine profiles: the device set, descriptions, values and RAM of a machine to migrate.

A `Machine` comes from a real capture (`machine_from_stream`: its vmdesc and decoded values,
its RAM blocks and final RAM contents) or from a YAML profile that a user can edit: the
profile names a base stream (a built-in one such as "pc-i440fx-7.2", or a path) for
descriptions and ROM contents and lists every device's values, which are checked against the
descriptions before anything is written. `generate()` migrates a machine into a file through
the savevm driver, writing to a temporary name and renaming it when complete.
"""

from __future__ import annotations

import io
import logging
import lzma
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from analyzer.model import Stream
from analyzer.output import atomic_output
from analyzer.ram import RamImage
from formats.constants import TARGET_PAGE_SIZE, SectionType
from formats.errors import MigstreamError
from savevm.migration import (
    MigrationDriver,
    MigrationParameters,
    MigrationStats,
    ProgressFn,
    Workload,
)
from savevm.qemu_file import QEMUFile
from savevm.ram import RAMBlock, RAMState
from savevm.savevm import MigrationConfig, SaveVMState, vmstate_save
from savevm.template import (
    DeviceState,
    config_from_stream,
    device_from_section,
    ram_blocks_from_stream,
    register_device,
)
from savevm.vmstate import F, VMStateDescription, VMStateError

log = logging.getLogger(__name__)

BUILTIN = ("pc-i440fx-7.2", "pc-q35-7.2")


class ProfileError(MigstreamError):
    """A profile that cannot be generated; names the device and field."""


@dataclass
class Machine:
    """Everything the writer needs to migrate one machine."""

    name: str
    cfg: MigrationConfig
    devices: list[DeviceState]
    ram_blocks: list[RAMBlock]
    ram_section_id: int = 2
    qemu_args: list[str] = field(default_factory=list)
    base: str = ""

    def block(self, idstr: str) -> RAMBlock | None:
        for b in self.ram_blocks:
            if b.idstr == idstr:
                return b
        return None


def _oracle_args(path: str) -> list[str]:
    oracle = Path(path).with_suffix(".oracle.json")
    if oracle.exists():
        import json

        args = json.loads(oracle.read_text()).get("source", {}).get("machine_args_template")
        if isinstance(args, list):
            return [str(a) for a in args]
    return []


def machine_from_stream(stream: Stream, name: str = "", with_ram: bool = True) -> Machine:
    """The machine a capture describes: config, FULL device sections, RAM blocks and contents."""
    if stream.errors:
        raise ProfileError(f"template {stream.path} does not decode: {stream.errors[0]}")
    cfg = config_from_stream(stream)
    cfg.capabilities = {k: v for k, v in cfg.capabilities.items()
                        if k in ("x-ignore-shared", "validate-uuid")}
    devices = [device_from_section(stream, s) for s in stream.sections
               if s.type == SectionType.QEMU_VM_SECTION_FULL]
    blocks = ram_blocks_from_stream(stream)
    ram_id = next((s.section_id for s in stream.sections if s.is_ram), 2)
    if with_ram:
        img = RamImage(stream)
        index = {b.idstr: i for i, b in enumerate(stream.ram.blocks)}
        for blk in blocks:
            bi = index[blk.idstr]
            for (b, off), _row in img.last_copy.items():
                if b != bi:
                    continue
                page = img.page(b, off)
                if page is not None and page.count(0) != TARGET_PAGE_SIZE:
                    if blk.data is None:
                        blk.data = bytearray(blk.used_length)
                    blk.data[off : off + TARGET_PAGE_SIZE] = page
    return Machine(name or (stream.machine or "machine"), cfg, devices, blocks, ram_id,
                   _oracle_args(stream.path), base=stream.path)


# -- built-in bases and YAML --------------------------------------------------------------


def _builtin_stream(name: str) -> Stream:
    ref = resources.files("savevm") / "profiles" / f"{name}.base.bin.xz"
    try:
        data = lzma.decompress(ref.read_bytes())
    except FileNotFoundError:
        raise ProfileError(f"no built-in profile base {name!r} (have: {', '.join(BUILTIN)})"
                           ) from None
    stream = Stream.from_bytes(data)
    stream.path = f"<built-in {name}>"
    return stream


def open_base(ref: str, relative_to: Path | None = None) -> Stream:
    if ref in BUILTIN:
        return _builtin_stream(ref)
    path = Path(ref)
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if not path.exists():
        raise ProfileError(f"base stream {ref!r} not found")
    return Stream.open(path)


def builtin_profile_path(name: str) -> Path:
    return Path(str(resources.files("savevm") / "profiles" / f"{name}.yaml"))


def profile_text(machine: Machine, base: str) -> str:
    """A YAML profile of `machine`, loadable by `load_profile` against `base`."""
    doc: dict[str, Any] = {
        "profile": 1,
        "machine": machine.cfg.machine_type,
        "base": base,
        "qemu_args": machine.qemu_args,
        "configuration": {
            "send_configuration": machine.cfg.send_configuration,
            "send_section_footer": machine.cfg.send_section_footer,
            "suppress_vmdesc": machine.cfg.suppress_vmdesc,
            "capabilities": sorted(k for k, v in machine.cfg.capabilities.items() if v),
        },
        "devices": [
            {"idstr": d.idstr, "instance_id": d.instance_id, "values": d.values}
            for d in machine.devices if d.vmsd is not None
        ],
    }
    header = ("# migstream machine profile. Edit device values, delete a subsection's entry to\n"
              "# stop writing it, delete a device to drop its section. Descriptions and ROM\n"
              "# contents come from the base stream.\n")
    return header + yaml.dump(doc, Dumper=_ProfileDumper, sort_keys=False, width=100)


class _ProfileDumper(yaml.SafeDumper):
    """Lists of plain numbers in flow style, so register arrays stay on a few lines."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = bool(data) and all(isinstance(x, int | bool) or x is None for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ProfileDumper.add_representer(list, _represent_list)


def _check_values(vmsd: VMStateDescription, values: Any, path: str) -> None:
    """Unknown keys are errors; types, lengths and ranges are checked by a dry-run encode."""
    if not isinstance(values, dict):
        raise ProfileError(f"{path}: expected a mapping of field values")
    known = {f.key: f for f in vmsd.fields}
    subs = {s.name: s for s in vmsd.subsections or []}
    for key, value in values.items():
        fld = known.get(key)
        if fld is not None:
            if fld.flags & (F.VMS_STRUCT | F.VMS_VSTRUCT) and fld.vmsd is not None:
                elems = value if isinstance(value, list) else [value]
                for i, elem in enumerate(elems):
                    if elem is not None:
                        sub = f"{path}/{key}[{i}]" if isinstance(value, list) else f"{path}/{key}"
                        _check_values(fld.vmsd, elem, sub)
            continue
        if key in subs:
            _check_values(subs[key], value, f"{path}/{key}")
            continue
        raise ProfileError(f"{path}: unknown field {key!r} (fields: "
                           f"{', '.join(list(known)[:12])}{', ...' if len(known) > 12 else ''})")


def load_profile(path: str | os.PathLike[str]) -> Machine:
    """Load and check a YAML profile (a path or a built-in name)."""
    p = Path(path)
    if str(path) in BUILTIN and not p.exists():
        p = builtin_profile_path(str(path))
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read profile {p}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or "base" not in doc or "devices" not in doc:
        raise ProfileError(f"{p}: a profile needs 'base' and 'devices'")
    with open_base(str(doc["base"]), p.parent) as base:
        machine = machine_from_stream(base, with_ram=True)
    machine.base = str(doc["base"])
    machine.qemu_args = [str(a) for a in doc.get("qemu_args") or machine.qemu_args]
    conf = doc.get("configuration") or {}
    for prop in ("send_configuration", "send_section_footer", "suppress_vmdesc"):
        if prop in conf:
            setattr(machine.cfg, prop, bool(conf[prop]))
    if "capabilities" in conf:
        machine.cfg.capabilities = {str(c): True for c in conf["capabilities"] or []}
    by_key = {(d.idstr, d.instance_id): d for d in machine.devices}
    chosen: list[DeviceState] = []
    for entry in doc["devices"] or []:
        if not isinstance(entry, dict) or "idstr" not in entry:
            raise ProfileError(f"{p}: each device needs an 'idstr'")
        key = (str(entry["idstr"]), int(entry.get("instance_id", 0)))
        dev = by_key.get(key)
        if dev is None:
            raise ProfileError(f"{p}: unknown device {key[0]!r} instance {key[1]} (not in "
                               f"base {doc['base']})")
        if dev.vmsd is not None:
            where = f"{p.name}: device {key[0]!r} (instance {key[1]})"
            _check_values(dev.vmsd, entry.get("values"), where)
            dev.values = entry["values"]
        chosen.append(dev)
    old_style = [d for d in machine.devices if d.vmsd is None]
    machine.devices = [d for d in machine.devices if d in chosen or d in old_style]
    check_machine(machine)
    return machine


def check_machine(machine: Machine) -> None:
    """Encode every device into memory: any bad value fails here, before output exists."""
    f = QEMUFile()
    state = SaveVMState()
    for dev in machine.devices:
        se = register_device(state, dev)
        try:
            vmstate_save(f, se, None)
        except VMStateError as exc:
            raise ProfileError(f"device {dev.idstr!r} (instance {dev.instance_id}): field "
                               f"{exc.path.removeprefix(dev.idstr + '/')}: "
                               f"{str(exc).split(': ', 1)[-1]}") from None
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise ProfileError(f"device {dev.idstr!r} (instance {dev.instance_id}): "
                               f"{exc}") from None


# -- generation ---------------------------------------------------------------------------


@dataclass
class GenerateOptions:
    ram_image: bytes | None = None
    """Contents for the main RAM block (pc.ram), zero-padded to its length."""
    ram_block: str = "pc.ram"
    xbzrle: bool = False
    compress: bool = False
    params: MigrationParameters = field(default_factory=MigrationParameters)
    workload: Workload = field(default_factory=Workload)


def build(machine: Machine, opts: GenerateOptions) -> tuple[SaveVMState, RAMState]:
    if opts.ram_image is not None:
        blk = machine.block(opts.ram_block)
        if blk is None:
            raise ProfileError(f"the machine has no RAM block {opts.ram_block!r}")
        if len(opts.ram_image) > blk.used_length:
            raise ProfileError(f"RAM image is {len(opts.ram_image)} bytes, larger than "
                               f"{opts.ram_block} ({blk.used_length} bytes)")
        if len(opts.ram_image) == blk.used_length and opts.workload.dirty_rate == 0:
            blk.data = memoryview(opts.ram_image)
        else:
            data = bytearray(blk.used_length)
            data[: len(opts.ram_image)] = opts.ram_image
            blk.data = data
    ram = RAMState(
        machine.ram_blocks,
        xbzrle_enabled_cap=opts.xbzrle,
        xbzrle_cache_size=opts.params.xbzrle_cache_size,
        compress=opts.compress,
        compress_level=opts.params.compress_level,
        ignore_shared=machine.cfg.cap("x-ignore-shared"),
    )
    state = SaveVMState()
    registered = False
    for dev in machine.devices:
        if not registered and dev.section_id > machine.ram_section_id:
            ram.register(state, machine.ram_section_id)
            registered = True
        register_device(state, dev)
    if not registered:
        ram.register(state, machine.ram_section_id)
    return state, ram


def generate(
    machine: Machine,
    out: str | os.PathLike[str] | io.BufferedIOBase,
    opts: GenerateOptions | None = None,
    progress: ProgressFn | None = None,
) -> MigrationStats:
    """Migrate `machine` into `out` (a path: written to a temporary name, then renamed)."""
    opts = opts or GenerateOptions()
    check_machine(machine)
    state, ram = build(machine, opts)
    driver = MigrationDriver(state, ram, machine.cfg, opts.params, opts.workload, progress)
    if not isinstance(out, str | os.PathLike):
        return driver.run(QEMUFile(out))  # type: ignore[arg-type]
    with atomic_output(out) as fh:
        stats = driver.run(QEMUFile(fh))
    return stats


__all__ = [
    "BUILTIN",
    "GenerateOptions",
    "Machine",
    "ProfileError",
    "build",
    "check_machine",
    "generate",
    "load_profile",
    "machine_from_stream",
    "open_base",
    "profile_text",
]
