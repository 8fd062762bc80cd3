"""The Textual browser: tree, hex and details panes over one stream, or two side by side.

Layout follows Wireshark's three panes: the structure tree (stream -> phases -> items ->
fields; RAM sections -> page runs), the bytes of the whole stream with the selected entry
highlighted, and the details of the selection; a status bar and a findings panel below. The
first screen appears before anything is indexed: a thread worker maps and indexes the stream
(`Stream.open` with a progress callback), items appear in the tree as they are indexed, and the
full tree replaces them when indexing ends. With two files (diff mode) both panes are shown
stacked side by side and a list of differences below them.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import Worker, get_current_worker

from analyzer.model import Section, Stream
from analyzer.ram import RamImage
from analyzer.tui.diffing import Difference, DiffResult, Side, diff_streams
from analyzer.tui.entries import Entry, Kind, RamRuns, StreamTree, hexoff, locate
from analyzer.tui.findings import Finding, parse_findings, sort_findings, validate_findings
from analyzer.tui.hexview import HexView
from analyzer.tui.screens import ExportScreen, GotoScreen, HelpScreen, PickScreen, SearchScreen
from analyzer.tui.search import Match, Mode, needle_for, search_bytes, search_model
from analyzer.tui.values import cursor_rows, decode_state, entry_rows
from analyzer.vmdesc import VmDescription
from formats.constants import TARGET_PAGE_SIZE
from formats.errors import MigstreamError

log = logging.getLogger(__name__)

PROVISIONAL_LIMIT = 2000
"""Items shown while indexing; the full tree replaces them when indexing ends."""


class _Cancelled(Exception):
    """Raised from the progress callback to stop indexing."""


# -- messages from worker threads ---------------------------------------------------------


class Mapped(Message):
    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.stream = stream


class IndexProgress(Message):
    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total


class Indexed(Message):
    def __init__(self, stream: Stream, runs: RamRuns, seconds: float) -> None:
        super().__init__()
        self.stream = stream
        self.runs = runs
        self.seconds = seconds


class IndexFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


# -- the tree -----------------------------------------------------------------------------


class BrowserTree(Tree[Entry]):
    """The structure tree; ← and → close/open nodes as in Wireshark and ksv."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right", "open_node", "Expand / first child", show=False),
        Binding("left", "close_node", "Collapse / parent", show=False),
        Binding("backspace", "cursor_parent", "Go to parent", show=False),
    ]

    def goto_node(self, node: TreeNode[Entry]) -> None:
        """Move the cursor to node once the tree's line list reflects recent expansions."""
        _ = self._tree_lines
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)
        # The virtual size follows the rebuilt lines only after a refresh.
        self.call_after_refresh(self.scroll_to_node, node, False)

    def action_open_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and not node.is_expanded:
            node.expand()
        elif node.children:
            self.goto_node(node.children[0])

    def action_close_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            self.goto_node(node.parent)


# -- one stream ---------------------------------------------------------------------------


class StreamPane(Vertical):
    """Tree, hex and details of one stream, indexed in the background."""

    class Selected(Message):
        """The pane's current entry changed (for the status bar and diff sync)."""

        def __init__(self, pane: StreamPane) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, path: str, descriptions: VmDescription | None, name: str,
                 stacked: bool) -> None:
        super().__init__(id=f"pane-{name.lower()}", classes="stacked" if stacked else "")
        self.path = path
        self.letter = name
        self.descriptions = descriptions
        self.stream: Stream | None = None
        self.model: StreamTree | None = None
        self.runs: RamRuns | None = None
        self.indexed = False
        self.failed: str | None = None
        self.index_seconds: float | None = None
        self.current: Entry | None = None
        self.findings: list[Finding] = []
        self.bookmarks: dict[int, str] = {}
        self.diff: Side | None = None
        self.detail_rows: list[tuple[str, str]] = []
        """What the details pane shows, as (label, text) rows."""
        self._tnodes: dict[int, TreeNode[Entry]] = {}
        self._populated: set[int] = set()
        self._provisional = 0
        self._user_moved = False
        self._progress_shown = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal(classes="progress-row"):
            yield Label(f"indexing {os.path.basename(self.path)}", classes="progress-label")
            yield ProgressBar(total=100, show_eta=False, classes="progress")
        tree = BrowserTree(Text(os.path.basename(self.path)), id="tree")
        tree.border_title = f"{self.letter}: {os.path.basename(self.path)}" \
            if "stacked" in self.classes else os.path.basename(self.path)
        tree.guide_depth = 3
        yield tree
        with Vertical(classes="right"):
            hexview = HexView(classes="hex")
            hexview.border_title = "bytes"
            yield hexview
            details = VerticalScroll(Static("", classes="details-body"), classes="details")
            details.border_title = "details"
            yield details

    @property
    def structure(self) -> BrowserTree:
        return self.query_one(BrowserTree)

    @property
    def hex(self) -> HexView:
        return self.query_one(HexView)

    def on_resize(self) -> None:
        self.fit_hex()

    def fit_hex(self) -> None:
        """16 bytes a row when the terminal is wide enough, else what leaves the tree 24."""
        if "stacked" in self.classes or not self.size.width:
            return
        hexview = self.hex
        want = hexview.row_width(16) + 3
        hexview.styles.width = min(want, max(self.size.width - 26, 30))

    def on_mount(self) -> None:
        self.structure.root.data = None
        self.structure.loading = False
        self._index()

    # -- indexing ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def _index(self) -> None:
        worker = get_current_worker()
        t0 = time.monotonic()
        last = [0.0]
        opened: list[Stream] = []

        def mapped(stream: Stream) -> None:
            opened.append(stream)
            self.post_message(Mapped(stream))

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise _Cancelled
            now = time.monotonic()
            if now - last[0] >= 0.05:
                last[0] = now
                self.post_message(IndexProgress(done, total))

        try:
            stream = Stream.open(self.path, self.descriptions, progress, on_mapped=mapped)
        except _Cancelled:
            for s in opened:
                s.close()
            return
        except MigstreamError as exc:
            self.post_message(IndexFailed(str(exc)))
            return
        runs = RamRuns(stream)
        self.post_message(Indexed(stream, runs, time.monotonic() - t0))

    @on(Mapped)
    def _mapped(self, msg: Mapped) -> None:
        self.stream = msg.stream
        self.model = StreamTree(msg.stream, provisional=True)
        self.hex.set_stream(msg.stream)
        self.fit_hex()
        root = self.structure.root
        root.data = self.model.root
        root.set_label(self.label_for(self.model.root, "indexing…"))
        root.expand()
        if not self._user_moved:
            self._show_entry(self.model.root, move_hex=False)

    @on(IndexProgress)
    def _progress(self, msg: IndexProgress) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=msg.total or 1, progress=msg.done)
        stream, model = self.stream, self.model
        if stream is None or model is None or self.indexed:
            return
        root = self.structure.root
        items = stream.items
        while self._provisional < min(len(items), PROVISIONAL_LIMIT):
            it = items[self._provisional]
            self._provisional += 1
            if it.parent is None:
                e = model.item_entry(it)
                e.parent = model.root
                root.add_leaf(self.label_for(e), data=e)
        pct = 100 * msg.done // max(msg.total, 1)
        root.set_label(self.label_for(model.root, f"indexing… {pct}%"))

    @on(IndexFailed)
    def _failed(self, msg: IndexFailed) -> None:
        self.failed = msg.error
        self.indexed = True
        self.add_class("indexed")
        self.structure.root.set_label(Text(f"{os.path.basename(self.path)}: {msg.error}",
                                      style="bold red"))
        self.findings = [Finding("error", None, "", msg.error, "parser")]
        self.post_message(self.Selected(self))
        self.app.post_message(FindingsChanged())

    @on(Indexed)
    def _indexed(self, msg: Indexed) -> None:
        keep = self.hex.cursor if self._user_moved else None
        self.stream = msg.stream
        self.runs = msg.runs
        self.index_seconds = msg.seconds
        self.model = StreamTree(msg.stream, msg.runs)
        self.indexed = True
        self.add_class("indexed")
        self.hex.set_stream(msg.stream)
        tree = self.structure
        tree.clear()
        self._tnodes.clear()
        self._populated.clear()
        root = tree.root
        root.data = self.model.root
        root.set_label(self.label_for(self.model.root))
        self._tnodes[id(self.model.root)] = root
        self._populate(root)
        root.expand()
        self.findings = parse_findings(msg.stream)
        if keep is not None:
            self.jump(keep, record=False)
        else:
            tree.goto_node(root)
            self._show_entry(self.model.root, move_hex=False)
        self._validate()
        self.app.post_message(FindingsChanged())
        self.app.post_message(PaneIndexed(self))

    @work(thread=True, group="validate", exit_on_error=False)
    def _validate(self) -> None:
        stream = self.stream
        if stream is None:
            return
        try:
            found = validate_findings(stream)
        except Exception as exc:
            log.debug("validation failed", exc_info=True)
            found = [Finding("note", None, "", f"validation failed: {exc}", "validate")]
        if found:
            self.app.call_from_thread(self._add_findings, found)

    def _add_findings(self, found: list[Finding]) -> None:
        self.findings = self.findings + found
        self.app.post_message(FindingsChanged())

    # -- tree ----------------------------------------------------------------------------

    def label_for(self, e: Entry, extra: str | None = None) -> Text:
        styles = {Kind.ROOT: "bold", Kind.PHASE: "bold $accent", Kind.BUCKET: "italic",
                  Kind.HEADER: "", Kind.VMDESC: "bold", Kind.RAM: "bold", Kind.BLOCK: "bold",
                  Kind.TAIL: "bold red" if self.stream and self.stream.errors else "yellow"}
        style = styles.get(e.kind, "")
        if e.kind == Kind.ITEM and e.item is not None:
            style = {"START": "cyan", "PART": "blue", "END": "cyan", "FULL": "green",
                     "COMMAND": "magenta", "CONFIGURATION": "yellow", "EOF": "dim"}.get(
                e.item.type.short, "")
        text = Text()
        mark = self._diff_mark(e)
        if mark:
            text.append(mark + " ", style="bold red" if mark == "≠" else "yellow")
        if e.offset in self.bookmarks and not e.virtual and e.kind != Kind.ROOT:
            text.append("★ ", style="yellow")
        text.append(e.label, style=style.replace("$accent", "magenta"))
        note = extra if extra is not None else e.note
        if note:
            text.append("  " + note, style="dim")
        return text

    def _diff_mark(self, e: Entry) -> str:
        d = self.diff
        if d is None:
            return ""
        if e.node is not None and id(e.node) in d.nodes:
            return "≠" if e.node.children is None else "~"
        if e.kind == Kind.RUN and e.run is not None and e.run in d.runs:
            return "≠"
        if e.kind == Kind.ITEM and e.item is not None and e.item.index in d.items:
            return "~"
        if e.kind in (Kind.PHASE, Kind.BUCKET) and any(
                e.offset <= s < e.end for s in d.starts[:1]):
            return "~"
        return ""

    def _populate(self, tnode: TreeNode[Entry]) -> None:
        entry = tnode.data
        if entry is None or id(entry) in self._populated:
            return
        self._populated.add(id(entry))
        for child in entry.children:
            node = tnode.add(self.label_for(child), data=child, allow_expand=child.expandable)
            self._tnodes[id(child)] = node

    def relabel(self) -> None:
        for node in self._tnodes.values():
            if node.data is not None:
                node.set_label(self.label_for(node.data))

    @on(Tree.NodeExpanded)
    def _expanded(self, event: Tree.NodeExpanded[Entry]) -> None:
        if self.indexed:
            self._populate(event.node)

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted[Entry]) -> None:
        # Programmatic moves show their entry directly; an event for a node that is no longer
        # under the cursor is stale (the tree re-posts while lines shift on expansion).
        if event.node is not self.structure.cursor_node:
            return
        entry = event.node.data
        if entry is None or entry is self.current:
            return
        inside = entry.offset <= self.hex.cursor < entry.end
        self._show_entry(entry, move_hex=not inside)

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected[Entry]) -> None:
        entry = event.node.data
        if entry is not None and not (entry.virtual and entry.kind != Kind.RUN):
            self.app.post_message(Jumped(self, entry.offset))

    def node_for(self, chain: list[Entry]) -> TreeNode[Entry] | None:
        """Expand the tree along chain (root first) and return the last entry's node."""
        node = self.structure.root
        for parent, child in pairwise(chain):
            pnode = self._tnodes.get(id(parent))
            if pnode is None:
                return node
            self._populate(pnode)
            if not pnode.is_expanded:
                pnode.expand()
            found = self._tnodes.get(id(child))
            if found is None:
                return pnode
            node = found
        return node

    def select_chain(self, chain: list[Entry], from_hex: bool) -> None:
        node = self.node_for(chain)
        if node is None:
            return
        if node is not self.structure.cursor_node:
            self.structure.goto_node(node)
        if node.data is not None:
            self._show_entry(node.data, move_hex=not from_hex)

    # -- selection -----------------------------------------------------------------------

    def _show_entry(self, entry: Entry, move_hex: bool) -> None:
        self.current = entry
        hexview = self.hex
        model = self.model
        real = not (entry.virtual and entry.kind != Kind.RUN) and entry.kind != Kind.ROOT
        hexview.selection = (entry.offset, entry.end) if real else None
        shades: list[tuple[int, int]] = []
        if model is not None and real and self.indexed:
            for anc in locate(model.root, entry.offset)[:-1]:
                if anc.kind in (Kind.ROOT, Kind.PHASE, Kind.BUCKET) or anc is entry:
                    continue
                if anc.offset <= entry.offset and entry.end <= anc.end and anc.size > entry.size:
                    shades.append((anc.offset, anc.end))
        hexview.shades = shades
        if move_hex and real:
            hexview.move_to(entry.offset, top_margin=2)
        hexview.refresh()
        self.update_details()
        self.post_message(self.Selected(self))

    def update_details(self) -> None:
        body = self.query_one(".details-body", Static)
        stream, entry = self.stream, self.current
        if stream is None or entry is None:
            body.update(Text("mapping the stream…", style="dim"))
            return
        rows = entry_rows(stream, entry, self.runs) + cursor_rows(stream, self.hex.cursor)
        self.detail_rows = rows
        table = Table(show_header=False, box=None, padding=(0, 1), expand=True)
        table.add_column("k", style="bold $text-muted".replace("$text-muted", "grey62"),
                         no_wrap=True, width=12)
        table.add_column("v", overflow="fold")
        for k, v in rows:
            table.add_row(k, v)
        body.update(table)

    @on(HexView.CursorMoved)
    def _hex_moved(self, msg: HexView.CursorMoved) -> None:
        self._user_moved = True
        if self.model is None or not self.indexed:
            self.update_details()
            self.post_message(self.Selected(self))
            return
        chain = locate(self.model.root, msg.offset)
        self.select_chain(chain, from_hex=True)
        self.update_details()
        self.post_message(self.Selected(self))

    @on(HexView.EntryStep)
    def _entry_step(self, msg: HexView.EntryStep) -> None:
        e = self.current
        if e is None:
            return
        target = e.end if msg.direction > 0 else max(e.offset - 1, 0)
        self.jump(target)

    def jump(self, offset: int, target: object = None, record: bool = True) -> None:
        """Select the innermost entry at offset (or target's entry) and show its bytes."""
        self._user_moved = True
        if self.model is None:
            return
        chain = locate(self.model.root, offset, target) if self.indexed else [self.model.root]
        self.hex.move_to(offset, top_margin=2)
        self.select_chain(chain, from_hex=True)
        self._show_entry(chain[-1], move_hex=False)
        if record:
            self.app.post_message(Jumped(self, offset))

    def cursor_offset(self) -> int:
        return self.hex.cursor


# -- app-level messages -------------------------------------------------------------------


class FindingsChanged(Message):
    pass


class PaneIndexed(Message):
    def __init__(self, pane: StreamPane) -> None:
        super().__init__()
        self.pane = pane


class Jumped(Message):
    def __init__(self, pane: StreamPane, offset: int) -> None:
        super().__init__()
        self.pane = pane
        self.offset = offset


class SearchDone(Message):
    def __init__(self, matches: list[Match], capped: bool, cancelled: bool) -> None:
        super().__init__()
        self.matches = matches
        self.capped = capped
        self.cancelled = cancelled


# -- command palette ----------------------------------------------------------------------


class StreamCommands(Provider):
    """Go to a section, a device or a RAM block from the command palette (ctrl+p)."""

    def _targets(self) -> list[tuple[str, str, Callable[[], None]]]:
        app = self.app
        assert isinstance(app, BrowseApp)
        out: list[tuple[str, str, Callable[[], None]]] = []
        for pane in app.panes:
            stream = pane.stream
            if stream is None or not pane.indexed:
                continue
            tag = f"{pane.letter}: " if len(app.panes) > 1 else ""
            seen_dev: set[str] = set()
            for it in stream.items:
                if isinstance(it, Section):
                    out.append((f"{tag}section {it.type.short} {it.name} @ {hexoff(it.offset)}",
                                f"phase {it.phase.value}, round {it.round}",
                                partial(app.go, pane, it.offset, it)))
                    if not it.is_ram and it.name not in seen_dev:
                        seen_dev.add(it.name)
                        out.append((f"{tag}device {it.name}",
                                    f"{it.idstr} instance {it.instance_id}, v{it.version_id}",
                                    partial(app.go, pane, it.offset, it)))
            for bi, blk in enumerate(stream.ram.blocks):
                out.append((f"{tag}RAM block {blk.idstr}", f"{blk.used_length:#x} bytes",
                            partial(app.go_block, pane, bi)))
        return out

    async def discover(self) -> Hits:
        for text, help_, cb in self._targets()[:200]:
            yield DiscoveryHit(text, cb, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_, cb in self._targets():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), cb, help=help_)


# -- the app ------------------------------------------------------------------------------


@dataclass
class HistoryEntry:
    pane: str
    offset: int


class BrowseApp(App[int]):
    """`migstream browse FILE [FILE2]`."""

    TITLE = "migstream browse"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = (
        App.COMMANDS | {StreamCommands}
    )
    CSS = """
    Screen { layout: vertical; }
    #panes { height: 1fr; }
    StreamPane { width: 1fr; height: 1fr; layout: horizontal; }
    StreamPane.stacked { layout: vertical; }
    StreamPane .progress-row { dock: top; height: 1; padding: 0 1; background: $boost; }
    StreamPane.indexed .progress-row { display: none; }
    StreamPane .progress-label { width: auto; margin-right: 2; color: $text-muted; }
    StreamPane .progress { width: 1fr; }
    StreamPane #tree {
        width: 1fr; min-width: 24; height: 1fr; border: round $panel-lighten-2; padding: 0 0;
        scrollbar-size-vertical: 1;
    }
    StreamPane.stacked #tree { width: 1fr; height: 2fr; }
    StreamPane #tree:focus { border: round $accent; }
    StreamPane .right { width: auto; height: 1fr; }
    StreamPane.stacked .right { width: 1fr; }
    StreamPane.stacked .right { height: 3fr; }
    StreamPane .hex { height: 1fr; width: 82; border: round $panel-lighten-2; }
    StreamPane.stacked .hex { width: 1fr; }
    StreamPane .hex:focus { border: round $accent; }
    StreamPane .details { height: 14; width: 100%; border: round $panel-lighten-2;
                          padding: 0 1; }
    StreamPane.stacked .details { height: 9; }
    #bottom { height: auto; max-height: 20; display: none; }
    #bottom.shown { display: block; }
    #findings { height: 9; border: round $warning 60%; }
    #findings:focus { border: round $accent; }
    #diffs { height: 9; border: round $error 50%; }
    #diffs:focus { border: round $accent; }
    #status { height: 1; background: $panel; color: $text; padding: 0 1; }
    #searchbar { height: 1; display: none; background: $boost; padding: 0 1; }
    #searchbar.shown { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("slash,ctrl+f", "search", "Search"),
        Binding("n,f3", "next_match", "Next match", show=False),
        Binding("N,shift+f3", "prev_match", "Prev match", show=False),
        Binding("ctrl+l", "list_matches", "List matches", show=False),
        Binding("g,ctrl+g", "goto", "Go to"),
        Binding("m", "toggle_mark", "Mark"),
        Binding("b", "next_mark", "Next mark", show=False),
        Binding("B", "prev_mark", "Prev mark", show=False),
        Binding("M", "list_marks", "List marks", show=False),
        Binding("left_square_bracket,alt+left", "history_back", "Back", show=False),
        Binding("right_square_bracket,alt+right", "history_forward", "Forward", show=False),
        Binding("f", "findings", "Findings"),
        Binding("d", "next_diff", "Next diff", show=False),
        Binding("D", "prev_diff", "Prev diff", show=False),
        Binding("c", "copy_value", "Copy value", show=False),
        Binding("p", "copy_path", "Copy path", show=False),
        Binding("x", "copy_hex", "Copy hex", show=False),
        Binding("w", "export", "Export"),
        Binding("escape", "cancel", "Cancel search", show=False),
        Binding("tab", "focus_next", "Next pane", show=False),
        Binding("shift+tab", "focus_previous", "Previous pane", show=False),
    ]

    def __init__(self, paths: list[str], descriptions: VmDescription | None = None,
                 run_validate: bool = True) -> None:
        super().__init__()
        self.paths = paths
        self.descriptions = descriptions
        self.run_validate = run_validate
        self.matches: list[Match] = []
        self.match_index = -1
        self.match_pane: StreamPane | None = None
        self.last_search: tuple[Mode, str] = (Mode.NAME, "")
        self.history: list[HistoryEntry] = []
        self.history_index = -1
        self.diff: DiffResult | None = None
        self.diff_index = -1
        self.diff_state = "" if len(paths) < 2 else "waiting for both streams"
        self.search_state = ""
        self._active: StreamPane | None = None
        self.status_text = ""
        self._diff_started = False
        self.sub_title = "  ⟷  ".join(os.path.basename(p) for p in paths)

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        stacked = len(self.paths) > 1
        with Horizontal(id="panes"):
            for letter, path in zip("AB", self.paths, strict=False):
                yield StreamPane(path, self.descriptions, letter, stacked)
        with Vertical(id="bottom", classes="shown" if stacked else ""):
            findings: DataTable[Any] = DataTable(id="findings", cursor_type="row",
                                                 zebra_stripes=True)
            findings.border_title = "findings"
            findings.display = False
            yield findings
            if stacked:
                diffs: DataTable[Any] = DataTable(id="diffs", cursor_type="row", zebra_stripes=True)
                diffs.border_title = "differences"
                yield diffs
        yield Static("", id="searchbar")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#findings", DataTable)
        table.add_column("severity", width=8)
        table.add_column("stream", width=6)
        table.add_column("offset", width=10)
        table.add_column("where", width=40)
        table.add_column("message", width=200)
        if len(self.paths) > 1:
            diffs = self.query_one("#diffs", DataTable)
            diffs.add_column("#", width=5)
            diffs.add_column("A offset", width=10)
            diffs.add_column("B offset", width=10)
            diffs.add_column("difference", width=200)
        self.panes[0].structure.focus()
        self.update_status()

    @property
    def panes(self) -> list[StreamPane]:
        return list(self.query(StreamPane))

    @property
    def active(self) -> StreamPane:
        focused = self.focused
        node: Widget | None = focused
        while node is not None:
            if isinstance(node, StreamPane):
                self._active = node
                return node
            parent = node.parent
            node = parent if isinstance(parent, Widget) else None
        if self._active is not None and self._active.is_mounted:
            return self._active
        return self.panes[0]

    @property
    def ready(self) -> bool:
        """Every stream indexed (and the diff computed in diff mode)."""
        return all(p.indexed for p in self.panes) and (len(self.paths) < 2 or
                                                        self.diff is not None or
                                                        self.diff_state.startswith("failed"))

    # -- status --------------------------------------------------------------------------

    @on(StreamPane.Selected)
    def _pane_selected(self, msg: StreamPane.Selected) -> None:
        if msg.pane is self.active:
            self.update_status()

    def update_status(self) -> None:
        pane = self.active
        stream, entry = pane.stream, pane.current
        parts: list[tuple[str, str]] = []
        if len(self.panes) > 1:
            parts.append((pane.letter, "bold"))
        if stream is None:
            parts.append(("opening…", "dim"))
        else:
            off = pane.hex.cursor
            parts.append((f"{hexoff(off)} ({off:,})", "bold"))
            if entry is not None:
                item = entry.section()
                if item is not None:
                    parts.append((item.label, ""))
                    parts.append((f"{item.phase.value} · round {item.round}", ""))
                elif entry.kind == Kind.ROOT:
                    parts.append((f"{len(stream.items):,} items", ""))
                if pane.indexed:
                    parts.append((decode_state(stream, entry), ""))
            if pane.failed:
                parts.append((f"unreadable: {pane.failed}", "bold red"))
            elif not pane.indexed:
                parts.append(("indexing…", "yellow"))
            else:
                parts.append(_findings_summary(pane.findings))
        if self.search_state:
            parts.append((self.search_state, "cyan"))
        if self.diff_state:
            parts.append((self.diff_state, "magenta"))
        if pane.bookmarks:
            parts.append((f"★ {len(pane.bookmarks)}", "yellow"))
        text = Text()
        for i, (s, style) in enumerate(parts):
            if i:
                text.append(" │ ", style="dim")
            text.append(s, style=style)
        self.status_text = text.plain
        self.query_one("#status", Static).update(text)

    def on_descendant_focus(self) -> None:
        self.update_status()

    # -- findings ------------------------------------------------------------------------

    @on(FindingsChanged)
    def _findings_changed(self) -> None:
        table = self.query_one("#findings", DataTable)
        table.clear()
        self._finding_rows: list[tuple[StreamPane, Finding]] = []
        sev_style = {"error": "bold red", "fatal": "bold red", "warning": "yellow",
                     "note": "cyan", "info": "cyan"}
        for pane in self.panes:
            for f in sort_findings(pane.findings):
                self._finding_rows.append((pane, f))
                table.add_row(Text(f.severity, style=sev_style.get(f.severity, "")),
                              pane.letter,
                              hexoff(f.offset) if f.offset is not None else "-",
                              f.where or "-", f.message)
        table.border_title = f"findings ({len(self._finding_rows)})"
        if any(f.severity in ("error", "fatal") for _, f in self._finding_rows):
            self._show_findings(True, focus=False)
        self.update_status()

    def _show_findings(self, show: bool, focus: bool = True) -> None:
        table = self.query_one("#findings", DataTable)
        table.display = show
        bottom = self.query_one("#bottom")
        bottom.set_class(show or len(self.paths) > 1, "shown")
        if show and focus:
            table.focus()

    def action_findings(self) -> None:
        table = self.query_one("#findings", DataTable)
        if table.display:
            pane = self.active
            had_focus = table.has_focus
            self._show_findings(False)
            if had_focus:
                pane.structure.focus()
        else:
            self._show_findings(True)

    @on(DataTable.RowSelected, "#findings")
    def _finding_chosen(self, event: DataTable.RowSelected) -> None:
        rows = getattr(self, "_finding_rows", [])
        if 0 <= event.cursor_row < len(rows):
            pane, f = rows[event.cursor_row]
            if f.offset is not None and pane.stream is not None:
                self.go(pane, min(f.offset, max(pane.stream.size - 1, 0)))
                pane.hex.focus()

    # -- navigation ----------------------------------------------------------------------

    def go(self, pane: StreamPane, offset: int, target: object = None) -> None:
        pane.jump(offset, target)

    def go_block(self, pane: StreamPane, block: int) -> None:
        if pane.model is None or pane.runs is None:
            return
        runs = pane.runs.by_block()[block]
        if len(runs):
            first = pane.runs.span(int(runs[0]))[0]
            pane.jump(first)

    @on(Jumped)
    def _jumped(self, msg: Jumped) -> None:
        h = HistoryEntry(msg.pane.id or "", msg.offset)
        if 0 <= self.history_index < len(self.history) and self.history[self.history_index] == h:
            return
        del self.history[self.history_index + 1:]
        self.history.append(h)
        self.history_index = len(self.history) - 1

    def _history_go(self, step: int) -> None:
        i = self.history_index + step
        if not 0 <= i < len(self.history):
            self.bell()
            return
        self.history_index = i
        h = self.history[i]
        pane = self.query_one(f"#{h.pane}", StreamPane)
        pane.jump(h.offset, record=False)

    def action_history_back(self) -> None:
        self._history_go(-1)

    def action_history_forward(self) -> None:
        self._history_go(1)

    def action_goto(self) -> None:
        pane = self.active
        if pane.stream is None:
            return

        def done(offset: int | None) -> None:
            if offset is not None:
                self._jumped(Jumped(pane, pane.hex.cursor))
                pane.jump(offset)

        self.push_screen(GotoScreen(pane.stream.size), done)

    def action_help(self) -> None:
        groups: list[tuple[str, list[tuple[str, str]]]] = []
        for title, bindings in (("Everywhere", self.BINDINGS),
                                ("Tree", BrowserTree.BINDINGS + Tree.BINDINGS),
                                ("Hex pane", HexView.BINDINGS),
                                ("Search dialog", SearchScreen.BINDINGS)):
            rows = []
            for b in bindings:
                if isinstance(b, Binding):
                    keys = ", ".join(_key_name(k) for k in b.key.split(","))
                    rows.append((keys, b.description or b.action))
            groups.append((title, rows))
        groups.append(("Also", [("ctrl+p", "command palette: go to a section, device or "
                                           "RAM block"),
                                ("enter (findings / differences)", "jump to its bytes"),
                                ("mouse click (hex)", "move the cursor there"),
                                ("ctrl+q", "quit")]))
        self.push_screen(HelpScreen(groups))

    # -- bookmarks -----------------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        pane = self.active
        entry = pane.current
        if pane.stream is None:
            return
        if pane.hex.has_focus or entry is None or (entry.virtual and entry.kind != Kind.RUN):
            off, label = pane.hex.cursor, f"byte {hexoff(pane.hex.cursor)}"
        else:
            off, label = entry.offset, entry.full_path()
        if off in pane.bookmarks:
            del pane.bookmarks[off]
        else:
            pane.bookmarks[off] = label
        pane.hex.marks = set(pane.bookmarks)
        pane.hex.refresh()
        pane.relabel()
        self.update_status()

    def _mark_step(self, step: int) -> None:
        pane = self.active
        marks = sorted(pane.bookmarks)
        if not marks:
            self.bell()
            return
        cur = pane.hex.cursor
        if step > 0:
            nxt = [m for m in marks if m > cur]
            target = nxt[0] if nxt else marks[0]
        else:
            prv = [m for m in marks if m < cur]
            target = prv[-1] if prv else marks[-1]
        pane.jump(target)

    def action_next_mark(self) -> None:
        self._mark_step(1)

    def action_prev_mark(self) -> None:
        self._mark_step(-1)

    def action_list_marks(self) -> None:
        pane = self.active
        marks = sorted(pane.bookmarks.items())

        def chosen(i: int | None) -> None:
            if i is not None:
                pane.jump(marks[i][0])

        self.push_screen(PickScreen("Bookmarks", [f"{hexoff(o):>12}  {label}"
                                                  for o, label in marks],
                                    "No bookmarks: press m on an entry or a byte."), chosen)

    # -- search --------------------------------------------------------------------------

    def action_search(self) -> None:
        pane = self.active

        def done(result: tuple[Mode, str] | None) -> None:
            if result is not None:
                self.start_search(pane, *result)

        self.push_screen(SearchScreen(*self.last_search), done)

    def start_search(self, pane: StreamPane, mode: Mode, query: str) -> None:
        """Run a search on pane's stream; model searches finish at once, byte scans in a
        worker."""
        self.last_search = (mode, query)
        self.match_pane = pane
        self.matches = []
        self.match_index = -1
        stream = pane.stream
        if stream is None or not pane.indexed:
            self.search_state = "the stream is still being indexed"
            self.update_status()
            return
        if mode in (Mode.NAME, Mode.VALUE):
            self._search_finished(SearchDone(search_model(stream, mode, query), False, False))
            return
        self.search_state = f"searching {query!r}…"
        self._searchbar(f"searching {mode.value} {query!r}… 0%   (esc cancels)")
        self._search_bytes(stream, needle_for(mode, query))

    def _searchbar(self, text: str | None) -> None:
        bar = self.query_one("#searchbar", Static)
        bar.set_class(text is not None, "shown")
        bar.update(text or "")
        self.update_status()

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search_bytes(self, stream: Stream, needle: bytes) -> None:
        worker = get_current_worker()
        found: list[Match] = []
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] > 0.1:
                last[0] = now
                self.call_from_thread(self._searchbar,
                                      f"searching… {100 * done // max(total, 1)}%  "
                                      f"{len(found):,} matches   (esc cancels)")

        capped = False
        for m in search_bytes(stream, needle, progress, lambda: worker.is_cancelled):
            found.append(m)
            if len(found) >= 100_000:
                capped = True
                break
        self.post_message(SearchDone(found, capped, worker.is_cancelled))

    @on(SearchDone)
    def _search_finished(self, msg: SearchDone) -> None:
        self._searchbar(None)
        self.matches = msg.matches
        q = self.last_search[1]
        if msg.cancelled:
            self.search_state = f"search cancelled ({len(msg.matches):,} matches so far)"
        elif not msg.matches:
            self.search_state = f"no match for {q!r}"
        else:
            more = "+" if msg.capped else ""
            self.search_state = f"{len(msg.matches):,}{more} matches for {q!r}"
        if msg.matches:
            pane = self.match_pane or self.active
            cur = pane.hex.cursor
            idx = next((i for i, m in enumerate(msg.matches) if m.offset >= cur), 0)
            self.match_index = idx - 1
            self._match_step(1)
        self.update_status()

    def _match_step(self, step: int) -> None:
        if not self.matches or self.match_pane is None:
            self.bell()
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        m = self.matches[self.match_index]
        pane = self.match_pane
        pane.hex.match = (m.offset, m.offset + m.length)
        pane.jump(m.offset, m.target)
        self.search_state = f"match {self.match_index + 1:,}/{len(self.matches):,}: {m.label}"
        self.update_status()

    def action_next_match(self) -> None:
        self._match_step(1)

    def action_prev_match(self) -> None:
        self._match_step(-1)

    def action_list_matches(self) -> None:
        shown = self.matches[:1000]

        def chosen(i: int | None) -> None:
            if i is not None:
                self.match_index = i - 1
                self._match_step(1)

        self.push_screen(PickScreen(f"Matches ({len(self.matches):,})",
                                    [f"{hexoff(m.offset):>12}  {m.label}" for m in shown],
                                    "No matches: search with / first."), chosen)

    def action_cancel(self) -> None:
        cancelled = False
        for w in self.workers:
            if w.group == "search" and w.is_running:
                w.cancel()
                cancelled = True
        if not cancelled:
            self.active.hex.match = None
            self.active.hex.refresh()

    # -- copy and export -----------------------------------------------------------------

    def _copy(self, text: str, what: str) -> None:
        self.copy_to_clipboard(text)
        self.notify(f"copied {what}: {text[:60]}{'…' if len(text) > 60 else ''}", timeout=3)

    def action_copy_value(self) -> None:
        pane = self.active
        e = pane.current
        if e is None:
            return
        if e.node is not None and e.node.value is not None:
            v = e.node.value
            text = v.hex() if isinstance(v, bytes) else str(v).lower() if isinstance(
                v, bool) else str(v)
        else:
            text = e.note or e.label
        self._copy(text, "value")

    def action_copy_path(self) -> None:
        e = self.active.current
        if e is not None:
            self._copy(e.full_path(), "path")

    def action_copy_hex(self) -> None:
        pane = self.active
        e, stream = pane.current, pane.stream
        if e is None or stream is None or (e.virtual and e.kind != Kind.RUN):
            return
        size = min(e.size, 1 << 20)
        self._copy(stream.read(e.offset, size).hex(), f"{size:,} bytes as hex")

    def action_export(self) -> None:
        pane = self.active
        e, stream = pane.current, pane.stream
        if stream is None or e is None:
            return
        base = os.path.splitext(os.path.basename(stream.path))[0]
        if e.kind == Kind.BLOCK and e.block is not None:
            blk = stream.ram.blocks[e.block]
            name = blk.idstr.strip("/").replace("/", "_")
            block = e.block

            def write_block(r: tuple[str, int, int] | None) -> None:
                if r is not None:
                    self._export_block(stream, block, r[0])

            self.push_screen(
                ExportScreen(f"RAM block {blk.idstr} (final contents, {blk.used_length:,} bytes)",
                             f"{base}_{name}.img", 0, blk.used_length, fixed=True), write_block)
            return
        start, end = (e.offset, e.end) if not (e.virtual and e.kind != Kind.RUN) and \
            e.kind != Kind.ROOT and e.size else (pane.hex.cursor, pane.hex.cursor + 256)
        end = min(end, stream.size)
        def write_range(r: tuple[str, int, int] | None) -> None:
            if r is not None:
                self._export_range(stream, *r)

        self.push_screen(
            ExportScreen("a byte range", f"{base}_0x{start:x}-0x{end:x}.bin", start, end,
                         fixed=False), write_range)

    @work(thread=True, group="export", exit_on_error=False)
    def _export_range(self, stream: Stream, path: str, start: int, end: int) -> None:
        end = min(end, stream.size)

        def write(fd: int) -> int:
            pos = start
            while pos < end:
                n = min(8 << 20, end - pos)
                os.write(fd, stream.read(pos, n))
                pos += n
            return end - start

        self._write_atomic(path, write)

    @work(thread=True, group="export", exit_on_error=False)
    def _export_block(self, stream: Stream, block: int, path: str) -> None:
        blk = stream.ram.blocks[block]
        image = RamImage(stream)

        def write(fd: int) -> int:
            os.ftruncate(fd, blk.used_length)
            for (b, off), _ in image.last_copy.items():
                if b == block and off + TARGET_PAGE_SIZE <= blk.used_length:
                    page = image.page(b, off)
                    if page is not None and page.count(0) != len(page):
                        os.pwrite(fd, page, off)
            return blk.used_length

        self._write_atomic(path, write)

    def _write_atomic(self, path: str, write: Callable[[int], int]) -> None:
        path = os.path.abspath(os.path.expanduser(path))
        folder = os.path.dirname(path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".migstream-", dir=folder)
        except OSError as exc:
            self.call_from_thread(self.notify, f"cannot write in {folder}: {exc.strerror}",
                                  severity="error")
            return
        try:
            n = write(fd)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except (OSError, MigstreamError) as exc:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)
            self.call_from_thread(self.notify, f"export failed: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, f"wrote {n:,} bytes to {path}")

    # -- diff ----------------------------------------------------------------------------

    @on(PaneIndexed)
    def _pane_indexed(self, msg: PaneIndexed) -> None:
        self.update_status()
        panes = self.panes
        if len(panes) > 1 and all(p.indexed for p in panes) and not self._diff_started:
            self._diff_started = True
            if any(p.stream is None for p in panes):
                self.diff_state = "failed: a stream could not be read"
                return
            self.diff_state = "comparing…"
            self.update_status()
            self._compute_diff()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def _compute_diff(self) -> None:
        a, b = self.panes[0], self.panes[1]
        assert a.stream is not None and b.stream is not None
        assert a.runs is not None and b.runs is not None
        worker = get_current_worker()
        try:
            res = diff_streams(a.stream, b.stream, a.runs, b.runs,
                               cancelled=lambda: worker.is_cancelled)
        except MigstreamError as exc:
            self.call_from_thread(self._diff_failed, str(exc))
            return
        self.call_from_thread(self._diff_done, res)

    def _diff_failed(self, error: str) -> None:
        self.diff_state = f"failed: {error}"
        self.update_status()

    def _diff_done(self, res: DiffResult) -> None:
        self.diff = res
        a, b = self.panes[0], self.panes[1]
        a.diff, b.diff = res.a, res.b
        for pane, side in ((a, res.a), (b, res.b)):
            pane.hex.diff_ranges = side
            pane.relabel()
            pane.hex.refresh()
        table = self.query_one("#diffs", DataTable)
        table.clear()
        for i, d in enumerate(res.diffs):
            table.add_row(str(i + 1), hexoff(d.a[0]) if d.a else "-",
                          hexoff(d.b[0]) if d.b else "-", d.label)
        n = len(res.diffs)
        table.border_title = f"differences ({n:,}; d / D to step)"
        self.diff_state = f"{n:,} differences" if n else "no differences"
        self.update_status()

    def _diff_step(self, step: int) -> None:
        res = self.diff
        if res is None or not res.diffs:
            self.bell()
            return
        self.diff_index = (self.diff_index + step) % len(res.diffs)
        self.show_difference(res.diffs[self.diff_index])
        table = self.query_one("#diffs", DataTable)
        table.move_cursor(row=self.diff_index)

    def show_difference(self, d: Difference) -> None:
        a, b = self.panes[0], self.panes[1]
        if d.a is not None:
            a.hex.match = (d.a[0], d.a[0] + d.a[1])
            a.jump(d.a[0], d.a_target)
        if d.b is not None:
            b.hex.match = (d.b[0], d.b[0] + d.b[1])
            b.jump(d.b[0], d.b_target)
        assert self.diff is not None
        self.diff_state = f"difference {self.diff_index + 1}/{len(self.diff.diffs)}: {d.label}"
        self.update_status()

    def action_next_diff(self) -> None:
        self._diff_step(1)

    def action_prev_diff(self) -> None:
        self._diff_step(-1)

    @on(DataTable.RowSelected, "#diffs")
    def _diff_chosen(self, event: DataTable.RowSelected) -> None:
        if self.diff is not None and 0 <= event.cursor_row < len(self.diff.diffs):
            self.diff_index = event.cursor_row
            self.show_difference(self.diff.diffs[event.cursor_row])

    # -- lifecycle -----------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.error is not None:
            log.debug("worker %s failed", event.worker.name, exc_info=event.worker.error)
            self.notify(f"internal error in {event.worker.group}: {event.worker.error}",
                        severity="error")

    def on_unmount(self) -> None:
        for pane in self.panes:
            if pane.stream is not None:
                pane.hex.set_stream(None)
                pane.stream.close()


def _findings_summary(findings: list[Finding]) -> tuple[str, str]:
    """'● 1 error, 2 warnings (f)' and its style, for the status bar."""
    counts: dict[str, int] = {}
    for f in findings:
        sev = {"fatal": "error", "critical": "error", "warn": "warning",
               "info": "note"}.get(f.severity, f.severity)
        counts[sev] = counts.get(sev, 0) + 1
    if not counts:
        return "● ok", "green"
    order = ["error", "warning", "note"]
    text = ", ".join(f"{counts[k]} {k}{'s' * (counts[k] > 1)}"
                     for k in sorted(counts, key=lambda k: order.index(k) if k in order else 9))
    style = "bold red" if "error" in counts else "yellow" if "warning" in counts else "cyan"
    return f"● {text} (f)", style


def _key_name(key: str) -> str:
    names = {"question_mark": "?", "slash": "/", "left_square_bracket": "[",
             "right_square_bracket": "]"}
    return names.get(key.strip(), key.strip())


def run(paths: Iterable[str], descriptions: VmDescription | None = None) -> int:
    """Run the browser in this terminal; returns the exit code."""
    app = BrowseApp(list(paths), descriptions)
    result: Any = app.run()
    return int(result or 0)
