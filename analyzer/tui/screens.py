"""Modal screens of the browser: search, go to offset, export, pick from a list, help."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from analyzer.tui.search import Mode, needle_for, parse_int, parse_offset

_MODAL_CSS = """
SCREEN { align: center middle; background: $background 60%; }
.dialog {
    width: 76; height: auto; max-height: 90%;
    border: thick $primary 70%; background: $panel; padding: 1 2;
}
.dialog > .title { text-style: bold; color: $text; margin-bottom: 1; }
.dialog .hint { color: $text-muted; margin-top: 1; }
.dialog .error { color: $error; height: auto; }
.dialog RadioSet { width: 100%; layout: horizontal; border: none; background: $panel; }
.dialog RadioButton { background: $panel; margin-right: 2; }
"""


def modal_css(screen: str) -> str:
    """The shared dialog styling, with the screen's own type as the centred container."""
    return _MODAL_CSS.replace("SCREEN", screen)


class SearchScreen(ModalScreen[tuple[Mode, str] | None]):
    """A query and what to search: field names, values, hex bytes or text."""

    DEFAULT_CSS = modal_css("SearchScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("f2", "cycle_mode", "Next search kind"),
    ]

    def __init__(self, mode: Mode = Mode.NAME, query: str = "") -> None:
        super().__init__()
        self.mode = mode
        self.query_text = query

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Search", classes="title")
            with RadioSet(id="mode"):
                for m in Mode:
                    yield RadioButton(m.value, value=m == self.mode, id=f"mode-{m.value}")
            yield Input(self.query_text, placeholder="field name, value, hex bytes or text",
                        id="query")
            yield Static("", classes="error", id="error")
            yield Static("name: substring of a field path · value: 42, 0x2a, or text · "
                         "hex: 7e 00 00 00 05 · text: UTF-8 (also inside RAM pages). "
                         "F2 switches kind, Enter searches, Esc cancels.", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(RadioSet.Changed)
    def _mode(self, event: RadioSet.Changed) -> None:
        idx = event.radio_set.pressed_index
        self.mode = list(Mode)[max(idx, 0)]
        self.query_one(Input).focus()

    def action_cycle_mode(self) -> None:
        modes = list(Mode)
        self.mode = modes[(modes.index(self.mode) + 1) % len(modes)]
        self.query_one(f"#mode-{self.mode.value}", RadioButton).value = True

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        text = event.value
        try:
            if self.mode in (Mode.HEX, Mode.TEXT):
                needle_for(self.mode, text)
            elif not text.strip():
                raise ValueError("type something to search for")
        except ValueError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.dismiss((self.mode, text))


class GotoScreen(ModalScreen[int | None]):
    """Go to a byte offset: decimal, 0x-hex, or negative from the end."""

    DEFAULT_CSS = modal_css("GotoScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, size: int) -> None:
        super().__init__()
        self.stream_size = size

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Go to offset", classes="title")
            yield Input(placeholder="1234, 0x4d2, or -16 (from the end)", id="offset")
            yield Static("", classes="error", id="error")
            n = self.stream_size
            yield Static(f"The stream has {n:,} bytes (0x{n:x}).", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        try:
            self.dismiss(parse_offset(event.value, self.stream_size))
        except ValueError as exc:
            self.query_one("#error", Static).update(str(exc))


class ExportScreen(ModalScreen[tuple[str, int, int] | None]):
    """Where to write the selected bytes (or RAM block image) and which range."""

    DEFAULT_CSS = modal_css("ExportScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, what: str, path: str, start: int, end: int, fixed: bool) -> None:
        super().__init__()
        self.what = what
        self.path = path
        self.start = start
        self.end = end
        self.fixed = fixed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Export {self.what}", classes="title")
            yield Input(self.path, placeholder="output file", id="path")
            if not self.fixed:
                with Horizontal(classes="range"):
                    yield Input(f"0x{self.start:x}", placeholder="start", id="start")
                    yield Input(f"0x{self.end:x}", placeholder="end (exclusive)", id="end")
            yield Static("", classes="error", id="error")
            yield Static("Enter writes the file (a temporary name, then renamed).",
                         classes="hint")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted)
    def _submit(self, _: Input.Submitted) -> None:
        path = self.query_one("#path", Input).value.strip()
        if not path:
            self.query_one("#error", Static).update("give a file name")
            return
        if self.fixed:
            self.dismiss((path, self.start, self.end))
            return
        try:
            start = parse_int(self.query_one("#start", Input).value)
            end = parse_int(self.query_one("#end", Input).value)
        except ValueError as exc:
            self.query_one("#error", Static).update(f"bad range: {exc}")
            return
        if not 0 <= start < end:
            self.query_one("#error", Static).update("the range is empty")
            return
        self.dismiss((path, start, end))


class PickScreen(ModalScreen[int | None]):
    """Choose one line of a list (bookmarks, search matches); returns its index."""

    DEFAULT_CSS = modal_css("PickScreen") + """
    PickScreen OptionList { height: auto; max-height: 24; background: $panel; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, title: str, lines: list[str], empty: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.empty = empty

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            if self.lines:
                yield OptionList(*[Option(line) for line in self.lines], id="choices")
            else:
                yield Static(self.empty, classes="hint")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)


class HelpScreen(ModalScreen[None]):
    """Every key of every part of the browser, generated from the bindings themselves."""

    DEFAULT_CSS = modal_css("HelpScreen") + """
    HelpScreen .dialog { width: 100; height: 90%; }
    HelpScreen VerticalScroll { height: 1fr; background: $panel; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss(None)", "Close"),
    ]

    def __init__(self, groups: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.groups = groups
        self.plain_text = "\n".join(f"{k}  {a}" for _, rows in groups for k, a in rows)
        """The listed keys and actions as plain text."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("migstream browse: keys", classes="title")
            with VerticalScroll():
                for title, rows in self.groups:
                    table = Table(show_header=False, box=None, padding=(0, 2), expand=True)
                    table.add_column("key", style="bold", width=26, no_wrap=True)
                    table.add_column("action")
                    for key, action in rows:
                        table.add_row(Text(key), Text(action))
                    yield Static(Text(title, style="bold underline"))
                    yield Static(table)
                    yield Static("")
