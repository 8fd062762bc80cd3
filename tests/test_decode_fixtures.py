"""Every committed real capture decodes completely and exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.model import Section, Stream
from formats.constants import SectionType
from tests.conftest import CAPTURES
from tests.support.reference import index_records, reference_records


def test_capture_decodes_header_to_eof_and_vmdesc(capture: Path) -> None:
    with Stream.open(capture) as s:
        assert s.errors == [], s.errors[0] if s.errors else None
        assert s.file_version == 3
        assert s.eof_offset is not None
        assert s.items[-1].type == SectionType.QEMU_VM_EOF
        assert s.configuration is not None and s.configuration.machine.startswith("pc-")
        if s.vmdesc_source == "stream":
            assert s.vmdesc_offset == s.eof_offset + 1
            assert s.vmdesc_offset + 5 + (s.vmdesc_len or 0) == s.size
        else:
            assert s.eof_offset + 1 == s.size
        sections = [i for i in s.items if isinstance(i, Section)]
        assert sections
        for sec in sections:
            if s.footers:
                assert sec.footer_offset == sec.body_end, sec.where
                assert s.buf[sec.footer_offset] == 0x7E
                assert int.from_bytes(s.buf[sec.body_end + 1 : sec.end], "big") == sec.section_id
            if sec.is_ram:
                continue
            if s.vmdesc is not None:
                assert sec.nodes is not None, (sec.where, sec.undecoded_reason)
                consumed = max((n.end for n in sec.nodes), default=sec.body_start)
                assert consumed == sec.body_end, sec.where
            else:
                assert sec.undecoded_reason


def test_every_full_section_is_in_the_vmdesc(capture: Path) -> None:
    with Stream.open(capture) as s:
        if s.vmdesc_source != "stream":
            return
        assert s.vmdesc is not None
        full = [(x.idstr, x.instance_id) for x in s.sections
                if x.type == SectionType.QEMU_VM_SECTION_FULL]
        assert full == [(d.name, d.instance_id) for d in s.vmdesc.devices]


def test_fast_ram_index_equals_generated_parser(capture: Path) -> None:
    with Stream.open(capture) as s:
        ours = index_records(s)
        ref = reference_records(s)
        assert len(ours) == len(ref)
        assert ours == ref


SIBLINGS = {"pc-postcopy": "pc-live", "pc-novmdesc": "pc-smp2"}


@pytest.mark.parametrize("name,sibling", SIBLINGS.items())
def test_streams_without_vmdesc_decode_with_a_siblings_descriptions(
    name: str, sibling: str
) -> None:
    bare = CAPTURES / f"{name}.bin"
    with Stream.open(bare) as s:
        assert s.vmdesc is None
        undecoded = [x for x in s.sections if not x.is_ram and x.nodes is None]
        assert undecoded and all("no vmstate description" in (x.undecoded_reason or "")
                                 for x in undecoded)
    with Stream.open(CAPTURES / f"{sibling}.bin") as sib:
        desc = sib.vmdesc
    with Stream.open(bare, descriptions=desc) as s:
        assert s.errors == []
        devices = [x for x in s.sections if not x.is_ram]
        assert devices and all(x.nodes is not None for x in devices)
        assert all(max(n.end for n in x.nodes or []) == x.body_end for x in devices if x.nodes)
