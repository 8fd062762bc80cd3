"""Writer mechanics that real pc/q35 captures do not exercise, checked against vmstate.c rules.

Each encoding is also decoded back with the analyzer (from the vmdesc the writer produced), so
writer and reader agree byte for byte on these shapes.
"""

from __future__ import annotations

import json

from analyzer.vmdesc import parse_vmdesc
from analyzer.vmstate import VmstateDecoder
from savevm.json_writer import JSONWriter, quote
from savevm.qemu_file import QEMUFile
from savevm.savevm import (
    MigrationConfig,
    SaveVMHandlers,
    SaveVMState,
    qemu_savevm_state_iterate,
    qemu_savevm_state_setup,
)
from savevm.vmstate import F, MigrationPriority, VMStateDescription, VMStateField, info
from savevm.vmstate import vmstate_save_state as save


def encode(vmsd: VMStateDescription, opaque: dict) -> tuple[bytes, str]:  # type: ignore[type-arg]
    f = QEMUFile()
    w = JSONWriter()
    w.start_object()
    w.string("name", "dev")
    w.int64("instance_id", 0)
    save(f, vmsd, opaque, w)
    w.end_object()
    return f.getvalue(), w.get()


def roundtrip(vmsd: VMStateDescription, opaque: dict) -> tuple[bytes, dict]:  # type: ignore[type-arg]
    data, desc = encode(vmsd, opaque)
    parsed = parse_vmdesc('{"page_size": 4096, "devices": [' + desc + "]}")
    nodes, end = VmstateDecoder(memoryview(data), "dev").decode_vmsd(parsed.devices[0], 0, "")
    assert end == len(data)
    for node in nodes:
        want = opaque.get(node.name)
        if isinstance(want, int):
            assert node.value == want, node.name
    return data, json.loads(desc)


def test_duplicate_names_get_k_suffix_counting_unsaved_fields() -> None:
    vmsd = VMStateDescription("d", 2, fields=[
        VMStateField("unused", info("uint8"), 1, version_id=5),
        VMStateField("x", info("uint16"), 2),
        VMStateField("unused", info("uint8"), 1),
    ])
    data, desc = roundtrip(vmsd, {"x": 7, "unused[1]": 9, "unused[0]": 1})
    assert data == b"\x00\x07\x09"
    assert [f["name"] for f in desc["fields"]] == ["x", "unused[1]"]


def test_array_len_for_compressible_arrays_index_otherwise() -> None:
    elem = VMStateDescription("e", 1, fields=[VMStateField("v", info("uint8"), 1)])
    with_sub = VMStateDescription("w", 1, fields=[VMStateField("v", info("uint8"), 1)],
                                  subsections=[])
    vmsd = VMStateDescription("d", 1, fields=[
        VMStateField("a", info("uint32"), 4, F.VMS_ARRAY, num=3),
        VMStateField("s", None, 0, F.VMS_ARRAY | F.VMS_STRUCT, num=2, vmsd=elem),
        VMStateField("t", None, 0, F.VMS_ARRAY | F.VMS_STRUCT, num=2, vmsd=with_sub),
        VMStateField("g", info("uint8"), 1, F.VMS_ARRAY, num=2,
                     field_exists=lambda o, v: True),
    ])
    _, desc = roundtrip(vmsd, {"a": [1, 2, 3], "s": [{"v": 1}, {"v": 2}],
                               "t": [{"v": 3}, {"v": 4}], "g": [5, 6]})
    f = desc["fields"]
    assert f[0] == {"name": "a", "array_len": 3, "type": "uint32", "size": 4}
    assert f[1]["array_len"] == 2 and f[1]["struct"]["vmsd_name"] == "e"
    assert [(x["name"], x.get("index")) for x in f[2:4]] == [("t", 0), ("t", 1)]
    assert [(x["name"], x.get("index")) for x in f[4:]] == [("g", 0), ("g", 1)]


def test_varray_vbuffer_and_null_pointers() -> None:
    elem = VMStateDescription("clk", 0, fields=[VMStateField("p", info("uint64"), 8)])

    def clk_field(**kw: object) -> VMStateField:
        return VMStateField("clk", None, 8, F.VMS_ARRAY | F.VMS_ARRAY_OF_POINTER | F.VMS_STRUCT,
                            num=2, vmsd=elem, **kw)  # type: ignore[arg-type]

    head = [
        VMStateField("n", info("uint16"), 2),
        VMStateField("v", info("uint8"), 1, F.VMS_VARRAY_UINT16, num_field="n"),
        VMStateField("len", info("int32"), 4),
        VMStateField("buf", info("buffer"), 0, F.VMS_VBUFFER, size_field="len"),
    ]
    values = {"n": 2, "v": [1, 2], "len": 3, "buf": b"abc", "clk": [{"p": 5}, None]}
    # Non-compressible (field_exists): every element is described, the NULL one as "struct": {}.
    vmsd = VMStateDescription("d", 1, fields=[*head, clk_field(field_exists=lambda o, v: True)])
    data, desc = roundtrip(vmsd, values)
    assert data == b"\x00\x02\x01\x02\x00\x00\x00\x03abc" + (5).to_bytes(8, "big") + b"\x30"
    nulls = [x for x in desc["fields"] if x["name"] == "clk"]
    assert nulls[1] == {"name": "clk", "index": 1, "type": "struct", "struct": {}, "size": 1}
    # 7.2 still counts an array of pointers as compressible: only the first element is
    # described (array_len), so a later NULL is invisible in its vmdesc (10.x splits runs).
    vmsd = VMStateDescription("d", 1, fields=[*head, clk_field()])
    data2, text = encode(vmsd, values)
    assert data2 == data
    clk = [x for x in json.loads(text)["fields"] if x["name"] == "clk"]
    assert clk == [{"name": "clk", "array_len": 2, "type": "struct",
                    "struct": {"vmsd_name": "clk", "version": 0,
                               "fields": [{"name": "p", "type": "uint64", "size": 8}]},
                    "size": 8}]


def test_qtailq_and_gtree_repeat_nested_keys() -> None:
    elem = VMStateDescription("el", 1, fields=[VMStateField("v", info("uint16"), 2)])
    val = VMStateDescription("dom", 1, fields=[VMStateField("id", info("uint32"), 4)])
    vmsd = VMStateDescription("d", 1, fields=[
        VMStateField("q", info("qtailq"), 0, vmsd=elem),
        VMStateField("t", info("gtree"), 0, vmsd=val),
    ])
    data, desc_text = encode(vmsd, {"q": [{"v": 1}, {"v": 2}], "t": [(9, {"id": 3})]})
    assert data == (b"\x01\x00\x01\x01\x00\x02\x00" + b"\x00\x00\x00\x01\x01"
                    + (9).to_bytes(8, "big") + b"\x00\x00\x00\x03\x00")
    assert desc_text.count('"vmsd_name": "el"') == 2
    roundtrip(vmsd, {"q": [{"v": 1}, {"v": 2}], "t": [(9, {"id": 3})]})


def test_subsections_written_when_needed_nested_inside_structs() -> None:
    sub = VMStateDescription("s/extra", 3, fields=[VMStateField("e", info("uint8"), 1)],
                             needed=lambda o: o["e"] != 0)
    vmsd = VMStateDescription("s", 1, fields=[VMStateField("a", info("uint8"), 1)],
                              subsections=[sub])
    data, desc = roundtrip(vmsd, {"a": 1, "e": 2})
    assert data == b"\x01\x05\x07s/extra\x00\x00\x00\x03\x02"
    assert desc["subsections"][0] == {"vmsd_name": "s/extra", "version": 3, "fields": [
        {"name": "e", "type": "uint8", "size": 1}]}
    data, desc = roundtrip(vmsd, {"a": 1, "e": 0})
    assert data == b"\x01" and "subsections" not in desc


def test_json_writer_escapes_like_qemu() -> None:
    assert quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\u0001\\u00E9"'


def test_iterate_stops_at_first_unfinished_handler_and_priorities_order() -> None:
    state = SaveVMState()
    calls: list[str] = []

    def live(name: str, done: int) -> SaveVMHandlers:
        def it(f: QEMUFile, _o: object) -> int:
            calls.append(name)
            return done

        return SaveVMHandlers(save_setup=lambda f, o: 0, save_live_iterate=it)

    state.register_savevm_live("first", 0, 1, live("first", 0), None)
    state.register_savevm_live("second", 0, 1, live("second", 1), None)
    iommu = VMStateDescription("iommu", 1, priority=MigrationPriority.MIG_PRI_IOMMU)
    se = state.vmstate_register(iommu, {})
    assert state.handlers[0] is se and se.section_id == 2
    f = QEMUFile()
    cfg = MigrationConfig()
    qemu_savevm_state_setup(f, cfg=cfg, state=state)
    assert qemu_savevm_state_iterate(f, state, cfg) == 0
    assert calls == ["first"]
