"""Machine templates from real captures: VMStateDescriptions and values rebuilt from a stream.

A captured stream's VMDESCRIPTION says, for every device section, which fields were written,
their types, sizes and array shapes; the decoded payload gives their values. From the two this
module rebuilds `VMStateDescription`s that make QEMU's save code (savevm.vmstate) write the same
bytes and the same vmdesc, plus the device state dicts. `replay()` re-emits a whole stream
through the writer with the same section partition: device sections re-encoded from values,
RAM records re-encoded from page contents (XBZRLE against the previous copy, zlib at the
stream's level), commands and postcopy packages rebuilt.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from analyzer.model import Command, Configuration, Section, Stream
from analyzer.ram import page_bytes
from analyzer.vmdesc import FieldDesc, VmsdDesc
from analyzer.vmstate import Node
from formats import xbzrle
from formats.constants import INT_INFOS, TARGET_PAGE_SIZE, MigCmd, SectionType
from formats.errors import MigstreamError
from savevm.qemu_file import QEMUFile
from savevm.ram import RAMBlock, RAMState
from savevm.savevm import (
    MigrationConfig,
    SaveStateEntry,
    SaveVMHandlers,
    SaveVMState,
    qemu_savevm_command_send,
    qemu_savevm_send_open_return_path,
    qemu_savevm_send_packaged,
    qemu_savevm_send_ping,
    qemu_savevm_send_postcopy_advise,
    qemu_savevm_send_postcopy_listen,
    qemu_savevm_send_postcopy_ram_discard,
    qemu_savevm_send_postcopy_run,
    qemu_savevm_state_complete_precopy_non_iterable,
    qemu_savevm_state_header,
    save_section_footer,
    save_section_header,
)
from savevm.vmstate import F, VMStateDescription, VMStateField, info

log = logging.getLogger(__name__)

_SUFFIX = re.compile(r"^(.*)\[(\d+)\]$")
NEVER = 1 << 30
"""version_id of placeholder fields that only exist to number their namesakes."""


class TemplateError(MigstreamError):
    """The stream cannot serve as a template (undecoded sections, parse errors)."""


def _always(_opaque: Any, _version: int) -> bool:
    return True


def _sub_opaque(opaque: Any, sub: VMStateDescription) -> Any:
    return opaque.get(sub.name) if isinstance(opaque, dict) else None


def _present(opaque: Any) -> bool:
    """needed() of template subsections: written iff the state has values for them."""
    return opaque is not None


# -- descriptions ---------------------------------------------------------------------------


def _merge_subsections(descs: list[VmsdDesc]) -> list[VmsdDesc]:
    seen: dict[str, VmsdDesc] = {}
    for d in descs:
        for s in d.subsections:
            seen.setdefault(s.vmsd_name, s)
    return list(seen.values())


def vmsd_from_desc(desc: VmsdDesc, extra_subsections: list[VmsdDesc] | None = None,
                   force_table: bool = False, optional: set[str] | None = None
                   ) -> VMStateDescription:
    """A VMStateDescription that saves exactly what `desc` describes."""
    fields = _fields_from_desc(desc.fields, optional)
    subs = list(desc.subsections)
    for s in extra_subsections or []:
        if all(s.vmsd_name != x.vmsd_name for x in subs):
            subs.append(s)
    table = [
        VMStateDescription(s.vmsd_name, s.version, 0, [], None, _present)
        for s in subs
    ]
    for vm, s in zip(table, subs, strict=True):
        built = vmsd_from_desc(s)
        vm.fields, vm.subsections = built.fields, built.subsections
        vm.subsection_opaque = built.subsection_opaque
        vm.__post_init__()
    vmsd = VMStateDescription(
        desc.vmsd_name, desc.version, 0, fields,
        table if (table or force_table or desc.has_subsections_key) else None,
    )
    vmsd.subsection_opaque = _sub_opaque
    return vmsd


def _group(fdescs: list[FieldDesc]) -> list[list[FieldDesc]]:
    """Consecutive `index` objects of one field form one array field."""
    groups: list[list[FieldDesc]] = []
    for fd in fdescs:
        if (fd.index is not None and fd.index > 0 and groups
                and groups[-1][0].name == fd.name and groups[-1][-1].index == fd.index - 1):
            groups[-1].append(fd)
        else:
            groups.append([fd])
    return groups


def _fields_from_desc(fdescs: list[FieldDesc], optional: set[str] | None = None
                      ) -> list[VMStateField]:
    built = []
    for g in _group(fdescs):
        fld = _field_from_group(g)
        if optional and g[0].name in optional:
            fld.field_exists = _has_key(g[0].name)
        built.append(fld)
    return _number_namesakes(built)


def _has_key(key: str) -> Any:
    return lambda opaque, _version: isinstance(opaque, dict) and key in opaque


def _merge_descs(descs: list[VmsdDesc]) -> tuple[VmsdDesc, set[str]]:
    """One description covering struct elements whose field_exists differed.

    Returns the union (fields in first-seen order) and the names not every element wrote.
    """
    base = descs[0]
    if len(descs) == 1:
        return base, set()
    names: list[str] = []
    by_name: dict[str, list[FieldDesc]] = {}
    for d in descs:
        prev = -1
        for g in _group(d.fields):
            name = g[0].name
            if name not in by_name:
                by_name[name] = g
                names.insert(prev + 1, name)
            prev = names.index(name)
    counts = {n: sum(any(f.name == n for f in d.fields) for d in descs) for n in names}
    optional = {n for n, c in counts.items() if c < len(descs)}
    fields = [f for n in names for f in by_name[n]]
    merged = VmsdDesc(base.vmsd_name, base.version, fields, _merge_subsections(descs),
                      any(d.has_subsections_key for d in descs))
    return merged, optional


def _number_namesakes(fields: list[VMStateField]) -> list[VMStateField]:
    """Turn vmdesc `name[k]` back into k-th namesakes, adding unsaved placeholders."""
    bases: dict[str, list[tuple[int, VMStateField]]] = {}
    for fld in fields:
        m = _SUFFIX.match(fld.name)
        if m:
            bases.setdefault(m.group(1), []).append((int(m.group(2)), fld))
    plain = {f.name for f in fields}
    suffixed: dict[int, tuple[str, int]] = {}
    for base, members in bases.items():
        ks = [k for k, _ in members]
        if base in plain or (len(members) == 1 and ks[0] == 0) or len(set(ks)) != len(ks):
            continue
        for k, fld in members:
            suffixed[id(fld)] = (base, k)
    out: list[VMStateField] = []
    placed: dict[str, int] = {}
    for fld in fields:
        if id(fld) in suffixed:
            base, k = suffixed[id(fld)]
            nxt = placed.get(base, 0)
            while nxt < k:
                out.append(VMStateField(base, info("uint8"), 1, version_id=NEVER))
                nxt += 1
            placed[base] = k + 1
            fld.name = base
        out.append(fld)
    return out


def _field_from_group(group: list[FieldDesc]) -> VMStateField:
    fd = group[0]
    fld = VMStateField(fd.name, size=fd.size)
    n = len(group) if fd.index is not None else (fd.array_len or 1)
    if fd.index is not None or fd.array_len is not None:
        fld.flags = F.VMS_ARRAY
        fld.num = n
    if fd.index is not None:
        fld.field_exists = _always
    t = fd.type
    if t == "struct":
        elems = [g.struct for g in group if g.struct is not None and g.struct.vmsd_name]
        if any(g.struct is not None and not g.struct.vmsd_name for g in group):
            fld.flags |= F.VMS_ARRAY_OF_POINTER
        merged, optional = _merge_descs(elems) if elems else (VmsdDesc("", 0), set())
        fld.vmsd = vmsd_from_desc(merged, force_table=fd.index is not None, optional=optional)
        fld.flags |= F.VMS_STRUCT
        fld.size = 0
    elif t == "vstruct":
        nested = fd.nested[0] if fd.nested else VmsdDesc("", 0)
        fld.vmsd = vmsd_from_desc(nested)
        fld.flags |= F.VMS_VSTRUCT
        fld.struct_version_id = nested.version
    elif t in ("tmp", "qtailq", "qlist", "gtree"):
        fld.info = info(t)
        fld.vmsd = vmsd_from_desc(fd.nested[0]) if fd.nested else VMStateDescription("")
    else:
        natural = INT_INFOS.get(t)
        if natural is not None and fd.size == 1 and natural[0] != 1:
            fld.flags |= F.VMS_ARRAY_OF_POINTER
            fld.size = natural[0]
        fld.info = info(t)
    return fld


# -- values ---------------------------------------------------------------------------------


def _node_value(fld: VMStateField, fd: FieldDesc, node: Node) -> Any:
    if node.kind == "nullptr":
        return None
    if fld.flags & (F.VMS_STRUCT | F.VMS_VSTRUCT) or fd.type == "tmp":
        assert fld.vmsd is not None
        nested = fd.struct if fd.type == "struct" else (fd.nested[0] if fd.nested else None)
        return values_from_nodes(fld.vmsd, nested, node.children or [])
    if fd.type in ("qtailq", "qlist"):
        assert fld.vmsd is not None
        return [values_from_nodes(fld.vmsd, g, e.children or [])
                for g, e in zip(fd.nested, node.children or [], strict=True)]
    if fd.type == "gtree":
        return _gtree_value(fld, fd, node)
    return node.value


def _gtree_value(fld: VMStateField, fd: FieldDesc, node: Node) -> list[tuple[Any, Any]]:
    kids = (node.children or [])[1:]
    direct = len(fd.nested) == len(kids)
    if not direct and fd.nested:
        fld.key_vmsd = vmsd_from_desc(fd.nested[0])
        fld.vmsd = vmsd_from_desc(fd.nested[1])
    elif fd.nested:
        fld.key_vmsd = None
    pairs: list[tuple[Any, Any]] = []
    gi = 0
    for kid in kids:
        assert kid.children is not None and len(kid.children) == 2
        key_node, val_node = kid.children
        if direct:
            key: Any = key_node.value
        else:
            assert fld.key_vmsd is not None
            key = values_from_nodes(fld.key_vmsd, fd.nested[gi], key_node.children or [])
            gi += 1
        assert fld.vmsd is not None
        pairs.append((key, values_from_nodes(fld.vmsd, fd.nested[gi], val_node.children or [])))
        gi += 1
    return pairs


def values_from_nodes(vmsd: VMStateDescription, desc: VmsdDesc | None,
                      nodes: list[Node]) -> dict[str, Any]:
    """The state dict that makes `vmsd` save the bytes the nodes were decoded from."""
    out: dict[str, Any] = {}
    if desc is None:
        return out
    ni = 0
    for g in _group(desc.fields):
        fd = g[0]
        fld = vmsd.field(fd.name)
        if fld is None:
            raise TemplateError(f"{vmsd.name}: no field {fd.name!r} in the rebuilt description")
        if fd.index is not None:
            out[fld.key] = [_node_value(fld, g[i], nodes[ni + i]) for i in range(len(g))]
            ni += len(g)
        elif fd.array_len is not None:
            out[fld.key] = [_node_value(fld, fd, e) for e in nodes[ni].children or []]
            ni += 1
        else:
            out[fld.key] = _node_value(fld, fd, nodes[ni])
            ni += 1
    for sub_desc, node in zip(desc.subsections, nodes[ni:], strict=True):
        sub = vmsd.subsection(sub_desc.vmsd_name)
        assert sub is not None
        out[sub.name] = values_from_nodes(sub, sub_desc, node.children or [])
    return out


# -- devices ------------------------------------------------------------------------------


@dataclass
class DeviceState:
    """One FULL section to write: where it registers and what it saves."""

    idstr: str
    instance_id: int
    section_id: int
    version_id: int
    vmsd: VMStateDescription | None
    values: dict[str, Any]
    old_style_data: bytes | None = None


def device_from_section(stream: Stream, sec: Section) -> DeviceState:
    desc = sec.desc
    if desc is None or sec.nodes is None:
        raise TemplateError(
            f"section {sec.where} at offset {sec.offset} is not decoded "
            f"({sec.undecoded_reason}); give descriptions with --desc"
        )
    if desc.old_style:
        return DeviceState(sec.idstr, sec.instance_id, sec.section_id, sec.version_id, None,
                           {}, stream.read(sec.body_start, sec.body_end - sec.body_start))
    vmsd = vmsd_from_desc(desc)
    values = values_from_nodes(vmsd, desc, sec.nodes)
    return DeviceState(sec.idstr, sec.instance_id, sec.section_id, sec.version_id, vmsd, values)


def register_device(state: SaveVMState, dev: DeviceState) -> SaveStateEntry:
    if dev.vmsd is None:
        data = dev.old_style_data or b""

        def save_state(f: QEMUFile, _opaque: Any) -> None:
            f.put_buffer(data)

        ops = SaveVMHandlers(save_state=save_state)
        return state.register_savevm_live(dev.idstr, dev.instance_id, dev.version_id, ops,
                                          None, section_id=dev.section_id)
    se = state.vmstate_register(dev.vmsd, dev.values, dev.instance_id, idstr=dev.idstr,
                                section_id=dev.section_id)
    se.version_id = dev.version_id
    return se


def config_from_stream(stream: Stream) -> MigrationConfig:
    cfg = MigrationConfig()
    c: Configuration | None = stream.configuration
    cfg.send_configuration = c is not None
    if c is not None:
        cfg.machine_type = c.machine
        for cap in c.capabilities:
            cfg.capabilities[cap] = True
        if c.uuid is not None:
            cfg.uuid = c.uuid
            cfg.capabilities["validate-uuid"] = True
        for sub in c.subsections:
            if sub.name == "configuration/target-page-bits":
                cfg.target_page_bits = int(sub.value)
    cfg.send_section_footer = bool(stream.footers)
    postcopy = any(x.cmd == MigCmd.MIG_CMD_PACKAGED for x in stream.commands)
    cfg.suppress_vmdesc = stream.vmdesc_source != "stream" and not postcopy
    return cfg


def ram_blocks_from_stream(stream: Stream) -> list[RAMBlock]:
    blocks: list[RAMBlock] = []
    offset = 0
    for b in stream.ram.blocks:
        if not b.listed:
            continue
        blocks.append(RAMBlock(b.idstr, b.used_length, None,
                               b.page_size or TARGET_PAGE_SIZE, b.addr or 0, offset))
        offset += b.used_length
    return blocks


def infer_compress_level(stream: Stream) -> int:
    """The compress-level parameter, from the first COMPRESS_PAGE record (default 1).

    The zlib header's FLEVEL narrows it down; levels sharing a FLEVEL are told apart by
    recompressing that page.
    """
    ram = stream.ram
    for i in range(len(ram)):
        if ram.addr_flags[i] & 0xFDF != 0x100:
            continue
        p = ram.payload_pos[i]
        n = int.from_bytes(stream.buf[p : p + 4], "big")
        blob = bytes(stream.buf[p + 4 : p + 4 + n])
        page = zlib.decompress(blob)
        for level in _FLEVEL_CANDIDATES.get(blob[1] >> 6, (1,)):
            c = zlib.compressobj(level)
            if c.compress(page) + c.flush() == blob:
                return level
        return 1
    return 1


_FLEVEL_CANDIDATES = {0: (1, 0), 1: (2, 3, 4, 5), 2: (6,), 3: (7, 8, 9)}


# -- replay -------------------------------------------------------------------------------


@dataclass
class _Replay:
    stream: Stream
    cfg: MigrationConfig
    ram: RAMState
    blocks: dict[str, RAMBlock]
    entries: dict[int, SaveStateEntry] = field(default_factory=dict)
    content: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def ram_section(self, f: QEMUFile, sec: Section) -> None:
        stream = self.stream
        ram = stream.ram
        first, last = sec.ram_rows
        for i in range(first, last):
            v = ram.addr_flags[i]
            kind = v & 0xFDF
            if kind == 0x004:
                self.ram.send_block_list(f)
                continue
            if kind == 0x010:
                self.ram.send_eos(f)
                continue
            if kind == 0x200:
                f.put_be64(v)
                continue
            bi = ram.block[i]
            key = (bi, v & ~0xFFF)
            before = self.content.get(key)
            after = page_bytes(stream, i, before)
            self.content[key] = after
            block = self.blocks[ram.blocks[bi].idstr]
            page = (v & ~0xFFF) // TARGET_PAGE_SIZE
            if kind == 0x002:
                self.ram.send_zero(f, block, page, stream.buf[ram.payload_pos[i]])
            elif kind == 0x008:
                self.ram.send_page(f, block, page, after)
            elif kind == 0x040:
                encoded = xbzrle.encode(before if before is not None else bytes(4096), after)
                if not encoded:
                    raise TemplateError(f"XBZRLE record at {ram.rec_pos[i]} does not re-encode")
                self.ram.send_xbzrle(f, block, page, encoded)
            elif kind == 0x100:
                self.ram.send_compressed(f, block, page, after)

    def items(self, f: QEMUFile, items: list[Any], in_package: bool) -> None:
        k = 0
        while k < len(items):
            item = items[k]
            if isinstance(item, Configuration):
                k += 1
                continue
            if isinstance(item, Command):
                k = self.command(f, items, k)
                continue
            if isinstance(item, Section) and item.type == SectionType.QEMU_VM_SECTION_FULL:
                group: list[SaveStateEntry] = []
                while (k < len(items) and isinstance(items[k], Section)
                       and items[k].type == SectionType.QEMU_VM_SECTION_FULL):
                    group.append(self.entries[items[k].index])
                    k += 1
                ends = k < len(items) and items[k].type == SectionType.QEMU_VM_EOF
                if not ends and not in_package:
                    raise TemplateError("FULL sections not followed by EOF outside a package")
                qemu_savevm_state_complete_precopy_non_iterable(
                    f, SaveVMState(), self.cfg, in_postcopy=in_package, entries=group)
                k += 1 if ends else 0
                continue
            if isinstance(item, Section):
                se = self.entries.get(item.index)
                if se is None:
                    raise TemplateError(f"cannot re-emit {item.label} at {item.offset}")
                save_section_header(f, se, item.type)
                if item.is_ram:
                    self.ram_section(f, item)
                else:
                    raise TemplateError(f"live device section {item.where} is not supported")
                save_section_footer(f, se, self.cfg)
                k += 1
                continue
            if item.type == SectionType.QEMU_VM_EOF:
                f.put_byte(SectionType.QEMU_VM_EOF)
                k += 1
                continue
            raise TemplateError(f"cannot re-emit item {item.label} at {item.offset}")

    def command(self, f: QEMUFile, items: list[Any], k: int) -> int:
        cmd: Command = items[k]
        if cmd.cmd in (MigCmd.MIG_CMD_POSTCOPY_RAM_DISCARD, MigCmd.MIG_CMD_PACKAGED):
            self.ram.postcopy_discard_reset()
        if cmd.cmd == MigCmd.MIG_CMD_PACKAGED:
            inner = [x for x in items[k + 1 :] if x.parent == cmd.index]
            blob = QEMUFile()
            self.items(blob, inner, in_package=True)
            qemu_savevm_send_packaged(f, blob.getvalue())
            return k + 1 + len(inner)
        a = cmd.args
        if cmd.cmd == MigCmd.MIG_CMD_PING:
            qemu_savevm_send_ping(f, a["value"])
        elif cmd.cmd == MigCmd.MIG_CMD_OPEN_RETURN_PATH:
            qemu_savevm_send_open_return_path(f)
        elif cmd.cmd == MigCmd.MIG_CMD_POSTCOPY_ADVISE:
            qemu_savevm_send_postcopy_advise(f, a.get("ram_page_size_summary"))
        elif cmd.cmd == MigCmd.MIG_CMD_POSTCOPY_LISTEN:
            qemu_savevm_send_postcopy_listen(f)
        elif cmd.cmd == MigCmd.MIG_CMD_POSTCOPY_RUN:
            qemu_savevm_send_postcopy_run(f)
        elif cmd.cmd == MigCmd.MIG_CMD_POSTCOPY_RAM_DISCARD:
            qemu_savevm_send_postcopy_ram_discard(f, a["block"], a["ranges"])
        else:
            payload = self.stream.read(a["payload_offset"], cmd.len_data)
            qemu_savevm_command_send(f, cmd.cmd, payload)
        return k + 1


def replay(stream: Stream, out: BinaryIO) -> None:
    """Re-emit `stream` through the writer with the same section partition."""
    if stream.errors:
        raise TemplateError(f"the template does not decode: {stream.errors[0]}")
    cfg = config_from_stream(stream)
    blocks = ram_blocks_from_stream(stream)
    compress_level = infer_compress_level(stream)
    ram = RAMState(blocks, compress_level=compress_level,
                   ignore_shared=cfg.cap("x-ignore-shared"),
                   postcopy=any(c.cmd == MigCmd.MIG_CMD_POSTCOPY_ADVISE and
                                c.len_data == 16 for c in stream.commands))
    rp = _Replay(stream, cfg, ram, {b.idstr: b for b in blocks})
    state = SaveVMState()
    ram_entry: SaveStateEntry | None = None
    for sec in stream.sections:
        if sec.is_ram:
            if ram_entry is None:
                ram_entry = state.register_savevm_live("ram", sec.instance_id, sec.version_id,
                                                       ram.handlers(), ram,
                                                       section_id=sec.section_id)
            rp.entries[sec.index] = ram_entry
        elif sec.type == SectionType.QEMU_VM_SECTION_FULL:
            rp.entries[sec.index] = register_device(state, device_from_section(stream, sec))
    f = QEMUFile(out)
    qemu_savevm_state_header(f, cfg)
    rp.items(f, stream.items, in_package=False)
    f.flush()
