"""VMStateDescription, VMStateField, VMStateInfo and the encoder, as migration/vmstate.c has them.

A device's state ("opaque") is a dict keyed by field name (the unique name QEMU's vmdesc uses:
`name`, or `name[k]` when the field table repeats a name). Arrays are lists, structs are dicts,
NULL pointer elements are None. `vmstate_save_state` writes the fields that pass version gating
and `field_exists`, then the needed subsections, and builds the vmdesc JSON exactly as QEMU
does: `[k]` names, `array_len` for compressible arrays (first element only), `index` otherwise,
nested struct objects, inline vmsd keys for vstruct/tmp/qtailq/qlist/gtree, sizes measured
from the bytes written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

from formats.constants import INT_INFOS, VMS_NULLPTR_MARKER
from formats.errors import MigstreamError
from savevm.json_writer import JSONWriter
from savevm.qemu_file import QEMUFile

Opaque = Any


class VMStateError(MigstreamError):
    """A value cannot be encoded by its field: wrong type, length or range."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class VMStateFlags(IntFlag):
    """enum VMStateFlags (include/migration/vmstate.h)."""

    VMS_SINGLE = 0x001
    VMS_POINTER = 0x002
    VMS_ARRAY = 0x004
    VMS_STRUCT = 0x008
    VMS_VARRAY_INT32 = 0x010
    VMS_BUFFER = 0x020
    VMS_ARRAY_OF_POINTER = 0x040
    VMS_VARRAY_UINT16 = 0x080
    VMS_VBUFFER = 0x100
    VMS_MULTIPLY = 0x200
    VMS_VARRAY_UINT8 = 0x400
    VMS_VARRAY_UINT32 = 0x800
    VMS_MUST_EXIST = 0x1000
    VMS_ALLOC = 0x2000
    VMS_MULTIPLY_ELEMENTS = 0x4000
    VMS_VSTRUCT = 0x8000


F = VMStateFlags
_VARRAY = F.VMS_VARRAY_INT32 | F.VMS_VARRAY_UINT32 | F.VMS_VARRAY_UINT16 | F.VMS_VARRAY_UINT8


class MigrationPriority(IntEnum):
    """enum MigrationPriority (7.2): higher priorities are saved first."""

    MIG_PRI_DEFAULT = 0
    MIG_PRI_IOMMU = 1
    MIG_PRI_PCI_BUS = 2
    MIG_PRI_VIRTIO_MEM = 3
    MIG_PRI_GICV3_ITS = 4
    MIG_PRI_GICV3 = 5


# -- VMStateInfo ------------------------------------------------------------------------


class VMStateInfo:
    """How one element is put on the wire; `name` is the vmdesc "type"."""

    name = "unknown"

    def put(self, f: QEMUFile, value: Any, size: int, fld: VMStateField,
            vmdesc: JSONWriter | None, path: str) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<VMStateInfo {self.name}>"


class IntInfo(VMStateInfo):
    """bool, int8..uint64, the *equal / le variants, timer, CPU_Double_U."""

    def __init__(self, name: str, nbytes: int, signed: bool) -> None:
        self.name = name
        self.nbytes = nbytes
        self.signed = signed

    def put(self, f: QEMUFile, value: Any, size: int, fld: VMStateField,
            vmdesc: JSONWriter | None, path: str) -> None:
        if self.name == "bool":
            if not isinstance(value, bool | int):
                raise VMStateError(f"expected a bool, got {value!r}", path)
            f.put_byte(1 if value else 0)
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise VMStateError(f"expected an integer for {self.name}, got {value!r}", path)
        try:
            f.put_buffer(value.to_bytes(self.nbytes, "big", signed=self.signed))
        except OverflowError:
            lo = -(1 << (8 * self.nbytes - 1)) if self.signed else 0
            hi = (1 << (8 * self.nbytes - (1 if self.signed else 0))) - 1
            raise VMStateError(f"{value} is out of range for {self.name} [{lo}, {hi}]",
                               path) from None


class BufferInfo(VMStateInfo):
    """buffer, unused_buffer, bitmap, and opaque device infos (pci config, virtio, ...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def put(self, f: QEMUFile, value: Any, size: int, fld: VMStateField,
            vmdesc: JSONWriter | None, path: str) -> None:
        if self.name == "unused_buffer" and value is None:
            value = bytes(size)
        if not isinstance(value, bytes | bytearray):
            raise VMStateError(f"expected {size} bytes for {self.name}, got {value!r}", path)
        if len(value) != size:
            raise VMStateError(f"expected {size} bytes for {self.name}, got {len(value)}", path)
        f.put_buffer(value)


class CapabilityInfo(VMStateInfo):
    """vmstate_info_capability: a counted string (configuration only)."""

    name = "capability"

    def put(self, f: QEMUFile, value: Any, size: int, fld: VMStateField,
            vmdesc: JSONWriter | None, path: str) -> None:
        f.put_counted_string(str(value))


class TmpInfo(VMStateInfo):
    """vmstate_info_tmp: the nested vmsd saved over a temporary (here: the value dict)."""

    name = "tmp"

    def put(self, f: QEMUFile, value: Any, size: int, fld: VMStateField,
            vmdesc: JSONWriter | None, path: str) -> None:
        assert fld.vmsd is not None
        vmstate_save_state(f, fld.vmsd, value, vmdesc, path=path)


class QTailQInfo(VMStateInfo):
    """vmstate_info_qtailq / qlist: 0x01 + element per element, then 0x00."""

    def __init__(self, name: str) -> None:
        self.name = name

    def put(self, f: QEMUFile, value: Any, size: int, fld: VMStateField,
            vmdesc: JSONWriter | None, path: str) -> None:
        assert fld.vmsd is not None
        if not isinstance(value, list):
            raise VMStateError(f"expected a list of elements for {self.name}", path)
        for i, elem in enumerate(value):
            f.put_byte(1)
            vmstate_save_state(f, fld.vmsd, elem, vmdesc, path=f"{path}[{i}]")
        f.put_byte(0)


class GTreeInfo(VMStateInfo):
    """vmstate_info_gtree: be32 count; per node 0x01, key (be64 or key vmsd), value; 0x00."""

    name = "gtree"

    def put(self, f: QEMUFile, value: Any, size: int, fld: VMStateField,
            vmdesc: JSONWriter | None, path: str) -> None:
        assert fld.vmsd is not None
        if not isinstance(value, list):
            raise VMStateError("expected a list of (key, value) pairs for gtree", path)
        f.put_be32(len(value))
        for i, (key, val) in enumerate(value):
            f.put_byte(1)
            if fld.key_vmsd is None:
                f.put_be64(int(key))
            else:
                vmstate_save_state(f, fld.key_vmsd, key, vmdesc, path=f"{path}[{i}].key")
            vmstate_save_state(f, fld.vmsd, val, vmdesc, path=f"{path}[{i}].value")
        f.put_byte(0)


INFOS: dict[str, VMStateInfo] = {
    name: IntInfo(name, n, signed) for name, (n, signed) in INT_INFOS.items()
}
INFOS.update({
    "tmp": TmpInfo(),
    "qtailq": QTailQInfo("qtailq"),
    "qlist": QTailQInfo("qlist"),
    "gtree": GTreeInfo(),
    "capability": CapabilityInfo(),
})


def info(name: str) -> VMStateInfo:
    """The VMStateInfo with this vmdesc type name; unknown names are opaque buffers."""
    found = INFOS.get(name)
    if found is None:
        found = INFOS[name] = BufferInfo(name)
    return found


# -- descriptions -----------------------------------------------------------------------


@dataclass(eq=False)
class VMStateField:
    """One entry of a VMStateDescription's field table."""

    name: str
    info: VMStateInfo | None = None
    size: int = 0
    flags: VMStateFlags = F.VMS_SINGLE
    num: int = 0
    version_id: int = 0
    field_exists: Callable[[Opaque, int], bool] | None = None
    vmsd: VMStateDescription | None = None
    key_vmsd: VMStateDescription | None = None
    """gtree only: the key's vmsd, None for direct (be64) keys."""
    struct_version_id: int = 0
    num_field: str | None = None
    """VARRAY: the field whose value is the element count."""
    size_field: str | None = None
    """VBUFFER: the field whose value is the element size."""
    key: str = ""
    """The name values are stored under and the vmdesc shows (set by the description)."""

    def type_name(self) -> str:
        """vmfield_get_type_name."""
        if self.flags & F.VMS_STRUCT:
            return "struct"
        if self.flags & F.VMS_VSTRUCT:
            return "vstruct"
        return self.info.name if self.info is not None else "unknown"

    def can_compress(self) -> bool:
        """vmsd_can_compress: arrays of it may be described by their first element."""
        if self.field_exists is not None:
            return False
        if self.flags & F.VMS_STRUCT:
            assert self.vmsd is not None
            if not all(sf.can_compress() for sf in self.vmsd.fields):
                return False
            if self.vmsd.subsections is not None:
                return False
        return True

    def exists(self, opaque: Opaque, version_id: int) -> bool:
        if self.field_exists is not None:
            return bool(self.field_exists(opaque, version_id))
        return self.version_id <= version_id

    def n_elems(self, opaque: Opaque) -> int:
        """vmstate_n_elems."""
        n = 1
        if self.flags & F.VMS_ARRAY:
            n = self.num
        elif self.flags & _VARRAY:
            assert self.num_field is not None
            n = int(opaque[self.num_field])
        if self.flags & F.VMS_MULTIPLY_ELEMENTS:
            n *= self.num
        return n

    def elem_size(self, opaque: Opaque) -> int:
        """vmstate_size."""
        if self.flags & F.VMS_VBUFFER:
            assert self.size_field is not None
            size = int(opaque[self.size_field])
            if self.flags & F.VMS_MULTIPLY:
                size *= self.size
            return size
        return self.size

    @property
    def is_array(self) -> bool:
        return bool(self.flags & (F.VMS_ARRAY | _VARRAY | F.VMS_MULTIPLY_ELEMENTS))


@dataclass(eq=False)
class VMStateDescription:
    """A VMStateDescription: name, versions, field table, subsection table, hooks."""

    name: str
    version_id: int = 0
    minimum_version_id: int = 0
    fields: list[VMStateField] = field(default_factory=list)
    subsections: list[VMStateDescription] | None = None
    """None when the vmsd has no subsections table (which makes arrays of it compressible)."""
    needed: Callable[[Opaque], bool] | None = None
    pre_save: Callable[[Opaque], None] | None = None
    priority: MigrationPriority = MigrationPriority.MIG_PRI_DEFAULT
    subsection_opaque: Callable[[Opaque, VMStateDescription], Opaque] | None = None
    """How a subsection finds its state in the parent's; QEMU passes the same opaque."""

    def __post_init__(self) -> None:
        counts: dict[str, int] = {}
        for fld in self.fields:
            counts[fld.name] = counts.get(fld.name, 0) + 1
        seen: dict[str, int] = {}
        for fld in self.fields:
            k = seen.get(fld.name, 0)
            seen[fld.name] = k + 1
            fld.key = f"{fld.name}[{k}]" if counts[fld.name] > 1 else fld.name

    def field(self, key: str) -> VMStateField | None:
        for fld in self.fields:
            if fld.key == key:
                return fld
        return None

    def subsection(self, name: str) -> VMStateDescription | None:
        for sub in self.subsections or []:
            if sub.name == name:
                return sub
        return None


def vmstate_save_needed(vmsd: VMStateDescription, opaque: Opaque) -> bool:
    return vmsd.needed is None or bool(vmsd.needed(opaque))


# -- the encoder ------------------------------------------------------------------------


def _value(opaque: Opaque, fld: VMStateField, path: str) -> Any:
    try:
        return opaque[fld.key]
    except (KeyError, TypeError, IndexError):
        raise VMStateError(f"no value for field {fld.key!r}", path) from None


def vmstate_save_state(
    f: QEMUFile,
    vmsd: VMStateDescription,
    opaque: Opaque,
    vmdesc: JSONWriter | None,
    version_id: int | None = None,
    path: str = "",
) -> None:
    """vmstate_save_state_v: fields, then subsections; vmdesc keys as QEMU writes them."""
    version = vmsd.version_id if version_id is None else version_id
    if vmsd.pre_save is not None:
        vmsd.pre_save(opaque)
    if vmdesc is not None:
        vmdesc.string("vmsd_name", vmsd.name)
        vmdesc.int64("version", version)
        vmdesc.start_array("fields")
    for fld in vmsd.fields:
        fpath = f"{path}/{fld.key}" if path else fld.key
        if not fld.exists(opaque, version):
            if fld.flags & F.VMS_MUST_EXIST:
                raise VMStateError("output state validation failed", fpath)
            continue
        n_elems = fld.n_elems(opaque)
        size = fld.elem_size(opaque)
        if n_elems == 0:
            continue
        value = _value(opaque, fld, fpath)
        if fld.is_array:
            if not isinstance(value, list) or len(value) != n_elems:
                got = len(value) if isinstance(value, list) else type(value).__name__
                raise VMStateError(f"expected a list of {n_elems} elements, got {got}", fpath)
            elems = value
        else:
            elems = [value]
        loop_desc = vmdesc
        compress = fld.can_compress()
        for i, elem in enumerate(elems):
            epath = f"{fpath}[{i}]" if fld.is_array else fpath
            if loop_desc is not None:
                _desc_field_start(vmsd, loop_desc, fld, i, n_elems, compress)
            start = f.total_transferred
            if elem is None and size and fld.flags & F.VMS_ARRAY_OF_POINTER:
                f.put_byte(VMS_NULLPTR_MARKER)
            elif elem is None and fld.flags & (F.VMS_STRUCT | F.VMS_VSTRUCT):
                raise VMStateError("NULL element outside an array of pointers", epath)
            elif fld.flags & F.VMS_STRUCT:
                assert fld.vmsd is not None
                vmstate_save_state(f, fld.vmsd, elem, loop_desc, path=epath)
            elif fld.flags & F.VMS_VSTRUCT:
                assert fld.vmsd is not None
                vmstate_save_state(f, fld.vmsd, elem, loop_desc, fld.struct_version_id,
                                   path=epath)
            else:
                assert fld.info is not None
                fld.info.put(f, elem, size, fld, loop_desc, epath)
            if loop_desc is not None:
                if fld.flags & F.VMS_STRUCT:
                    loop_desc.end_object()
                loop_desc.int64("size", f.total_transferred - start)
                loop_desc.end_object()
                if compress:
                    loop_desc = None
    if vmdesc is not None:
        vmdesc.end_array()
    _subsection_save(f, vmsd, opaque, vmdesc, path)


def _desc_field_start(vmsd: VMStateDescription, vmdesc: JSONWriter, fld: VMStateField,
                      i: int, n_elems: int, compress: bool) -> None:
    vmdesc.start_object()
    vmdesc.string("name", fld.key)
    if n_elems > 1:
        if compress:
            vmdesc.int64("array_len", n_elems)
        else:
            vmdesc.int64("index", i)
    vmdesc.string("type", fld.type_name())
    if fld.flags & F.VMS_STRUCT:
        vmdesc.start_object("struct")


def _subsection_save(f: QEMUFile, vmsd: VMStateDescription, opaque: Opaque,
                     vmdesc: JSONWriter | None, path: str) -> None:
    started = False
    for sub in vmsd.subsections or []:
        sub_opaque = (vmsd.subsection_opaque(opaque, sub) if vmsd.subsection_opaque
                      else opaque)
        if not vmstate_save_needed(sub, sub_opaque):
            continue
        if vmdesc is not None:
            if not started:
                vmdesc.start_array("subsections")
                started = True
            vmdesc.start_object()
        f.put_byte(0x05)
        f.put_counted_string(sub.name)
        f.put_be32(sub.version_id)
        vmstate_save_state(f, sub, sub_opaque, vmdesc,
                           path=f"{path}/{sub.name}" if path else sub.name)
        if vmdesc is not None:
            vmdesc.end_object()
    if started and vmdesc is not None:
        vmdesc.end_array()
