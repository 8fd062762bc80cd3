"""The one exception hierarchy of migstream; every layer raises these.

A `StreamError` always says where: the byte offset in the stream, the section it happened in
(idstr and section id when known) and the field path inside that section.
"""

from __future__ import annotations


class MigstreamError(Exception):
    """Base of every error migstream raises on purpose."""


class UsageError(MigstreamError):
    """Bad arguments or unusable inputs named on the command line (missing file, bad JSON)."""


class DescriptionError(MigstreamError):
    """A vmstate description (vmdesc JSON, -dump-vmstate file, profile) is malformed."""


class StreamError(MigstreamError):
    """The stream cannot be decoded past `offset`."""

    def __init__(
        self,
        message: str,
        offset: int,
        section: str | None = None,
        field_path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.section = section
        self.field_path = field_path

    def with_context(self, section: str | None, field_prefix: str | None = None) -> StreamError:
        """Fill in the section (and prefix the field path) where the raiser did not know them."""
        if self.section is None:
            self.section = section
        if field_prefix:
            self.field_path = (
                f"{field_prefix}/{self.field_path}" if self.field_path else field_prefix
            )
        return self

    def __str__(self) -> str:
        where = f"at offset {self.offset} (0x{self.offset:x})"
        if self.section:
            where += f" in section {self.section}"
        if self.field_path:
            where += f", field {self.field_path}"
        return f"{where}: {self.message}"


class TruncatedStreamError(StreamError):
    """The stream ends in the middle of an item."""
