"""The opaque Kaitai type `section_body`: hands a section payload to hand-written decoders.

Device payloads have no length on the wire (they are VMState field encodings, framed only by the
device's VMStateDescription), and PART/END payloads belong to whichever live handler owned the
START with the same section id. The generated parser therefore calls `SectionBody`, which asks
the `ctx` object it was given (any object with a `decode_section_body` method, see
`BodyDecoder`) to consume exactly the payload from the stream and return what it decoded.
"""

from __future__ import annotations

from typing import Any, Protocol

from kaitaistruct import KaitaiStream


class BodyDecoder(Protocol):
    """What `ctx` must provide; `io` is positioned at the first payload byte."""

    def decode_section_body(
        self,
        io: KaitaiStream,
        section_type: int,
        section_id: int,
        idstr: str,
        instance_id: int,
        version_id: int,
    ) -> Any:
        """Consume the payload (leaving `io` at the footer or next item) and return a result."""
        ...


class SectionBody:
    """Generated code constructs this with the type's parameters followed by the stream."""

    def __init__(
        self,
        ctx: BodyDecoder,
        section_type: int,
        section_id: int,
        idstr: str,
        instance_id: int,
        version_id: int,
        _io: KaitaiStream,
    ) -> None:
        self._io = _io
        self.start = _io.pos()
        self.value = ctx.decode_section_body(
            _io, section_type, section_id, idstr, instance_id, version_id
        )
        self.end = _io.pos()

    def _read(self) -> None:
        """Debug-mode builds call this; the payload was consumed in the constructor."""

    def _fetch_instances(self) -> None:
        """No lazy instances to fetch."""
