"""QEMU migration wire constants under QEMU's own names (savevm.h, ram.c, vmstate-types.c).

Every name here can be grepped in the QEMU 7.2 source; the enums mirror the ones in
formats/qemu_migration.ksy.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

QEMU_VM_FILE_MAGIC = 0x5145564D
QEMU_VM_FILE_VERSION = 3
QEMU_VM_FILE_VERSION_COMPAT = 2

TARGET_PAGE_BITS = 12
TARGET_PAGE_SIZE = 1 << TARGET_PAGE_BITS
TARGET_PAGE_MASK = ~(TARGET_PAGE_SIZE - 1)

ENCODING_FLAG_XBZRLE = 0x01
VMS_NULLPTR_MARKER = 0x30
COMPRESS_BOUND_PAGE = 4110
"""zlib compressBound(TARGET_PAGE_SIZE): the loader's limit for a COMPRESS_PAGE length."""


class SectionType(IntEnum):
    """The byte that starts every top-level item (savevm.h QEMU_VM_*)."""

    QEMU_VM_EOF = 0x00
    QEMU_VM_SECTION_START = 0x01
    QEMU_VM_SECTION_PART = 0x02
    QEMU_VM_SECTION_END = 0x03
    QEMU_VM_SECTION_FULL = 0x04
    QEMU_VM_SUBSECTION = 0x05
    QEMU_VM_VMDESCRIPTION = 0x06
    QEMU_VM_CONFIGURATION = 0x07
    QEMU_VM_COMMAND = 0x08
    QEMU_VM_SECTION_FOOTER = 0x7E

    @property
    def short(self) -> str:
        """START, PART, END, FULL, EOF, ... as QEMU developers say them."""
        return self.name.removeprefix("QEMU_VM_").removeprefix("SECTION_")


class RamFlag(IntFlag):
    """RAM_SAVE_FLAG_* from ram.c; they live in the low bits of each record's be64 header."""

    RAM_SAVE_FLAG_FULL = 0x01
    RAM_SAVE_FLAG_ZERO = 0x02
    RAM_SAVE_FLAG_MEM_SIZE = 0x04
    RAM_SAVE_FLAG_PAGE = 0x08
    RAM_SAVE_FLAG_EOS = 0x10
    RAM_SAVE_FLAG_CONTINUE = 0x20
    RAM_SAVE_FLAG_XBZRLE = 0x40
    RAM_SAVE_FLAG_HOOK = 0x80
    RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100
    RAM_SAVE_FLAG_MULTIFD_FLUSH = 0x200


RAM_KINDS: dict[int, str] = {
    RamFlag.RAM_SAVE_FLAG_ZERO: "ZERO",
    RamFlag.RAM_SAVE_FLAG_MEM_SIZE: "MEM_SIZE",
    RamFlag.RAM_SAVE_FLAG_PAGE: "PAGE",
    RamFlag.RAM_SAVE_FLAG_EOS: "EOS",
    RamFlag.RAM_SAVE_FLAG_XBZRLE: "XBZRLE",
    RamFlag.RAM_SAVE_FLAG_COMPRESS_PAGE: "COMPRESS_PAGE",
    RamFlag.RAM_SAVE_FLAG_MULTIFD_FLUSH: "MULTIFD_FLUSH",
}
"""Record kinds by `flags & ~CONTINUE`, the value ram_load_precopy switches on."""

PAGE_KINDS = frozenset(
    {
        RamFlag.RAM_SAVE_FLAG_ZERO,
        RamFlag.RAM_SAVE_FLAG_PAGE,
        RamFlag.RAM_SAVE_FLAG_XBZRLE,
        RamFlag.RAM_SAVE_FLAG_COMPRESS_PAGE,
    }
)
"""Record kinds that carry one page and (without CONTINUE) a RAM block name."""


class MigCmd(IntEnum):
    """enum qemu_vm_cmd (savevm.c), the payload of QEMU_VM_COMMAND."""

    MIG_CMD_INVALID = 0
    MIG_CMD_OPEN_RETURN_PATH = 1
    MIG_CMD_PING = 2
    MIG_CMD_POSTCOPY_ADVISE = 3
    MIG_CMD_POSTCOPY_LISTEN = 4
    MIG_CMD_POSTCOPY_RUN = 5
    MIG_CMD_POSTCOPY_RAM_DISCARD = 6
    MIG_CMD_PACKAGED = 7
    MIG_CMD_ENABLE_COLO = 8
    MIG_CMD_POSTCOPY_RESUME = 9
    MIG_CMD_RECV_BITMAP = 10

    @property
    def short(self) -> str:
        return self.name.removeprefix("MIG_CMD_")


MIG_CMD_FIXED_LEN: dict[int, int] = {
    MigCmd.MIG_CMD_OPEN_RETURN_PATH: 0,
    MigCmd.MIG_CMD_PING: 4,
    MigCmd.MIG_CMD_POSTCOPY_LISTEN: 0,
    MigCmd.MIG_CMD_POSTCOPY_RUN: 0,
    MigCmd.MIG_CMD_PACKAGED: 4,
    MigCmd.MIG_CMD_ENABLE_COLO: 0,
    MigCmd.MIG_CMD_POSTCOPY_RESUME: 0,
}
"""mig_cmd_args lengths that the 7.2 loader enforces (-1, variable, for the others)."""

INT_INFOS: dict[str, tuple[int, bool]] = {
    "bool": (1, False),
    "int8": (1, True),
    "int16": (2, True),
    "int32": (4, True),
    "int64": (8, True),
    "uint8": (1, False),
    "uint16": (2, False),
    "uint32": (4, False),
    "uint64": (8, False),
    "int32 equal": (4, True),
    "int32 le": (4, True),
    "uint32 equal": (4, False),
    "int64 equal": (8, False),
    "uint8 equal": (1, False),
    "uint16 equal": (2, False),
    "timer": (8, True),
    "CPU_Double_U": (8, False),
    "int32_as_uint16": (2, False),
    "uint16_from_uint8": (1, False),
}
"""VMStateInfo names whose wire encoding is one big-endian integer: (size, signed).

"int64 equal" is the uint64-equal info (vmstate_info_uint64_equal); "timer" is the expiry in ns
(-1 when not armed); CPU_Double_U is the upper be32 then the lower be32, i.e. one be64.
"""

STRUCT_TYPES = frozenset({"struct"})
NESTED_VMSD_TYPES = frozenset({"vstruct", "tmp", "qtailq", "qlist", "gtree"})
"""Field types whose vmdesc object carries the nested vmsd's keys directly (vmstate.c)."""
