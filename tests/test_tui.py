"""Pilot tests of `migstream browse` on real captures: keys in, widget state out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from analyzer.cli import main as cli_main
from analyzer.model import Section, Stream
from analyzer.tui.app import BrowseApp, StreamPane
from analyzer.tui.entries import Kind, StreamTree, locate
from analyzer.tui.hexview import HexView
from analyzer.tui.screens import GotoScreen, HelpScreen, SearchScreen
from tests.tui_support import LIVE, XBZRLE, drive, type_text, wait_workers

pytestmark = pytest.mark.skipif(not LIVE.exists(), reason="captures missing")


def cpu_field(path: Path, name: str) -> tuple[int, int, Any]:
    """(offset, size, value) of a cpu#0 field, from the model."""
    with Stream.open(path) as s:
        cpu = next(i for i in s.sections if i.idstr == "cpu")
        assert cpu.nodes is not None
        node = next(n for n in cpu.nodes if n.name == name)
        return node.offset, node.size, node.value


def pane_of(app: BrowseApp, i: int = 0) -> StreamPane:
    return app.panes[i]


async def goto(pilot: Pilot[Any], text: str) -> None:
    await pilot.press("g")
    assert isinstance(pilot.app.screen, GotoScreen)
    await type_text(pilot, text)
    await pilot.press("enter")
    await pilot.pause()


def test_open_shows_phases_and_expands_lazily() -> None:
    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        tree = pane.structure
        labels = [str(n.label) for n in tree.root.children]
        assert [lb.split("  ")[0] for lb in labels] == [
            "file header", "setup", "iterate", "complete", "VMDESCRIPTION", "RAM blocks"]
        assert "rounds 1-34" in labels[2]
        # Nothing below the phases exists before it is expanded.
        complete = tree.root.children[3]
        assert len(complete.children) == 0
        assert tree.cursor_node is tree.root
        await pilot.press("down", "down", "down", "down")
        assert tree.cursor_node is complete
        assert pane.current is complete.data
        await pilot.press("right")
        await pilot.pause()
        kids = [str(n.label).split("  ")[0] for n in complete.children]
        assert kids[0] == "END ram#0" and "FULL cpu#0" in kids and len(kids) == 34
        await pilot.press("down")
        end_ram = complete.children[0]
        assert tree.cursor_node is end_ram
        # The hex pane moved to the section and highlights exactly its bytes.
        item = end_ram.data.item if end_ram.data else None
        assert isinstance(item, Section)
        assert pane.hex.cursor == item.offset
        assert pane.hex.selection == (item.offset, item.end)
        # Expanding a RAM section shows page runs, not pages.
        await pilot.press("right")
        await pilot.pause()
        runs = [n for n in end_ram.children if n.data and n.data.kind == Kind.RUN]
        first, last = item.ram_rows
        assert 0 < len(runs) < last - first
        assert any(" x290 " in str(n.label) for n in runs)
        await pilot.press("left")
        assert not end_ram.is_expanded

    drive([LIVE], body)


def test_select_field_then_hex_cursor_selects_innermost() -> None:
    eip_off, eip_size, eip = cpu_field(LIVE, "env.eip")
    regs_off, _, _ = cpu_field(LIVE, "env.regs")

    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        await goto(pilot, hex(eip_off))
        cur = pane.current
        assert cur is not None and cur.node is not None and cur.node.name == "env.eip"
        assert pane.structure.cursor_node is not None
        assert pane.structure.cursor_node.data is cur
        assert pane.hex.selection == (eip_off, eip_off + eip_size)
        # The enclosing section is shaded.
        assert any(s <= eip_off and eip_off + eip_size <= e for s, e in pane.hex.shades)
        details = "\n".join(f"{k} {v}" for k, v in pane.detail_rows)
        assert f"{eip:,}" in details and "int LE" in details and "uint64" in details
        # Move the hex cursor back into env.regs: the tree follows to the element.
        pane.hex.focus()
        await pilot.press("up")
        await pilot.pause()
        assert pane.hex.cursor == eip_off - 16
        cur = pane.current
        assert cur is not None and cur.node is not None
        assert cur.node.name == "env.regs[14]"
        assert cur.path == "env.regs/env.regs[14]"
        assert pane.structure.cursor_node is not None
        assert pane.structure.cursor_node.data is cur
        assert cur.offset == regs_off + 14 * 8
        # Status bar names the offset, section and phase.
        status = app.status_text
        assert hex(eip_off - 16) in status and "FULL cpu#0" in status and "complete" in status

    drive([LIVE], body)


def test_goto_rejects_bad_offsets() -> None:
    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        await pilot.press("g")
        await type_text(pilot, "0xzz")
        await pilot.press("enter")
        assert isinstance(app.screen, GotoScreen)
        assert "not a number" in str(app.screen.query_one("#error", Static).content)
        await pilot.press("escape")
        assert not isinstance(app.screen, GotoScreen)
        pane = pane_of(app)
        size = pane.stream.size if pane.stream else 0
        await goto(pilot, str(size - 1))
        assert pane.hex.cursor == size - 1
        assert pane.current is not None and pane.current.kind == Kind.VMDESC

    drive([LIVE], body)


def test_search_field_name_value_hex_and_text_in_ram() -> None:
    eip_off, _, eip = cpu_field(LIVE, "env.eip")

    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        await pilot.press("slash")
        assert isinstance(app.screen, SearchScreen)
        await type_text(pilot, "env.eip")
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.matches) == 1
        assert pane.current is not None and pane.current.offset == eip_off
        # by value (decimal), then next/previous match wrap around
        await pilot.press("slash")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await pilot.press("f2")
        screen.query_one(Input).value = str(eip)
        await pilot.press("enter")
        await pilot.pause()
        assert any(m.offset == eip_off for m in app.matches)
        # hex bytes: every section footer of cpu#0's id
        await pilot.press("slash")
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SearchScreen) and screen.mode.value == "hex"
        screen.query_one(Input).value = "51 45 56 4d"
        await pilot.press("enter")
        await wait_workers(pilot)
        assert [m.offset for m in app.matches] == [0]
        assert pane.hex.match == (0, 4)
        # text inside RAM pages: SeaBIOS's banner is in plain pages of pc.bios
        await pilot.press("slash")
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SearchScreen) and screen.mode.value == "text"
        screen.query_one(Input).value = "SeaBIOS"
        await pilot.press("enter")
        await wait_workers(pilot)
        assert len(app.matches) >= 2
        first = app.matches[0]
        cur = pane.current
        assert cur is not None and cur.kind == Kind.RUN
        assert cur.offset <= first.offset < cur.end
        assert pane.stream is not None
        assert pane.stream.read(first.offset, 7) == b"SeaBIOS"
        await pilot.press("n")
        assert app.match_index == 1
        await pilot.press("N", "N")
        assert app.match_index == len(app.matches) - 1

    drive([LIVE], body)


def test_search_decoded_xbzrle_pages() -> None:
    """Text that only exists after applying XBZRLE deltas is found, and the jump lands on
    the delta record."""

    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        stream = pane.stream
        assert stream is not None
        from analyzer.ram import RamImage
        from formats.ram_scan import XBZRLE as XB

        img = RamImage(stream)
        ram = stream.ram
        row = next(i for i in range(len(ram)) if ram.addr_flags[i] & 0xFDF == XB)
        key = (ram.block[row], int(ram.addr_flags[row] & ~0xFFF))
        final = img.page(*key)
        assert final is not None
        raw = stream.read(0, stream.size)
        needle = next(final[i:i + 12] for i in range(0, 4096 - 12, 4)
                      if len(set(final[i:i + 12])) > 6 and final[i:i + 12] not in raw)
        app.start_search(pane, app.last_search[0].__class__("hex"), needle.hex())
        await wait_workers(pilot)
        assert app.matches and all("decoded XBZRLE" in m.label for m in app.matches)
        cur = pane.current
        assert cur is not None and cur.kind == Kind.RUN

    drive([XBZRLE], body)


def test_bookmarks_and_history() -> None:
    eip_off, _, _ = cpu_field(LIVE, "env.eip")

    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        await goto(pilot, hex(eip_off))
        await pilot.press("m")
        assert eip_off in pane.bookmarks
        assert "★" in str(pane.structure.cursor_node.label if pane.structure.cursor_node
                          else "")
        await goto(pilot, "0x10")
        assert pane.hex.cursor == 0x10
        await pilot.press("b")
        assert pane.hex.cursor == eip_off
        await goto(pilot, "0x20")
        await pilot.press("left_square_bracket")
        assert pane.hex.cursor == eip_off
        await pilot.press("left_square_bracket")
        assert pane.hex.cursor == 0x10
        await pilot.press("right_square_bracket")
        assert pane.hex.cursor == eip_off
        await pilot.press("m")
        assert not pane.bookmarks

    drive([LIVE], body)


def test_copy_and_export(tmp_path: Path) -> None:
    eip_off, eip_size, eip = cpu_field(LIVE, "env.eip")

    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        await goto(pilot, hex(eip_off))
        await pilot.press("c")
        assert app.clipboard == str(eip)
        await pilot.press("p")
        assert app.clipboard == "cpu#0/env.eip"
        await pilot.press("x")
        assert app.clipboard == LIVE.read_bytes()[eip_off:eip_off + eip_size].hex()
        await pilot.press("w")
        out = tmp_path / "eip.bin"
        app.screen.query_one("#path", Input).value = str(out)
        await pilot.press("enter")
        await wait_workers(pilot)
        assert out.read_bytes() == LIVE.read_bytes()[eip_off:eip_off + eip_size]
        assert not list(tmp_path.glob(".migstream-*"))

    drive([LIVE], body)


def test_export_ram_block_matches_extract(tmp_path: Path) -> None:
    from analyzer.ram import extract

    with Stream.open(LIVE) as s:
        extract(s, tmp_path / "ref")

    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        tree = pane.structure
        ram_node = tree.root.children[-1]
        tree.goto_node(ram_node)
        await pilot.press("right")
        await pilot.pause()
        bios = next(n for n in ram_node.children if str(n.label).startswith("pc.bios"))
        tree.goto_node(bios)
        await pilot.pause()
        assert pane.current is not None and pane.current.kind == Kind.BLOCK
        await pilot.press("w")
        out = tmp_path / "bios.img"
        app.screen.query_one("#path", Input).value = str(out)
        await pilot.press("enter")
        await wait_workers(pilot)
        assert out.read_bytes() == (tmp_path / "ref" / "pc.bios").read_bytes()

    drive([LIVE], body)


def test_help_lists_every_key() -> None:
    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.plain_text
        for b in BrowseApp.BINDINGS:
            assert getattr(b, "description", "") in text
        for b in HexView.BINDINGS:
            assert getattr(b, "description", "") in text
        assert "ctrl+p" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

    drive([LIVE], body)


def test_command_palette_goes_to_a_device() -> None:
    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        await pilot.press("ctrl+p")
        await type_text(pilot, "device cpu#0")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        cur = pane.current
        assert cur is not None and cur.kind == Kind.ITEM
        assert isinstance(cur.item, Section) and cur.item.name == "cpu#0"

    drive([LIVE], body)


def test_findings_panel_on_a_truncated_stream(tmp_path: Path) -> None:
    data = LIVE.read_bytes()
    eip_off, _, _ = cpu_field(LIVE, "env.eip")
    cut = tmp_path / "truncated.bin"
    cut.write_bytes(data[:eip_off + 3])

    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        pane = pane_of(app)
        stream = pane.stream
        assert stream is not None and stream.errors
        table = app.query_one("#findings", DataTable)
        assert table.display and table.row_count >= 1
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        parser_row = next(i for i, r in enumerate(rows)
                          if str(r[4]) == stream.errors[0].message)
        assert str(rows[parser_row][0]) == "error"
        assert int(str(rows[parser_row][2]), 16) == stream.errors[0].offset
        # everything before the failure is browsable
        labels = [str(n.label).split("  ")[0] for n in pane.structure.root.children]
        assert "iterate" in labels and labels[-2] == "not decoded"
        table.focus()
        table.move_cursor(row=parser_row)
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert pane.hex.cursor == stream.errors[0].offset
        assert pane.current is not None and pane.current.kind == Kind.TAIL
        assert "error" in app.status_text
        await pilot.press("f")
        assert not table.display

    drive([cut], body)


def test_diff_mode_marks_and_steps_through_differences() -> None:
    async def body(app: BrowseApp, pilot: Pilot[Any]) -> None:
        assert app.diff is not None
        diffs = app.diff.diffs
        assert any(d.kind == "ram" for d in diffs)
        assert any(d.label.startswith("timer#0/cpu_ticks_offset") for d in diffs)
        table = app.query_one("#diffs", DataTable)
        assert table.row_count == len(diffs)
        a, b = app.panes
        await pilot.press("d")
        d0 = diffs[0]
        assert app.diff_index == 0
        assert d0.a is not None and d0.b is not None
        assert a.hex.cursor == d0.a[0] and b.hex.cursor == d0.b[0]
        for _ in range(len(diffs)):
            await pilot.press("d")
            d = diffs[app.diff_index]
            if d.kind == "field":
                break
        assert d.kind == "field" and d.a is not None and d.b is not None
        cur_a, cur_b = a.current, b.current
        assert cur_a is not None and cur_a.node is not None and cur_a.offset == d.a[0]
        assert cur_b is not None and cur_b.node is not None and cur_b.path == cur_a.path
        assert str(a.structure.cursor_node.label if a.structure.cursor_node else "")[0] == "≠"
        await pilot.press("D")
        assert diffs[app.diff_index] is not d

    drive([LIVE, XBZRLE], body)


def test_locate_matches_model_everywhere() -> None:
    """The tree's offset lookup finds, for every decoded field, that field or a child."""
    with Stream.open(XBZRLE) as s:
        tree = StreamTree(s)
        for sec in s.sections[-5:]:
            for top in sec.nodes or []:
                for _, node in top.walk():
                    if node.size:
                        chain = locate(tree.root, node.offset, node)
                        assert chain[-1].node is node
        for off in range(0, s.size, 4099):
            chain = locate(tree.root, off)
            assert chain[-1].offset <= off < chain[-1].end


def test_cli_browse_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["browse", str(tmp_path / "missing.bin")]) == 2
    assert "no such file" in capsys.readouterr().err
