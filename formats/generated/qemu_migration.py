# Generated from qemu_migration.ksy by formats/tools/regenerate.sh (kaitai-struct-compiler 0.11.0). DO NOT EDIT.
# This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild
# type: ignore

import kaitaistruct
from kaitaistruct import KaitaiStruct, KaitaiStream, BytesIO
from formats import section_body
from enum import IntEnum


if getattr(kaitaistruct, 'API_VERSION', (0, 9)) < (0, 11):
    raise Exception("Incompatible Kaitai Struct Python API: 0.11 or later is required, but you have %s" % (kaitaistruct.__version__))

class QemuMigration(KaitaiStruct):
    """The wire grammar of a QEMU migration stream: what `migrate` writes to a file, a socket or an
    `exec:` pipe, and what `savevm` puts into a qcow2 vmstate area.
    
    All integers are big-endian with no padding. After the header and the optional configuration
    comes a sequence of items (sections and commands) closed by QEMU_VM_EOF, then an optional JSON
    VMDESCRIPTION that describes every device section written (savevm.c
    `qemu_savevm_state_complete_precopy_non_iterable`).
    
    Device section payloads carry no length, tags or counts: they are the concatenated VMState field
    encodings of the device's VMStateDescription, so they can only be framed with that description.
    This grammar hands them to the hand-written opaque type `section_body` (formats/section_body.py),
    which asks the `ctx` parameter (a decoding context built from the stream's own VMDESCRIPTION or
    from other descriptions) to decode them. RAM sections ("ram") are fully described here.
    
    Two facts that are not on the wire decide the RAM block list layout: the `x-ignore-shared`
    capability (recorded in the configuration's capabilities subsection) adds a be64 address to
    every block, and `postcopy-ram` with huge-page backed blocks adds a be64 page size. The caller
    passes them as parameters (the analyzer reads them from the configuration and POSTCOPY_ADVISE
    items, which always come first).
    
    .. seealso::
       Source - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/savevm.c
    
    
    .. seealso::
       Source - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/ram.c
    
    
    .. seealso::
       Source - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/docs/devel/migration.rst
    """

    class MigCmd(IntEnum):
        invalid = 0
        open_return_path = 1
        ping = 2
        postcopy_advise = 3
        postcopy_listen = 4
        postcopy_run = 5
        postcopy_ram_discard = 6
        packaged = 7
        enable_colo = 8
        postcopy_resume = 9
        recv_bitmap = 10

    class RamFlag(IntEnum):
        full = 1
        zero = 2
        mem_size = 4
        page = 8
        eos = 16
        continue_same_block = 32
        xbzrle = 64
        hook = 128
        compress_page = 256
        multifd_flush = 512

    class SectionType(IntEnum):
        eof = 0
        section_start = 1
        section_part = 2
        section_end = 3
        section_full = 4
        subsection = 5
        vmdescription = 6
        configuration = 7
        command = 8
        section_footer = 126
    def __init__(self, ctx, ignore_shared, postcopy_page_sizes, _io, _parent=None, _root=None):
        super(QemuMigration, self).__init__(_io)
        self._parent = _parent
        self._root = _root or self
        self.ctx = ctx
        self.ignore_shared = ignore_shared
        self.postcopy_page_sizes = postcopy_page_sizes
        self._read()

    def _read(self):
        self.magic = self._io.read_bytes(4)
        if not self.magic == b"\x51\x45\x56\x4D":
            raise kaitaistruct.ValidationNotEqualError(b"\x51\x45\x56\x4D", self.magic, self._io, u"/seq/0")
        self.file_version = self._io.read_u4be()
        if not self.file_version == 3:
            raise kaitaistruct.ValidationNotEqualError(3, self.file_version, self._io, u"/seq/1")
        self.items = []
        i = 0
        while True:
            _ = QemuMigration.Item(self._io, self, self._root)
            self.items.append(_)
            if _.section_type == QemuMigration.SectionType.eof:
                break
            i += 1
        if (not (self._io.is_eof())):
            pass
            self.vmdesc = QemuMigration.Vmdescription(self._io, self, self._root)



    def _fetch_instances(self):
        pass
        for i in range(len(self.items)):
            pass
            self.items[i]._fetch_instances()

        if (not (self._io.is_eof())):
            pass
            self.vmdesc._fetch_instances()


    class CmdPackaged(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.CmdPackaged, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.len_package = self._io.read_u4be()


        def _fetch_instances(self):
            pass


    class CmdPing(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.CmdPing, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.value = self._io.read_u4be()


        def _fetch_instances(self):
            pass


    class CmdPostcopyAdvise(KaitaiStruct):
        """Empty when only dirty-bitmaps needs postcopy; else two be64."""
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.CmdPostcopyAdvise, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            if (not (self._io.is_eof())):
                pass
                self.ram_page_size_summary = self._io.read_u8be()

            if (not (self._io.is_eof())):
                pass
                self.target_page_size = self._io.read_u8be()



        def _fetch_instances(self):
            pass
            if (not (self._io.is_eof())):
                pass

            if (not (self._io.is_eof())):
                pass



    class CmdPostcopyRamDiscard(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.CmdPostcopyRamDiscard, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.version = self._io.read_u1()
            if not self.version == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.version, self._io, u"/types/cmd_postcopy_ram_discard/seq/0")
            self.len_block_name = self._io.read_u1()
            self.block_name = (self._io.read_bytes(self.len_block_name)).decode(u"ISO-8859-1")
            self.terminator = self._io.read_bytes(1)
            if not self.terminator == b"\x00":
                raise kaitaistruct.ValidationNotEqualError(b"\x00", self.terminator, self._io, u"/types/cmd_postcopy_ram_discard/seq/3")
            self.ranges = []
            i = 0
            while not self._io.is_eof():
                self.ranges.append(QemuMigration.DiscardRange(self._io, self, self._root))
                i += 1



        def _fetch_instances(self):
            pass
            for i in range(len(self.ranges)):
                pass
                self.ranges[i]._fetch_instances()



    class Command(KaitaiStruct):
        """QEMU_VM_COMMAND (savevm.c `qemu_savevm_command_send`, `loadvm_process_command`)."""
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.Command, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.cmd = KaitaiStream.resolve_enum(QemuMigration.MigCmd, self._io.read_u2be())
            self.len_data = self._io.read_u2be()
            _on = self.cmd
            if _on == QemuMigration.MigCmd.packaged:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = QemuMigration.CmdPackaged(_io__raw_data, self, self._root)
            elif _on == QemuMigration.MigCmd.ping:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = QemuMigration.CmdPing(_io__raw_data, self, self._root)
            elif _on == QemuMigration.MigCmd.postcopy_advise:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = QemuMigration.CmdPostcopyAdvise(_io__raw_data, self, self._root)
            elif _on == QemuMigration.MigCmd.postcopy_ram_discard:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = QemuMigration.CmdPostcopyRamDiscard(_io__raw_data, self, self._root)
            elif _on == QemuMigration.MigCmd.recv_bitmap:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = QemuMigration.CountedString(_io__raw_data, self, self._root)
            else:
                pass
                self.data = self._io.read_bytes(self.len_data)
            if self.cmd == QemuMigration.MigCmd.packaged:
                pass
                self._raw_package = self._io.read_bytes(self.data.len_package)
                _io__raw_package = KaitaiStream(BytesIO(self._raw_package))
                self.package = QemuMigration.Package(_io__raw_package, self, self._root)



        def _fetch_instances(self):
            pass
            _on = self.cmd
            if _on == QemuMigration.MigCmd.packaged:
                pass
                self.data._fetch_instances()
            elif _on == QemuMigration.MigCmd.ping:
                pass
                self.data._fetch_instances()
            elif _on == QemuMigration.MigCmd.postcopy_advise:
                pass
                self.data._fetch_instances()
            elif _on == QemuMigration.MigCmd.postcopy_ram_discard:
                pass
                self.data._fetch_instances()
            elif _on == QemuMigration.MigCmd.recv_bitmap:
                pass
                self.data._fetch_instances()
            else:
                pass
            if self.cmd == QemuMigration.MigCmd.packaged:
                pass
                self.package._fetch_instances()



    class Configuration(KaitaiStruct):
        """QEMU_VM_CONFIGURATION: the VMState body of vmsd "configuration" (no idstr, version or
        footer). Subsections follow while the next byte is QEMU_VM_SUBSECTION.
        
        .. seealso::
           Source - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/savevm.c
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.Configuration, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.len_name = self._io.read_u4be()
            if not self.len_name <= 256:
                raise kaitaistruct.ValidationGreaterThanError(256, self.len_name, self._io, u"/types/configuration/seq/0")
            self.name = (self._io.read_bytes(self.len_name)).decode(u"ISO-8859-1")
            if self.has_subsections:
                pass
                self.subsections = []
                i = 0
                while True:
                    _ = QemuMigration.ConfigurationSubsection(self._io, self, self._root)
                    self.subsections.append(_)
                    if _.is_last:
                        break
                    i += 1



        def _fetch_instances(self):
            pass
            if self.has_subsections:
                pass
                for i in range(len(self.subsections)):
                    pass
                    self.subsections[i]._fetch_instances()


            _ = self.next_byte
            if hasattr(self, '_m_next_byte'):
                pass


        @property
        def has_subsections(self):
            if hasattr(self, '_m_has_subsections'):
                return self._m_has_subsections

            self._m_has_subsections =  (((not (self._io.is_eof()))) and (self.next_byte == 5)) 
            return getattr(self, '_m_has_subsections', None)

        @property
        def next_byte(self):
            if hasattr(self, '_m_next_byte'):
                return self._m_next_byte

            _pos = self._io.pos()
            self._io.seek(self._io.pos())
            self._m_next_byte = self._io.read_u1()
            self._io.seek(_pos)
            return getattr(self, '_m_next_byte', None)


    class ConfigurationCapabilities(KaitaiStruct):
        """vmstate_capabilites; the validated capabilities that are on (7.2 only x-ignore-shared)."""
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.ConfigurationCapabilities, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.num_caps = self._io.read_u4be()
            if not self.num_caps <= 256:
                raise kaitaistruct.ValidationGreaterThanError(256, self.num_caps, self._io, u"/types/configuration_capabilities/seq/0")
            self.caps = []
            for i in range(self.num_caps):
                self.caps.append(QemuMigration.CountedString(self._io, self, self._root))



        def _fetch_instances(self):
            pass
            for i in range(len(self.caps)):
                pass
                self.caps[i]._fetch_instances()



    class ConfigurationSubsection(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.ConfigurationSubsection, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.marker = self._io.read_bytes(1)
            if not self.marker == b"\x05":
                raise kaitaistruct.ValidationNotEqualError(b"\x05", self.marker, self._io, u"/types/configuration_subsection/seq/0")
            self.name = QemuMigration.CountedString(self._io, self, self._root)
            self.version_id = self._io.read_u4be()
            _on = self.name.value
            if _on == u"configuration/capabilities":
                pass
                self.body = QemuMigration.ConfigurationCapabilities(self._io, self, self._root)
            elif _on == u"configuration/target-page-bits":
                pass
                self.body = self._io.read_u4be()
            elif _on == u"configuration/uuid":
                pass
                self.body = QemuMigration.ConfigurationUuid(self._io, self, self._root)
            else:
                pass
                self.body = QemuMigration.UnknownConfigurationSubsection(self._io, self, self._root)


        def _fetch_instances(self):
            pass
            self.name._fetch_instances()
            _on = self.name.value
            if _on == u"configuration/capabilities":
                pass
                self.body._fetch_instances()
            elif _on == u"configuration/target-page-bits":
                pass
            elif _on == u"configuration/uuid":
                pass
                self.body._fetch_instances()
            else:
                pass
                self.body._fetch_instances()
            _ = self.next_byte
            if hasattr(self, '_m_next_byte'):
                pass


        @property
        def is_last(self):
            if hasattr(self, '_m_is_last'):
                return self._m_is_last

            self._m_is_last =  ((self._io.is_eof()) or (self.next_byte != 5)) 
            return getattr(self, '_m_is_last', None)

        @property
        def next_byte(self):
            if hasattr(self, '_m_next_byte'):
                return self._m_next_byte

            _pos = self._io.pos()
            self._io.seek(self._io.pos())
            self._m_next_byte = self._io.read_u1()
            self._io.seek(_pos)
            return getattr(self, '_m_next_byte', None)


    class ConfigurationUuid(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.ConfigurationUuid, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.uuid = self._io.read_bytes(16)


        def _fetch_instances(self):
            pass


    class CountedString(KaitaiStruct):
        """qemu_put_counted_string; a length byte then that many bytes, no NUL.
        
        .. seealso::
           Source - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/qemu-file.c
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.CountedString, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.len_value = self._io.read_u1()
            self.value = (self._io.read_bytes(self.len_value)).decode(u"ISO-8859-1")


        def _fetch_instances(self):
            pass


    class DiscardRange(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.DiscardRange, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.start = self._io.read_u8be()
            self.length = self._io.read_u8be()


        def _fetch_instances(self):
            pass


    class Item(KaitaiStruct):
        """One top-level item of the main loop (savevm.c `qemu_loadvm_state_main`)."""
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.Item, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.section_type = KaitaiStream.resolve_enum(QemuMigration.SectionType, self._io.read_u1())
            if not  ((self.section_type == QemuMigration.SectionType.eof) or (self.section_type == QemuMigration.SectionType.section_start) or (self.section_type == QemuMigration.SectionType.section_part) or (self.section_type == QemuMigration.SectionType.section_end) or (self.section_type == QemuMigration.SectionType.section_full) or (self.section_type == QemuMigration.SectionType.configuration) or (self.section_type == QemuMigration.SectionType.command)) :
                raise kaitaistruct.ValidationNotAnyOfError(self.section_type, self._io, u"/types/item/seq/0")
            _on = self.section_type
            if _on == QemuMigration.SectionType.command:
                pass
                self.body = QemuMigration.Command(self._io, self, self._root)
            elif _on == QemuMigration.SectionType.configuration:
                pass
                self.body = QemuMigration.Configuration(self._io, self, self._root)
            elif _on == QemuMigration.SectionType.section_end:
                pass
                self.body = QemuMigration.SectionPartEnd(self._io, self, self._root)
            elif _on == QemuMigration.SectionType.section_full:
                pass
                self.body = QemuMigration.SectionStartFull(self._io, self, self._root)
            elif _on == QemuMigration.SectionType.section_part:
                pass
                self.body = QemuMigration.SectionPartEnd(self._io, self, self._root)
            elif _on == QemuMigration.SectionType.section_start:
                pass
                self.body = QemuMigration.SectionStartFull(self._io, self, self._root)


        def _fetch_instances(self):
            pass
            _on = self.section_type
            if _on == QemuMigration.SectionType.command:
                pass
                self.body._fetch_instances()
            elif _on == QemuMigration.SectionType.configuration:
                pass
                self.body._fetch_instances()
            elif _on == QemuMigration.SectionType.section_end:
                pass
                self.body._fetch_instances()
            elif _on == QemuMigration.SectionType.section_full:
                pass
                self.body._fetch_instances()
            elif _on == QemuMigration.SectionType.section_part:
                pass
                self.body._fetch_instances()
            elif _on == QemuMigration.SectionType.section_start:
                pass
                self.body._fetch_instances()


    class Package(KaitaiStruct):
        """The blob of MIG_CMD_PACKAGED: an embedded item sequence without header, EOF or vmdesc
        (POSTCOPY_LISTEN, device sections, PING, POSTCOPY_RUN).
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.Package, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.items = []
            i = 0
            while not self._io.is_eof():
                self.items.append(QemuMigration.Item(self._io, self, self._root))
                i += 1



        def _fetch_instances(self):
            pass
            for i in range(len(self.items)):
                pass
                self.items[i]._fetch_instances()



    class RamBlockEntry(KaitaiStruct):
        def __init__(self, remaining_before, _io, _parent=None, _root=None):
            super(QemuMigration.RamBlockEntry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.remaining_before = remaining_before
            self._read()

        def _read(self):
            self.idstr = QemuMigration.CountedString(self._io, self, self._root)
            self.used_length = self._io.read_u8be()
            _ = self.used_length
            if not  ((_ <= self.remaining_before) and (_ != 0)) :
                raise kaitaistruct.ValidationExprError(self.used_length, self._io, u"/types/ram_block_entry/seq/1")
            if self._root.postcopy_page_sizes:
                pass
                self.page_size = self._io.read_u8be()

            if self._root.ignore_shared:
                pass
                self.addr = self._io.read_u8be()



        def _fetch_instances(self):
            pass
            self.idstr._fetch_instances()
            if self._root.postcopy_page_sizes:
                pass

            if self._root.ignore_shared:
                pass


        @property
        def remaining_after(self):
            if hasattr(self, '_m_remaining_after'):
                return self._m_remaining_after

            self._m_remaining_after = self.remaining_before - self.used_length
            return getattr(self, '_m_remaining_after', None)


    class RamBlockList(KaitaiStruct):
        """RAM_SAVE_FLAG_MEM_SIZE: one entry per migratable RAM block, with no count; the entries'
        lengths add up to the total in the record header.
        """
        def __init__(self, total, _io, _parent=None, _root=None):
            super(QemuMigration.RamBlockList, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.total = total
            self._read()

        def _read(self):
            if self.total != 0:
                pass
                self.blocks = []
                i = 0
                while True:
                    _ = QemuMigration.RamBlockEntry((self.total if i == 0 else self.blocks[i - 1].remaining_after), self._io, self, self._root)
                    self.blocks.append(_)
                    if _.remaining_after == 0:
                        break
                    i += 1



        def _fetch_instances(self):
            pass
            if self.total != 0:
                pass
                for i in range(len(self.blocks)):
                    pass
                    self.blocks[i]._fetch_instances()




    class RamCompressedPage(KaitaiStruct):
        """RAM_SAVE_FLAG_COMPRESS_PAGE (7.2 `compress` capability): one complete zlib stream of a
        4096-byte page. The loader bounds the length by compressBound(4096) = 4110.
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.RamCompressedPage, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.len_compressed = self._io.read_u4be()
            if not self.len_compressed <= 4110:
                raise kaitaistruct.ValidationGreaterThanError(4110, self.len_compressed, self._io, u"/types/ram_compressed_page/seq/0")
            self.compressed = self._io.read_bytes(self.len_compressed)


        def _fetch_instances(self):
            pass


    class RamPage(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.RamPage, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.data = self._io.read_bytes(4096)


        def _fetch_instances(self):
            pass


    class RamRecord(KaitaiStruct):
        """be64 (offset | flags); flags live below TARGET_PAGE_SIZE (x86: 4096). Page records name
        their RAM block unless RAM_SAVE_FLAG_CONTINUE says "same block as the previous record",
        which carries over section boundaries.
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.RamRecord, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.addr_flags = self._io.read_u8be()
            _ = self.addr_flags
            if not  ((_ & 4063 == 2) or (_ & 4063 == 4) or (_ & 4063 == 8) or (_ & 4063 == 16) or (_ & 4063 == 64) or (_ & 4063 == 256) or (_ & 4063 == 512)) :
                raise kaitaistruct.ValidationExprError(self.addr_flags, self._io, u"/types/ram_record/seq/0")
            if self.has_block_name:
                pass
                self.block_name = QemuMigration.CountedString(self._io, self, self._root)

            _on = self.kind
            if _on == int(QemuMigration.RamFlag.compress_page):
                pass
                self.payload = QemuMigration.RamCompressedPage(self._io, self, self._root)
            elif _on == int(QemuMigration.RamFlag.mem_size):
                pass
                self.payload = QemuMigration.RamBlockList(self.offset, self._io, self, self._root)
            elif _on == int(QemuMigration.RamFlag.page):
                pass
                self.payload = QemuMigration.RamPage(self._io, self, self._root)
            elif _on == int(QemuMigration.RamFlag.xbzrle):
                pass
                self.payload = QemuMigration.RamXbzrlePage(self._io, self, self._root)
            elif _on == int(QemuMigration.RamFlag.zero):
                pass
                self.payload = QemuMigration.RamZeroPage(self._io, self, self._root)


        def _fetch_instances(self):
            pass
            if self.has_block_name:
                pass
                self.block_name._fetch_instances()

            _on = self.kind
            if _on == int(QemuMigration.RamFlag.compress_page):
                pass
                self.payload._fetch_instances()
            elif _on == int(QemuMigration.RamFlag.mem_size):
                pass
                self.payload._fetch_instances()
            elif _on == int(QemuMigration.RamFlag.page):
                pass
                self.payload._fetch_instances()
            elif _on == int(QemuMigration.RamFlag.xbzrle):
                pass
                self.payload._fetch_instances()
            elif _on == int(QemuMigration.RamFlag.zero):
                pass
                self.payload._fetch_instances()

        @property
        def flags(self):
            if hasattr(self, '_m_flags'):
                return self._m_flags

            self._m_flags = self.addr_flags & 4095
            return getattr(self, '_m_flags', None)

        @property
        def has_block_name(self):
            if hasattr(self, '_m_has_block_name'):
                return self._m_has_block_name

            self._m_has_block_name =  ((self.flags & 32 == 0) and ( ((self.kind == 2) or (self.kind == 8) or (self.kind == 64) or (self.kind == 256)) )) 
            return getattr(self, '_m_has_block_name', None)

        @property
        def is_eos(self):
            if hasattr(self, '_m_is_eos'):
                return self._m_is_eos

            self._m_is_eos = self.kind == 16
            return getattr(self, '_m_is_eos', None)

        @property
        def kind(self):
            """the flags without RAM_SAVE_FLAG_CONTINUE (what the loader switches on)."""
            if hasattr(self, '_m_kind'):
                return self._m_kind

            self._m_kind = self.flags & 4063
            return getattr(self, '_m_kind', None)

        @property
        def offset(self):
            """page offset inside the RAM block; for MEM_SIZE, the total of all block lengths."""
            if hasattr(self, '_m_offset'):
                return self._m_offset

            self._m_offset = self.addr_flags & ~4095
            return getattr(self, '_m_offset', None)


    class RamSectionBody(KaitaiStruct):
        """The payload of a "ram" section (ram.c `ram_save_setup`, `ram_save_iterate`,
        `ram_save_complete`): page records until RAM_SAVE_FLAG_EOS.
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.RamSectionBody, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.records = []
            i = 0
            while True:
                _ = QemuMigration.RamRecord(self._io, self, self._root)
                self.records.append(_)
                if _.is_eos:
                    break
                i += 1


        def _fetch_instances(self):
            pass
            for i in range(len(self.records)):
                pass
                self.records[i]._fetch_instances()



    class RamXbzrlePage(KaitaiStruct):
        """ram.c `save_xbzrle_page` / `load_xbzrle`; the delta is in formats/xbzrle.py."""
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.RamXbzrlePage, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.encoding_flag = self._io.read_u1()
            if not self.encoding_flag == 1:
                raise kaitaistruct.ValidationNotEqualError(1, self.encoding_flag, self._io, u"/types/ram_xbzrle_page/seq/0")
            self.len_encoded = self._io.read_u2be()
            if not self.len_encoded <= 4096:
                raise kaitaistruct.ValidationGreaterThanError(4096, self.len_encoded, self._io, u"/types/ram_xbzrle_page/seq/1")
            self.encoded = self._io.read_bytes(self.len_encoded)


        def _fetch_instances(self):
            pass


    class RamZeroPage(KaitaiStruct):
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.RamZeroPage, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.fill = self._io.read_u1()


        def _fetch_instances(self):
            pass


    class SectionFooter(KaitaiStruct):
        """QEMU_VM_SECTION_FOOTER (savevm.c `save_section_footer`), present unless the migration
        property send-section-footer is off. The loader requires the id to match the header's.
        """
        def __init__(self, expected_section_id, _io, _parent=None, _root=None):
            super(QemuMigration.SectionFooter, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.expected_section_id = expected_section_id
            self._read()

        def _read(self):
            self.marker = self._io.read_bytes(1)
            if not self.marker == b"\x7E":
                raise kaitaistruct.ValidationNotEqualError(b"\x7E", self.marker, self._io, u"/types/section_footer/seq/0")
            self.section_id = self._io.read_u4be()
            if not self.section_id == self.expected_section_id:
                raise kaitaistruct.ValidationNotEqualError(self.expected_section_id, self.section_id, self._io, u"/types/section_footer/seq/1")


        def _fetch_instances(self):
            pass


    class SectionPartEnd(KaitaiStruct):
        """QEMU_VM_SECTION_PART / QEMU_VM_SECTION_END: a later chunk of a live (iterable) handler,
        identified only by the section id of its earlier START. Which handler that is (and so how
        the payload is laid out) is known to `section_body` through `ctx`.
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.SectionPartEnd, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.section_id = self._io.read_u4be()
            self.body = section_body.SectionBody(self._root.ctx, int(self._parent.section_type), self.section_id, u"", 0, 0, self._io)
            if self.has_footer:
                pass
                self.footer = QemuMigration.SectionFooter(self.section_id, self._io, self, self._root)



        def _fetch_instances(self):
            pass
            self.body._fetch_instances()
            if self.has_footer:
                pass
                self.footer._fetch_instances()

            _ = self.next_byte
            if hasattr(self, '_m_next_byte'):
                pass


        @property
        def has_footer(self):
            if hasattr(self, '_m_has_footer'):
                return self._m_has_footer

            self._m_has_footer =  (((not (self._io.is_eof()))) and (self.next_byte == 126)) 
            return getattr(self, '_m_has_footer', None)

        @property
        def next_byte(self):
            if hasattr(self, '_m_next_byte'):
                return self._m_next_byte

            _pos = self._io.pos()
            self._io.seek(self._io.pos())
            self._m_next_byte = self._io.read_u1()
            self._io.seek(_pos)
            return getattr(self, '_m_next_byte', None)


    class SectionStartFull(KaitaiStruct):
        """QEMU_VM_SECTION_START / QEMU_VM_SECTION_FULL (savevm.c `save_section_header`); the same
        header, then the payload and the footer.
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.SectionStartFull, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.section_id = self._io.read_u4be()
            self.idstr = QemuMigration.CountedString(self._io, self, self._root)
            self.instance_id = self._io.read_u4be()
            self.version_id = self._io.read_u4be()
            if self.idstr.value == u"ram":
                pass
                self.ram = QemuMigration.RamSectionBody(self._io, self, self._root)

            if self.idstr.value != u"ram":
                pass
                self.body = section_body.SectionBody(self._root.ctx, int(self._parent.section_type), self.section_id, self.idstr.value, self.instance_id, self.version_id, self._io)

            if self.has_footer:
                pass
                self.footer = QemuMigration.SectionFooter(self.section_id, self._io, self, self._root)



        def _fetch_instances(self):
            pass
            self.idstr._fetch_instances()
            if self.idstr.value == u"ram":
                pass
                self.ram._fetch_instances()

            if self.idstr.value != u"ram":
                pass
                self.body._fetch_instances()

            if self.has_footer:
                pass
                self.footer._fetch_instances()

            _ = self.next_byte
            if hasattr(self, '_m_next_byte'):
                pass


        @property
        def has_footer(self):
            if hasattr(self, '_m_has_footer'):
                return self._m_has_footer

            self._m_has_footer =  (((not (self._io.is_eof()))) and (self.next_byte == 126)) 
            return getattr(self, '_m_has_footer', None)

        @property
        def next_byte(self):
            if hasattr(self, '_m_next_byte'):
                return self._m_next_byte

            _pos = self._io.pos()
            self._io.seek(self._io.pos())
            self._m_next_byte = self._io.read_u1()
            self._io.seek(_pos)
            return getattr(self, '_m_next_byte', None)


    class UnknownConfigurationSubsection(KaitaiStruct):
        """A configuration subsection 7.2 does not know; its layout cannot be framed."""
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.UnknownConfigurationSubsection, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.unframeable = self._io.read_bytes(0)
            _ = self.unframeable
            if not False:
                raise kaitaistruct.ValidationExprError(self.unframeable, self._io, u"/types/unknown_configuration_subsection/seq/0")


        def _fetch_instances(self):
            pass


    class Vmdescription(KaitaiStruct):
        """QEMU_VM_VMDESCRIPTION after EOF: JSON describing each device section written, in stream
        order (vmstate.c `vmstate_save_state_v`, `vmsd_desc_field_start/end`). The loader skips
        it without parsing.
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(QemuMigration.Vmdescription, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.section_type = self._io.read_u1()
            if not self.section_type == 6:
                raise kaitaistruct.ValidationNotEqualError(6, self.section_type, self._io, u"/types/vmdescription/seq/0")
            self.len_json = self._io.read_u4be()
            self.json = self._io.read_bytes(self.len_json)


        def _fetch_instances(self):
            pass



