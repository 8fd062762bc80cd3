"""A JSON writer that emits text the way QEMU's qobject/json-writer.c does (non-pretty).

Items are separated by ", " and keys by ": "; strings escape quote, backslash, \\b \\f \\n \\r \\t,
and every other code point below 0x20 or from 0x7F up as \\uXXXX in upper-case hex (surrogate
pairs above the BMP). Objects may repeat keys, as the vmdesc does for qtailq/qlist/gtree
elements, which is why this is a writer and not json.dumps of a dict.
"""

from __future__ import annotations


def quote(s: str) -> str:
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif c < 0x20 or c >= 0x7F:
            if c > 0xFFFF:
                c -= 0x10000
                out.append(f"\\u{0xD800 | (c >> 10):04X}\\u{0xDC00 | (c & 0x3FF):04X}")
            else:
                out.append(f"\\u{c:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class JSONWriter:
    """json_writer_new(false): start/end object and array, string, int64, boolean."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._need_comma = [False]

    def _key(self, name: str | None) -> None:
        if self._need_comma[-1]:
            self._parts.append(", ")
        self._need_comma[-1] = True
        if name is not None:
            self._parts.append(quote(name) + ": ")

    def start_object(self, name: str | None = None) -> None:
        self._key(name)
        self._parts.append("{")
        self._need_comma.append(False)

    def end_object(self) -> None:
        self._need_comma.pop()
        self._parts.append("}")

    def start_array(self, name: str | None = None) -> None:
        self._key(name)
        self._parts.append("[")
        self._need_comma.append(False)

    def end_array(self) -> None:
        self._need_comma.pop()
        self._parts.append("]")

    def string(self, name: str | None, value: str) -> None:
        self._key(name)
        self._parts.append(quote(value))

    def int64(self, name: str | None, value: int) -> None:
        self._key(name)
        self._parts.append(str(int(value)))

    def boolean(self, name: str | None, value: bool) -> None:
        self._key(name)
        self._parts.append("true" if value else "false")

    def get(self) -> str:
        return "".join(self._parts)
