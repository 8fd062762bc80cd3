"""The save side of migration/savevm.c: SaveStateEntry registry and the stream phases.

`SaveVMState` holds the handler list in QEMU's order (descending vmsd priority, registration
order within a priority) and hands out section ids the way QEMU does (a global counter; entries
that write nothing still use up an id). The phase functions write exactly what 7.2 writes:
`qemu_savevm_state_header` (magic, version, configuration), `qemu_savevm_state_setup` (START
sections), `qemu_savevm_state_iterate` (PART sections, stopping at the first handler that is
not finished), `qemu_savevm_state_complete_precopy` (END sections, FULL sections with the
vmdesc built while saving, EOF, VMDESCRIPTION), and the QEMU_VM_COMMAND senders.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from formats.constants import (
    QEMU_VM_FILE_MAGIC,
    QEMU_VM_FILE_VERSION,
    TARGET_PAGE_BITS,
    TARGET_PAGE_SIZE,
    MigCmd,
    SectionType,
)
from savevm.json_writer import JSONWriter
from savevm.qemu_file import QEMUFile
from savevm.vmstate import (
    F,
    MigrationPriority,
    VMStateDescription,
    VMStateField,
    info,
    vmstate_save_needed,
    vmstate_save_state,
)

log = logging.getLogger(__name__)

VMSTATE_INSTANCE_ID_ANY = -1

SaveFn = Callable[[QEMUFile, Any], int]


@dataclass
class SaveVMHandlers:
    """struct SaveVMHandlers (7.2): the callbacks of an old-style or live handler."""

    save_setup: SaveFn | None = None
    save_live_iterate: SaveFn | None = None
    """Returns 1 when finished, 0 when more remains (negative on error)."""
    save_live_complete_precopy: SaveFn | None = None
    save_live_complete_postcopy: SaveFn | None = None
    save_state: Callable[[QEMUFile, Any], None] | None = None
    """Old-style (non-vmsd) state, written as a FULL section with a "data" buffer vmdesc."""
    save_live_pending: Callable[[Any, int], tuple[int, int, int]] | None = None
    """7.2's pending estimate: (precopy_only, compatible, postcopy_only) bytes, given the
    threshold; later QEMUs split it into state_pending_estimate / state_pending_exact."""
    state_pending_estimate: Callable[[Any], tuple[int, int, int]] | None = None
    state_pending_exact: Callable[[Any], tuple[int, int, int]] | None = None
    """The 8.x split of save_live_pending, accepted too: the exact figure is asked for only
    when the estimate falls below the threshold (migration.c migration_iteration_run)."""
    is_active: Callable[[Any], bool] | None = None
    is_active_iterate: Callable[[Any], bool] | None = None
    has_postcopy: Callable[[Any], bool] | None = None
    save_cleanup: Callable[[Any], None] | None = None


@dataclass(eq=False)
class SaveStateEntry:
    """One registered entry: a live/old-style handler or a vmsd device."""

    idstr: str
    instance_id: int
    section_id: int
    version_id: int
    ops: SaveVMHandlers | None = None
    vmsd: VMStateDescription | None = None
    opaque: Any = None
    alias_id: int = -1

    @property
    def priority(self) -> int:
        return int(self.vmsd.priority) if self.vmsd is not None else 0


@dataclass
class MigrationConfig:
    """What decides the optional parts of the stream (migration object and machine props)."""

    machine_type: str = "pc-i440fx-7.2"
    send_configuration: bool = True
    send_section_footer: bool = True
    suppress_vmdesc: bool = False
    capabilities: dict[str, bool] = field(default_factory=dict)
    uuid: bytes | None = None
    target_page_bits: int | None = None
    """Only written when above the target minimum (never on x86)."""

    def cap(self, name: str) -> bool:
        return bool(self.capabilities.get(name, False))


class SaveVMState:
    """savevm_state: the ordered handler list and the section id counter."""

    def __init__(self) -> None:
        self.handlers: list[SaveStateEntry] = []
        self.global_section_id = 0

    def _insert(self, nse: SaveStateEntry) -> None:
        """savevm_state_handler_insert: before the first entry of a lower priority."""
        for i, se in enumerate(self.handlers):
            if se.priority < nse.priority:
                self.handlers.insert(i, nse)
                return
        self.handlers.append(nse)

    def _new_instance_id(self, idstr: str) -> int:
        """calculate_new_instance_id: one more than the highest instance of this idstr."""
        ids = [se.instance_id for se in self.handlers if se.idstr == idstr]
        return max(ids) + 1 if ids else 0

    def _section_id(self, section_id: int | None) -> int:
        if section_id is None:
            section_id = self.global_section_id
        self.global_section_id = max(self.global_section_id, section_id + 1)
        return section_id

    def register_savevm_live(
        self,
        idstr: str,
        instance_id: int,
        version_id: int,
        ops: SaveVMHandlers,
        opaque: Any,
        section_id: int | None = None,
    ) -> SaveStateEntry:
        """register_savevm_live; `section_id` reproduces a capture's numbering."""
        if instance_id == VMSTATE_INSTANCE_ID_ANY:
            instance_id = self._new_instance_id(idstr)
        se = SaveStateEntry(idstr, instance_id, self._section_id(section_id), version_id,
                            ops=ops, opaque=opaque)
        self._insert(se)
        return se

    def vmstate_register(
        self,
        vmsd: VMStateDescription,
        opaque: Any,
        instance_id: int = VMSTATE_INSTANCE_ID_ANY,
        dev_path: str | None = None,
        alias_id: int = -1,
        section_id: int | None = None,
        idstr: str | None = None,
    ) -> SaveStateEntry:
        """vmstate_register_with_alias_id: idstr is "dev_path/vmsd name" or the vmsd name."""
        if idstr is None:
            idstr = f"{dev_path}/{vmsd.name}" if dev_path else vmsd.name
        if instance_id == VMSTATE_INSTANCE_ID_ANY:
            instance_id = self._new_instance_id(idstr)
        se = SaveStateEntry(idstr, instance_id, self._section_id(section_id), vmsd.version_id,
                            vmsd=vmsd, opaque=opaque, alias_id=alias_id)
        self._insert(se)
        return se

    def find(self, idstr: str, instance_id: int = 0) -> SaveStateEntry | None:
        for se in self.handlers:
            if se.idstr == idstr and se.instance_id == instance_id:
                return se
        return None


# -- configuration ----------------------------------------------------------------------

VALIDATED_CAPABILITIES = ("x-ignore-shared",)
"""7.2 check_migration_capabilities: the only capability the configuration validates."""


def _configuration_vmsd(cfg: MigrationConfig) -> VMStateDescription:
    caps = VMStateDescription(
        "configuration/capabilities", 1, 1,
        fields=[
            VMStateField("caps_count", info("uint32"), 4),
            VMStateField("capabilities", info("capability"), 0,
                         F.VMS_VARRAY_UINT32 | F.VMS_POINTER, num_field="caps_count"),
        ],
        needed=lambda o: bool(o["caps_count"]),
    )
    uuid = VMStateDescription(
        "configuration/uuid", 1, 1,
        fields=[VMStateField("uuid", info("buffer"), 16)],
        needed=lambda o: cfg.cap("validate-uuid") and o["uuid"] is not None,
    )
    page_bits = VMStateDescription(
        "configuration/target-page-bits", 1, 1,
        fields=[VMStateField("target_page_bits", info("uint32"), 4)],
        needed=lambda o: o["target_page_bits"] is not None
        and o["target_page_bits"] > TARGET_PAGE_BITS,
    )
    return VMStateDescription(
        "configuration", 1, 0,
        fields=[
            VMStateField("len", info("uint32"), 4),
            VMStateField("name", info("buffer"), 0, F.VMS_VBUFFER | F.VMS_ALLOC,
                         size_field="len"),
        ],
        subsections=[page_bits, caps, uuid],
    )


def qemu_savevm_state_header(f: QEMUFile, cfg: MigrationConfig) -> None:
    f.put_be32(QEMU_VM_FILE_MAGIC)
    f.put_be32(QEMU_VM_FILE_VERSION)
    if cfg.send_configuration:
        name = cfg.machine_type.encode()
        caps = [c for c in VALIDATED_CAPABILITIES if cfg.cap(c)]
        opaque = {
            "len": len(name), "name": name, "caps_count": len(caps), "capabilities": caps,
            "uuid": cfg.uuid, "target_page_bits": cfg.target_page_bits,
        }
        f.put_byte(SectionType.QEMU_VM_CONFIGURATION)
        vmstate_save_state(f, _configuration_vmsd(cfg), opaque, None, path="configuration")


# -- sections ---------------------------------------------------------------------------


def save_section_header(f: QEMUFile, se: SaveStateEntry, section_type: SectionType) -> None:
    f.put_byte(section_type)
    f.put_be32(se.section_id)
    if section_type in (SectionType.QEMU_VM_SECTION_FULL, SectionType.QEMU_VM_SECTION_START):
        f.put_counted_string(se.idstr)
        f.put_be32(se.instance_id)
        f.put_be32(se.version_id)


def save_section_footer(f: QEMUFile, se: SaveStateEntry, cfg: MigrationConfig) -> None:
    if cfg.send_section_footer:
        f.put_byte(SectionType.QEMU_VM_SECTION_FOOTER)
        f.put_be32(se.section_id)


def _active(se: SaveStateEntry) -> bool:
    return se.ops is None or se.ops.is_active is None or se.ops.is_active(se.opaque)


def qemu_savevm_state_setup(f: QEMUFile, state: SaveVMState, cfg: MigrationConfig) -> None:
    for se in state.handlers:
        if se.ops is None or se.ops.save_setup is None or not _active(se):
            continue
        save_section_header(f, se, SectionType.QEMU_VM_SECTION_START)
        ret = se.ops.save_setup(f, se.opaque)
        save_section_footer(f, se, cfg)
        if ret < 0:
            raise RuntimeError(f"save_setup of {se.idstr} failed: {ret}")


def qemu_savevm_state_iterate(f: QEMUFile, state: SaveVMState, cfg: MigrationConfig,
                              postcopy: bool = False) -> int:
    """One iterate pass: 1 when every live handler is done, 0 otherwise (7.2 semantics)."""
    ret = 1
    for se in state.handlers:
        ops = se.ops
        if ops is None or ops.save_live_iterate is None or not _active(se):
            continue
        if ops.is_active_iterate is not None and not ops.is_active_iterate(se.opaque):
            continue
        if postcopy and not (ops.has_postcopy is not None and ops.has_postcopy(se.opaque)):
            continue
        if f.rate_limit():
            return 0
        save_section_header(f, se, SectionType.QEMU_VM_SECTION_PART)
        ret = ops.save_live_iterate(f, se.opaque)
        save_section_footer(f, se, cfg)
        if ret < 0:
            raise RuntimeError(f"save_live_iterate of {se.idstr} failed: {ret}")
        if ret <= 0:
            break
    return ret


def qemu_savevm_state_pending(state: SaveVMState, threshold: int) -> tuple[int, int, int]:
    pre = compat = post = 0
    for se in state.handlers:
        ops = se.ops
        if ops is None or not _active(se):
            continue
        if ops.save_live_pending is not None:
            a, b, c = ops.save_live_pending(se.opaque, threshold)
        elif ops.state_pending_estimate is not None:
            a, b, c = ops.state_pending_estimate(se.opaque)
            if a + b + c < threshold and ops.state_pending_exact is not None:
                a, b, c = ops.state_pending_exact(se.opaque)
        else:
            continue
        pre, compat, post = pre + a, compat + b, post + c
    return pre, compat, post


def qemu_savevm_state_complete_precopy_iterable(
    f: QEMUFile, state: SaveVMState, cfg: MigrationConfig, in_postcopy: bool = False
) -> None:
    for se in state.handlers:
        ops = se.ops
        if ops is None or ops.save_live_complete_precopy is None:
            continue
        if in_postcopy and ops.has_postcopy is not None and ops.has_postcopy(se.opaque):
            continue
        if not _active(se):
            continue
        save_section_header(f, se, SectionType.QEMU_VM_SECTION_END)
        ret = ops.save_live_complete_precopy(f, se.opaque)
        save_section_footer(f, se, cfg)
        if ret < 0:
            raise RuntimeError(f"save_live_complete_precopy of {se.idstr} failed: {ret}")


def vmstate_save(f: QEMUFile, se: SaveStateEntry, vmdesc: JSONWriter | None) -> None:
    if se.vmsd is None:
        assert se.ops is not None and se.ops.save_state is not None
        start = f.total_transferred
        se.ops.save_state(f, se.opaque)
        size = f.total_transferred - start
        if vmdesc is not None:
            vmdesc.int64("size", size)
            vmdesc.start_array("fields")
            vmdesc.start_object()
            vmdesc.string("name", "data")
            vmdesc.int64("size", size)
            vmdesc.string("type", "buffer")
            vmdesc.end_object()
            vmdesc.end_array()
        return
    vmstate_save_state(f, se.vmsd, se.opaque, vmdesc, path=se.idstr)


def qemu_savevm_state_complete_precopy_non_iterable(
    f: QEMUFile,
    state: SaveVMState,
    cfg: MigrationConfig,
    in_postcopy: bool = False,
    entries: list[SaveStateEntry] | None = None,
) -> str:
    """FULL sections, EOF (unless in postcopy) and the vmdesc; returns the vmdesc text."""
    vmdesc = JSONWriter()
    vmdesc.start_object()
    vmdesc.int64("page_size", TARGET_PAGE_SIZE)
    vmdesc.start_array("devices")
    for se in entries if entries is not None else state.handlers:
        if (se.ops is None or se.ops.save_state is None) and se.vmsd is None:
            continue
        if se.vmsd is not None and not vmstate_save_needed(se.vmsd, se.opaque):
            continue
        vmdesc.start_object()
        vmdesc.string("name", se.idstr)
        vmdesc.int64("instance_id", se.instance_id)
        save_section_header(f, se, SectionType.QEMU_VM_SECTION_FULL)
        vmstate_save(f, se, vmdesc)
        save_section_footer(f, se, cfg)
        vmdesc.end_object()
    if not in_postcopy:
        f.put_byte(SectionType.QEMU_VM_EOF)
    vmdesc.end_array()
    vmdesc.end_object()
    text = vmdesc.get()
    if not cfg.suppress_vmdesc and not in_postcopy:
        data = text.encode("utf-8")
        f.put_byte(SectionType.QEMU_VM_VMDESCRIPTION)
        f.put_be32(len(data))
        f.put_buffer(data)
    return text


def qemu_savevm_state_complete_precopy(
    f: QEMUFile, state: SaveVMState, cfg: MigrationConfig, iterable_only: bool = False,
    in_postcopy: bool = False,
) -> None:
    if not in_postcopy or iterable_only:
        qemu_savevm_state_complete_precopy_iterable(f, state, cfg, in_postcopy)
    if not iterable_only:
        qemu_savevm_state_complete_precopy_non_iterable(f, state, cfg, in_postcopy)
    f.flush()


# -- commands ---------------------------------------------------------------------------


def qemu_savevm_command_send(f: QEMUFile, cmd: MigCmd | int, data: bytes = b"") -> None:
    if len(data) > 0xFFFF:
        raise ValueError(f"command payload of {len(data)} bytes exceeds 65535")
    f.put_byte(SectionType.QEMU_VM_COMMAND)
    f.put_be16(int(cmd))
    f.put_be16(len(data))
    f.put_buffer(data)


def qemu_savevm_send_open_return_path(f: QEMUFile) -> None:
    qemu_savevm_command_send(f, MigCmd.MIG_CMD_OPEN_RETURN_PATH)


def qemu_savevm_send_ping(f: QEMUFile, value: int) -> None:
    """Only valid on a stream with a return path: a file-loading QEMU rejects PING."""
    qemu_savevm_command_send(f, MigCmd.MIG_CMD_PING, struct.pack(">I", value))


def qemu_savevm_send_postcopy_advise(f: QEMUFile, page_size_summary: int | None) -> None:
    data = b"" if page_size_summary is None else struct.pack(
        ">QQ", page_size_summary, TARGET_PAGE_SIZE)
    qemu_savevm_command_send(f, MigCmd.MIG_CMD_POSTCOPY_ADVISE, data)


def qemu_savevm_send_postcopy_listen(f: QEMUFile) -> None:
    qemu_savevm_command_send(f, MigCmd.MIG_CMD_POSTCOPY_LISTEN)


def qemu_savevm_send_postcopy_run(f: QEMUFile) -> None:
    qemu_savevm_command_send(f, MigCmd.MIG_CMD_POSTCOPY_RUN)


def qemu_savevm_send_postcopy_ram_discard(
    f: QEMUFile, block: str, ranges: list[tuple[int, int]]
) -> None:
    name = block.encode("latin-1")
    data = bytes((0, len(name))) + name + b"\x00"
    data += b"".join(struct.pack(">QQ", start, length) for start, length in ranges)
    qemu_savevm_command_send(f, MigCmd.MIG_CMD_POSTCOPY_RAM_DISCARD, data)


def qemu_savevm_send_packaged(f: QEMUFile, blob: bytes) -> None:
    qemu_savevm_command_send(f, MigCmd.MIG_CMD_PACKAGED, struct.pack(">I", len(blob)))
    f.put_buffer(blob)


PRIORITY = MigrationPriority
