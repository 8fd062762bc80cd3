"""Decoder mechanics for the VMStateInfo kinds no x86 capture exercises with content.

qtailq/qlist/gtree elements, NULL pointer markers and vstruct do not occur populated in pc/q35
captures, so these payloads are built by hand from the vmstate.c rules (digest section 6, 7, 10).
"""

from __future__ import annotations

import json
import struct

import pytest

from analyzer.vmdesc import parse_vmdesc
from analyzer.vmstate import VmstateDecoder
from formats.errors import StreamError


def decode(device_json: str, payload: bytes) -> list:  # type: ignore[type-arg]
    desc = parse_vmdesc('{"page_size": 4096, "devices": [' + device_json + "]}")
    dec = VmstateDecoder(memoryview(payload), "'dev'")
    nodes, end = dec.decode_vmsd(desc.devices[0], 0, "")
    assert end == len(payload)
    return nodes


def test_qtailq_with_duplicate_keys_per_element() -> None:
    elem = '"vmsd_name": "elem", "version": 1, "fields": [{"name": "v", "type": "uint16", "size": 2}]'
    dev = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
           '{"name": "q", "type": "qtailq", ' + elem + ", " + elem + ', "size": 7}]}')
    nodes = decode(dev, b"\x01\x00\x07\x01\x00\x09\x00")
    q = nodes[0]
    assert q.type == "qtailq" and q.size == 7
    assert [c.children[0].value for c in q.children] == [7, 9]
    assert [c.offset for c in q.children] == [0, 3]


def test_empty_qlist_is_one_end_marker() -> None:
    dev = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
           '{"name": "l", "type": "qlist", "size": 1}]}')
    nodes = decode(dev, b"\x00")
    assert nodes[0].children == []


def test_gtree_with_direct_keys() -> None:
    val = '"vmsd_name": "dom", "version": 1, "fields": [{"name": "id", "type": "uint32", "size": 4}]'
    dev = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
           '{"name": "domains", "type": "gtree", ' + val + ", " + val + ', "size": 31}]}')
    payload = (struct.pack(">I", 2) + b"\x01" + struct.pack(">QI", 5, 50)
               + b"\x01" + struct.pack(">QI", 6, 60) + b"\x00")
    nodes = decode(dev, payload)
    tree = nodes[0]
    assert tree.children[0].value == 2
    keys = [n.children[0].value for n in tree.children[1:]]
    vals = [n.children[1].children[0].value for n in tree.children[1:]]
    assert keys == [5, 6] and vals == [50, 60]


def test_gtree_with_key_vmsd() -> None:
    key = '"vmsd_name": "k", "version": 1, "fields": [{"name": "lo", "type": "uint64", "size": 8}]'
    val = '"vmsd_name": "m", "version": 1, "fields": [{"name": "flags", "type": "uint8", "size": 1}]'
    dev = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
           '{"name": "mappings", "type": "gtree", ' + key + ", " + val + ', "size": 15}]}')
    payload = struct.pack(">I", 1) + b"\x01" + struct.pack(">QB", 0x1000, 3) + b"\x00"
    nodes = decode(dev, payload)
    node = nodes[0].children[1]
    assert node.children[0].children[0].value == 0x1000
    assert node.children[1].children[0].value == 3


def test_gtree_count_mismatch_is_an_error() -> None:
    val = '"vmsd_name": "dom", "version": 1, "fields": [{"name": "id", "type": "uint32", "size": 4}]'
    dev = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
           '{"name": "d", "type": "gtree", ' + val + ', "size": 18}]}')
    payload = struct.pack(">I", 1) + b"\x01" + struct.pack(">QI", 5, 50) + b"\x01"
    with pytest.raises(StreamError) as exc:
        decode(dev, payload)
    assert exc.value.field_path == "d"
    assert exc.value.offset == 17


def test_null_pointer_markers_in_struct_and_scalar_arrays() -> None:
    dev = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
           '{"name": "clk", "index": 0, "type": "struct", "struct": {"vmsd_name": "clock", '
           '"version": 0, "fields": [{"name": "period", "type": "uint64", "size": 8}]}, "size": 8},'
           '{"name": "clk", "index": 1, "type": "struct", "struct": {}, "size": 1},'
           '{"name": "p", "type": "uint64", "size": 1}]}')
    nodes = decode(dev, struct.pack(">Q", 10) + b"\x30\x30")
    assert nodes[0].name == "clk[0]" and nodes[0].children[0].value == 10
    assert nodes[1].kind == "nullptr" and nodes[2].kind == "nullptr"
    with pytest.raises(StreamError, match="NULL pointer marker"):
        decode(dev, struct.pack(">Q", 10) + b"\x31\x30")


def test_array_len_struct_elements_and_subsections_inside_struct() -> None:
    inner = ('{"vmsd_name": "fdrive", "version": 1, "fields": [{"name": "head", "type": "uint8", '
             '"size": 1}], "subsections": [{"vmsd_name": "fdrive/media_rate", "version": 1, '
             '"fields": [{"name": "rate", "type": "uint8", "size": 1}]}]}')
    dev = ('{"name": "fdc", "instance_id": 0, "vmsd_name": "fdc", "version": 2, "fields": ['
           '{"name": "drives", "index": 0, "type": "struct", "struct": ' + inner + ', "size": 21},'
           '{"name": "n", "array_len": 3, "type": "uint16", "size": 2}]}')
    sub = b"\x05\x11fdrive/media_rate" + struct.pack(">I", 1) + b"\x07"
    payload = b"\x02" + sub + struct.pack(">HHH", 1, 2, 3)
    with pytest.raises(StreamError, match="description says 21"):
        decode(dev, payload)
    nodes = decode(dev.replace('"size": 21', '"size": 25'), payload)
    assert nodes[0].children[1].kind == "subsection"
    assert nodes[0].children[1].children[0].value == 7
    assert [e.value for e in nodes[1].children] == [1, 2, 3]
    assert [e.offset for e in nodes[1].children] == [25, 27, 29]


def test_old_style_section_is_one_data_buffer() -> None:
    dev = ('{"name": "slirp", "instance_id": 0, "size": 3, "fields": [{"name": "data", '
           '"size": 3, "type": "buffer"}]}')
    desc = parse_vmdesc('{"page_size": 4096, "devices": [' + dev + "]}")
    assert desc.devices[0].old_style
    nodes = decode(dev, b"abc")
    assert nodes[0].value == b"abc"


def test_signed_types_timer_and_bool() -> None:
    dev = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
           '{"name": "t", "type": "timer", "size": 8}, {"name": "b", "type": "bool", "size": 1},'
           '{"name": "le", "type": "int32 le", "size": 4}, {"name": "s", "type": "int8", "size": 1}]}')
    nodes = decode(dev, b"\xff" * 8 + b"\x02" + struct.pack(">i", -1) + b"\x80")
    assert [n.value for n in nodes] == [-1, True, -1, -128]


def test_vmdesc_with_bad_json_is_a_description_error() -> None:
    from formats.errors import DescriptionError

    with pytest.raises(DescriptionError):
        parse_vmdesc('{"devices": [{"name": 5}]}')
    with pytest.raises(DescriptionError):
        parse_vmdesc("{not json")
    assert json.loads('{"a": 1}')
