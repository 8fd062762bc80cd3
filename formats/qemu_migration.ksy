meta:
  id: qemu_migration
  title: QEMU live-migration / savevm stream (QEMU_VM_FILE_VERSION 3, as written by QEMU 7.2)
  application: QEMU (migration/savevm.c, migration/ram.c, migration/vmstate.c)
  file-extension: bin
  xref:
    wikidata: Q624699
  license: MIT
  ks-version: '0.11'
  ks-opaque-types: true
  endian: be
  -opaque-modules:
    section_body: hand-written; decodes device payloads from vmstate descriptions
doc: |
  The wire grammar of a QEMU migration stream: what `migrate` writes to a file, a socket or an
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
doc-ref:
  - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/savevm.c
  - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/ram.c
  - https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/docs/devel/migration.rst
params:
  - id: ctx
    type: any
    doc: |
      Decoding context for device payloads, passed through to `section_body`; see
      formats/section_body.py for the protocol it must implement.
  - id: ignore_shared
    type: bool
    doc: The x-ignore-shared capability is on (each RAM block entry carries its GPA).
  - id: postcopy_page_sizes
    type: bool
    doc: |
      postcopy-ram is on and some RAM block's page size differs from the host page size, so
      every RAM block entry carries a be64 page size (ram.c `ram_save_setup`).
seq:
  - id: magic
    contents: QEVM
    doc: QEMU_VM_FILE_MAGIC 0x5145564D
  - id: file_version
    type: u4
    valid: 3
    doc: QEMU_VM_FILE_VERSION; version 2 is QEMU_VM_FILE_VERSION_COMPAT and obsolete
  - id: items
    type: item
    repeat: until
    repeat-until: _.section_type == section_type::eof
  - id: vmdesc
    type: vmdescription
    if: not _io.eof
types:
  counted_string:
    doc: qemu_put_counted_string; a length byte then that many bytes, no NUL
    doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/qemu-file.c
    seq:
      - id: len_value
        type: u1
      - id: value
        type: str
        size: len_value
        encoding: ISO-8859-1

  item:
    doc: One top-level item of the main loop (savevm.c `qemu_loadvm_state_main`).
    seq:
      - id: section_type
        type: u1
        enum: section_type
        valid:
          any-of:
            - section_type::eof
            - section_type::section_start
            - section_type::section_part
            - section_type::section_end
            - section_type::section_full
            - section_type::configuration
            - section_type::command
      - id: body
        type:
          switch-on: section_type
          cases:
            'section_type::section_start': section_start_full
            'section_type::section_full': section_start_full
            'section_type::section_part': section_part_end
            'section_type::section_end': section_part_end
            'section_type::configuration': configuration
            'section_type::command': command

  section_start_full:
    doc: |
      QEMU_VM_SECTION_START / QEMU_VM_SECTION_FULL (savevm.c `save_section_header`); the same
      header, then the payload and the footer.
    seq:
      - id: section_id
        type: u4
      - id: idstr
        type: counted_string
      - id: instance_id
        type: u4
      - id: version_id
        type: u4
      - id: ram
        type: ram_section_body
        if: idstr.value == "ram"
      - id: body
        type: section_body(_root.ctx, _parent.section_type.to_i, section_id, idstr.value, instance_id, version_id)
        if: idstr.value != "ram"
      - id: footer
        type: section_footer(section_id)
        if: has_footer
    instances:
      next_byte:
        pos: _io.pos
        type: u1
      has_footer:
        value: (not _io.eof) and next_byte == 0x7e

  section_part_end:
    doc: |
      QEMU_VM_SECTION_PART / QEMU_VM_SECTION_END: a later chunk of a live (iterable) handler,
      identified only by the section id of its earlier START. Which handler that is (and so how
      the payload is laid out) is known to `section_body` through `ctx`.
    seq:
      - id: section_id
        type: u4
      - id: body
        type: section_body(_root.ctx, _parent.section_type.to_i, section_id, "", 0, 0)
      - id: footer
        type: section_footer(section_id)
        if: has_footer
    instances:
      next_byte:
        pos: _io.pos
        type: u1
      has_footer:
        value: (not _io.eof) and next_byte == 0x7e

  section_footer:
    doc: |
      QEMU_VM_SECTION_FOOTER (savevm.c `save_section_footer`), present unless the migration
      property send-section-footer is off. The loader requires the id to match the header's.
    params:
      - id: expected_section_id
        type: u4
    seq:
      - id: marker
        contents: [0x7e]
      - id: section_id
        type: u4
        valid: expected_section_id

  configuration:
    doc: |
      QEMU_VM_CONFIGURATION: the VMState body of vmsd "configuration" (no idstr, version or
      footer). Subsections follow while the next byte is QEMU_VM_SUBSECTION.
    doc-ref: https://gitlab.com/qemu-project/qemu/-/blob/v7.2.0/migration/savevm.c
    seq:
      - id: len_name
        type: u4
        valid:
          max: 256
      - id: name
        type: str
        size: len_name
        encoding: ISO-8859-1
        doc: MachineClass name, e.g. pc-i440fx-7.2 (aliases already resolved)
      - id: subsections
        type: configuration_subsection
        if: has_subsections
        repeat: until
        repeat-until: _.is_last
    instances:
      next_byte:
        pos: _io.pos
        type: u1
      has_subsections:
        value: (not _io.eof) and next_byte == 0x05

  configuration_subsection:
    seq:
      - id: marker
        contents: [0x05]
      - id: name
        type: counted_string
      - id: version_id
        type: u4
      - id: body
        type:
          switch-on: name.value
          cases:
            '"configuration/target-page-bits"': u4
            '"configuration/capabilities"': configuration_capabilities
            '"configuration/uuid"': configuration_uuid
            _: unknown_configuration_subsection
    instances:
      next_byte:
        pos: _io.pos
        type: u1
      is_last:
        value: _io.eof or next_byte != 0x05

  configuration_capabilities:
    doc: vmstate_capabilites; the validated capabilities that are on (7.2 only x-ignore-shared)
    seq:
      - id: num_caps
        type: u4
        valid:
          max: 256
      - id: caps
        type: counted_string
        repeat: expr
        repeat-expr: num_caps

  configuration_uuid:
    seq:
      - id: uuid
        size: 16

  unknown_configuration_subsection:
    doc: A configuration subsection 7.2 does not know; its layout cannot be framed.
    seq:
      - id: unframeable
        size: 0
        valid:
          expr: false

  command:
    doc: QEMU_VM_COMMAND (savevm.c `qemu_savevm_command_send`, `loadvm_process_command`)
    seq:
      - id: cmd
        type: u2
        enum: mig_cmd
      - id: len_data
        type: u2
      - id: data
        size: len_data
        type:
          switch-on: cmd
          cases:
            'mig_cmd::ping': cmd_ping
            'mig_cmd::postcopy_advise': cmd_postcopy_advise
            'mig_cmd::postcopy_ram_discard': cmd_postcopy_ram_discard
            'mig_cmd::packaged': cmd_packaged
            'mig_cmd::recv_bitmap': counted_string
      - id: package
        size: data.as<cmd_packaged>.len_package
        type: package
        if: cmd == mig_cmd::packaged

  cmd_ping:
    seq:
      - id: value
        type: u4

  cmd_postcopy_advise:
    doc: Empty when only dirty-bitmaps needs postcopy; else two be64.
    seq:
      - id: ram_page_size_summary
        type: u8
        if: not _io.eof
        doc: OR of the page sizes of all RAM blocks
      - id: target_page_size
        type: u8
        if: not _io.eof

  cmd_postcopy_ram_discard:
    seq:
      - id: version
        type: u1
        valid: 0
      - id: len_block_name
        type: u1
      - id: block_name
        type: str
        size: len_block_name
        encoding: ISO-8859-1
      - id: terminator
        contents: [0]
      - id: ranges
        type: discard_range
        repeat: eos

  discard_range:
    seq:
      - id: start
        type: u8
        doc: byte offset within the RAM block
      - id: length
        type: u8
        doc: byte length

  cmd_packaged:
    seq:
      - id: len_package
        type: u4

  package:
    doc: |
      The blob of MIG_CMD_PACKAGED: an embedded item sequence without header, EOF or vmdesc
      (POSTCOPY_LISTEN, device sections, PING, POSTCOPY_RUN).
    seq:
      - id: items
        type: item
        repeat: eos

  ram_section_body:
    doc: |
      The payload of a "ram" section (ram.c `ram_save_setup`, `ram_save_iterate`,
      `ram_save_complete`): page records until RAM_SAVE_FLAG_EOS.
    seq:
      - id: records
        type: ram_record
        repeat: until
        repeat-until: _.is_eos

  ram_record:
    doc: |
      be64 (offset | flags); flags live below TARGET_PAGE_SIZE (x86: 4096). Page records name
      their RAM block unless RAM_SAVE_FLAG_CONTINUE says "same block as the previous record",
      which carries over section boundaries.
    seq:
      - id: addr_flags
        type: u8
        valid:
          expr: >-
            (_ & 0xfdf) == 0x002 or (_ & 0xfdf) == 0x004 or (_ & 0xfdf) == 0x008 or
            (_ & 0xfdf) == 0x010 or (_ & 0xfdf) == 0x040 or (_ & 0xfdf) == 0x100 or
            (_ & 0xfdf) == 0x200
      - id: block_name
        type: counted_string
        if: has_block_name
      - id: payload
        type:
          switch-on: kind
          cases:
            'ram_flag::mem_size.to_i': ram_block_list(offset)
            'ram_flag::zero.to_i': ram_zero_page
            'ram_flag::page.to_i': ram_page
            'ram_flag::xbzrle.to_i': ram_xbzrle_page
            'ram_flag::compress_page.to_i': ram_compressed_page
    instances:
      flags:
        value: addr_flags & 0xfff
      offset:
        value: addr_flags & ~0xfff
        doc: page offset inside the RAM block; for MEM_SIZE, the total of all block lengths
      kind:
        value: flags & 0xfdf
        doc: the flags without RAM_SAVE_FLAG_CONTINUE (what the loader switches on)
      has_block_name:
        value: >-
          (flags & 0x20) == 0 and (kind == 0x002 or kind == 0x008 or kind == 0x040 or
          kind == 0x100)
      is_eos:
        value: kind == 0x010

  ram_block_list:
    doc: |
      RAM_SAVE_FLAG_MEM_SIZE: one entry per migratable RAM block, with no count; the entries'
      lengths add up to the total in the record header.
    params:
      - id: total
        type: u8
    seq:
      - id: blocks
        type: 'ram_block_entry(_index == 0 ? total : blocks[_index - 1].remaining_after)'
        repeat: until
        repeat-until: _.remaining_after == 0
        if: total != 0

  ram_block_entry:
    params:
      - id: remaining_before
        type: u8
    seq:
      - id: idstr
        type: counted_string
      - id: used_length
        type: u8
        valid:
          expr: _ <= remaining_before and _ != 0
      - id: page_size
        type: u8
        if: _root.postcopy_page_sizes
      - id: addr
        type: u8
        if: _root.ignore_shared
        doc: guest-physical base address of the block's memory region (x-ignore-shared)
    instances:
      remaining_after:
        value: remaining_before - used_length

  ram_zero_page:
    seq:
      - id: fill
        type: u1
        doc: the byte the whole page is filled with (the writer always sends 0)

  ram_page:
    seq:
      - id: data
        size: 4096
        doc: TARGET_PAGE_SIZE raw bytes

  ram_xbzrle_page:
    doc: ram.c `save_xbzrle_page` / `load_xbzrle`; the delta is in formats/xbzrle.py
    seq:
      - id: encoding_flag
        type: u1
        valid: 1
        doc: ENCODING_FLAG_XBZRLE
      - id: len_encoded
        type: u2
        valid:
          max: 4096
      - id: encoded
        size: len_encoded

  ram_compressed_page:
    doc: |
      RAM_SAVE_FLAG_COMPRESS_PAGE (7.2 `compress` capability): one complete zlib stream of a
      4096-byte page. The loader bounds the length by compressBound(4096) = 4110.
    seq:
      - id: len_compressed
        type: u4
        valid:
          max: 4110
      - id: compressed
        size: len_compressed

  vmdescription:
    doc: |
      QEMU_VM_VMDESCRIPTION after EOF: JSON describing each device section written, in stream
      order (vmstate.c `vmstate_save_state_v`, `vmsd_desc_field_start/end`). The loader skips
      it without parsing.
    seq:
      - id: section_type
        type: u1
        valid: 0x06
      - id: len_json
        type: u4
      - id: json
        size: len_json

enums:
  section_type:
    0x00: eof
    0x01: section_start
    0x02: section_part
    0x03: section_end
    0x04: section_full
    0x05: subsection
    0x06: vmdescription
    0x07: configuration
    0x08: command
    0x7e: section_footer

  mig_cmd:
    0: invalid
    1: open_return_path
    2: ping
    3: postcopy_advise
    4: postcopy_listen
    5: postcopy_run
    6: postcopy_ram_discard
    7: packaged
    8: enable_colo
    9: postcopy_resume
    10: recv_bitmap

  ram_flag:
    0x001: full
    0x002: zero
    0x004: mem_size
    0x008: page
    0x010: eos
    0x020: continue_same_block
    0x040: xbzrle
    0x080: hook
    0x100: compress_page
    0x200: multifd_flush
