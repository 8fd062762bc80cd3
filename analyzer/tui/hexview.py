"""The hex pane: a canonical hex dump of the whole stream that renders only visible rows.

A `ScrollView` with the Line API: the virtual height is one row per 16 (or 8) bytes of the
file, and `render_line` reads just that row's bytes from the stream's mapping, so a
multi-gigabyte stream scrolls as cheaply as a small one. The selected entry's bytes are
highlighted, up to two enclosing ranges are shaded, and search matches, bookmarks and diff
changes are tinted. Moving the cursor posts `CursorMoved`, which the browser uses to select the
innermost tree entry at that offset.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from analyzer.model import Stream

Range = tuple[int, int]

_PRINTABLE = "".join(chr(b) if 32 <= b < 127 else "·" for b in range(256))


class HexView(ScrollView, can_focus=True):
    """Offset, hex bytes and ASCII, 16 (or 8 when narrow) bytes a row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Byte left", show=False),
        Binding("right", "move(1)", "Byte right", show=False),
        Binding("up", "move_rows(-1)", "Row up", show=False),
        Binding("down", "move_rows(1)", "Row down", show=False),
        Binding("pageup", "move_rows(-16)", "Page up", show=False),
        Binding("pagedown", "move_rows(16)", "Page down", show=False),
        Binding("home", "row_edge(0)", "Row start", show=False),
        Binding("end", "row_edge(1)", "Row end", show=False),
        Binding("ctrl+home", "file_edge(0)", "Start of stream", show=False),
        Binding("ctrl+end", "file_edge(1)", "End of stream", show=False),
        Binding("ctrl+left", "move_entry(-1)", "Previous item start", show=False),
        Binding("ctrl+right", "move_entry(1)", "Next item start", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "hexview--offset", "hexview--cursor", "hexview--selection", "hexview--shade1",
        "hexview--shade2", "hexview--match", "hexview--diff", "hexview--mark",
        "hexview--zero", "hexview--sep",
    }

    DEFAULT_CSS = """
    HexView {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    HexView > .hexview--offset { color: $foreground-darken-3; }
    HexView > .hexview--zero { color: $panel-lighten-3; }
    HexView > .hexview--sep { color: $panel-lighten-2; }
    HexView > .hexview--cursor { background: $accent; color: $surface; text-style: bold; }
    HexView > .hexview--selection { background: $primary; color: $foreground-lighten-1; }
    HexView > .hexview--shade1 { background: $primary-muted; }
    HexView > .hexview--shade2 { background: $primary-background-darken-1; }
    HexView > .hexview--match { background: $warning-darken-2; color: $surface; }
    HexView > .hexview--diff { color: $error-lighten-2; text-style: bold; }
    HexView > .hexview--mark { text-style: underline; }
    """

    class CursorMoved(Message):
        """The user moved the cursor (keys or mouse)."""

        def __init__(self, view: HexView, offset: int) -> None:
            super().__init__()
            self.view = view
            self.offset = offset

    class EntryStep(Message):
        """ctrl+left/right: ask the browser for the previous/next entry boundary."""

        def __init__(self, view: HexView, direction: int) -> None:
            super().__init__()
            self.view = view
            self.direction = direction

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.stream: Stream | None = None
        self.size_bytes = 0
        self.cursor = 0
        self.selection: Range | None = None
        self.shades: list[Range] = []
        self.match: Range | None = None
        self.marks: set[int] = set()
        self.diff_ranges: object = None
        """An object with ranges_in(lo, hi) -> [(start, end)] (diffing.Side)."""
        self.bpr = 16
        self._styles: dict[str, Style] = {}

    # -- data ----------------------------------------------------------------------------

    def set_stream(self, stream: Stream | None) -> None:
        self.stream = stream
        self.size_bytes = stream.size if stream is not None else 0
        self._resize_virtual()
        self.refresh()

    def _digits(self) -> int:
        return max(8, len(f"{max(self.size_bytes - 1, 0):x}"))

    def row_width(self, bpr: int) -> int:
        """Cells one row of `bpr` bytes takes (offset, hex, ASCII)."""
        return 1 + self._digits() + 1 + bpr * 3 + (1 if bpr == 16 else 0) + 1 + bpr

    def _resize_virtual(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        self.bpr = 16 if width >= self.row_width(16) or width == 0 else 8
        rows = (self.size_bytes + self.bpr - 1) // self.bpr
        self.virtual_size = Size(self.row_width(self.bpr), max(rows, 1))

    def on_resize(self, _: events.Resize) -> None:
        old = self.bpr
        self._resize_virtual()
        if old != self.bpr:
            self.reveal(self.cursor)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _style(self, name: str) -> Style:
        st = self._styles.get(name)
        if st is None:
            st = self.get_component_rich_style(f"hexview--{name}", partial=True)
            self._styles[name] = st
        return st

    # -- cursor --------------------------------------------------------------------------

    def reveal(self, offset: int, top_margin: int | None = None) -> None:
        """Scroll so offset's row is visible (placed top_margin rows from the top if given)."""
        row = offset // self.bpr
        height = self.scrollable_content_region.height or self.size.height or 1
        y = int(self.scroll_y)
        if top_margin is not None and not (y + 1 <= row < y + height - 1):
            self.scroll_to(y=max(row - top_margin, 0), animate=False, immediate=True)
        elif row < y:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= y + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)

    def move_to(self, offset: int, user: bool = False, top_margin: int | None = None) -> None:
        if self.size_bytes == 0:
            return
        offset = max(0, min(offset, self.size_bytes - 1))
        self.cursor = offset
        self.reveal(offset, top_margin)
        self.refresh()
        if user:
            self.post_message(self.CursorMoved(self, offset))

    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor + delta, user=True)

    def action_move_rows(self, rows: int) -> None:
        self.move_to(self.cursor + rows * self.bpr, user=True)

    def action_row_edge(self, end: int) -> None:
        start = self.cursor - self.cursor % self.bpr
        self.move_to(start + (self.bpr - 1 if end else 0), user=True)

    def action_file_edge(self, end: int) -> None:
        self.move_to(self.size_bytes - 1 if end else 0, user=True)

    def action_move_entry(self, direction: int) -> None:
        self.post_message(self.EntryStep(self, direction))

    def on_click(self, event: events.Click) -> None:
        off = self.offset_at(event.x, event.y)
        if off is not None:
            self.focus()
            self.move_to(off, user=True)

    def offset_at(self, x: int, y: int) -> int | None:
        """The byte under a content-relative cell (hex or ASCII column), if any."""
        row = int(self.scroll_y) + y
        base = row * self.bpr
        hex_x = 1 + self._digits() + 1
        col: int | None = None
        rel = x - hex_x
        if 0 <= rel < self.bpr * 3 + 1:
            if self.bpr == 16 and rel >= 24:
                rel -= 1
            col = min(rel // 3, self.bpr - 1)
        else:
            asc_x = hex_x + self.bpr * 3 + (1 if self.bpr == 16 else 0) + 1
            if 0 <= x - asc_x < self.bpr:
                col = x - asc_x
        if col is None or base + col >= self.size_bytes:
            return None
        return base + col

    # -- rendering -----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_y) + y
        base = row * self.bpr
        stream = self.stream
        if stream is None or base >= self.size_bytes:
            return Strip.blank(width, self.rich_style)
        data = stream.read(base, self.bpr)
        styles = self._byte_styles(base, len(data))
        plain = self.rich_style
        segs: list[Segment] = [Segment(f" {base:0{self._digits()}x} ", self._style("offset"))]
        zero = self._style("zero")
        for i, b in enumerate(data):
            st = styles[i]
            text = f"{b:02x}"
            cell = plain + (zero if b == 0 and st is None else Style()) + (st or Style())
            segs.append(Segment(text, cell))
            gap_st = st if (i + 1 < len(data) and styles[i + 1] is st and st is not None) \
                else None
            gap = " " if i != 7 or self.bpr != 16 else "  "
            segs.append(Segment(gap, plain + gap_st if gap_st is not None else plain))
        missing = self.bpr - len(data)
        if missing:
            segs.append(Segment("   " * missing + (" " if self.bpr == 16 and len(data) <= 8
                                                   else ""), plain))
        segs.append(Segment("│", self._style("sep")))
        for i, b in enumerate(data):
            st = styles[i]
            ch = _PRINTABLE[b]
            cell = plain + (zero if ch == "·" and st is None else Style()) + (st or Style())
            segs.append(Segment(ch, cell))
        strip = Strip(Segment.simplify(segs))
        return strip.crop(0, width).extend_cell_length(width, plain)

    def _byte_styles(self, base: int, n: int) -> list[Style | None]:
        """The highlight style of each byte of one row (None: plain)."""
        out: list[Style | None] = [None] * n
        end = base + n
        layers: list[tuple[Range, str]] = []
        for k, rng in enumerate(reversed(self.shades[-2:])):
            layers.append((rng, "shade1" if k == 0 else "shade2"))
        layers.reverse()
        diff = self.diff_ranges
        if diff is not None:
            for rng in diff.ranges_in(base, end):  # type: ignore[attr-defined]
                layers.append((rng, "diff"))
        if self.selection is not None:
            layers.append((self.selection, "selection"))
        if self.match is not None:
            layers.append((self.match, "match"))
        for (s, e), name in layers:
            if e <= base or s >= end:
                continue
            st = self._style(name)
            for i in range(max(s, base) - base, min(e, end) - base):
                prev = out[i]
                out[i] = st if prev is None else prev + st
        if self.marks:
            mark = self._style("mark")
            for i in range(n):
                if base + i in self.marks:
                    prev = out[i]
                    out[i] = mark if prev is None else prev + mark
        if base <= self.cursor < end:
            i = self.cursor - base
            cur = self._style("cursor")
            prev = out[i]
            out[i] = cur if prev is None else prev + cur
        return out
