"""Decodes device section payloads (VMState encodings) with a vmstate description.

Payloads have no tags or lengths, so the walk follows the description exactly the way
vmstate.c `vmstate_load_state` does: fields in order, element by element, nested structs with
their own subsections, then the subsections the description says were written. Every decoded
item becomes a `Node` with its absolute byte offset, size, type and value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analyzer.vmdesc import FieldDesc, VmsdDesc
from formats.constants import INT_INFOS, VMS_NULLPTR_MARKER, SectionType
from formats.errors import StreamError, TruncatedStreamError

Value = int | bool | bytes | str | None


@dataclass(slots=True)
class Node:
    """One decoded item of a device payload."""

    name: str
    type: str
    offset: int
    size: int
    value: Value = None
    children: list[Node] | None = None
    kind: str = "field"
    """field | element | array | struct | subsection | nullptr | marker"""
    version: int | None = None
    vmsd_name: str | None = None

    @property
    def end(self) -> int:
        return self.offset + self.size

    def walk(self, prefix: str = "") -> Any:
        """Yield (path, node) for this node and every descendant, depth first."""
        path = f"{prefix}/{self.name}" if prefix else self.name
        yield path, self
        for child in self.children or ():
            yield from child.walk(path)


class VmstateDecoder:
    """Walks payload bytes in `buf` (absolute offsets) under one section's label."""

    def __init__(self, buf: memoryview, section_label: str, limit: int | None = None) -> None:
        self.buf = buf
        self.limit = len(buf) if limit is None else limit
        self.section_label = section_label

    def _fail(self, message: str, offset: int, path: str, truncated: bool = False) -> StreamError:
        cls = TruncatedStreamError if truncated else StreamError
        return cls(message, offset, self.section_label, path or None)

    def _need(self, pos: int, n: int, path: str) -> None:
        if pos + n > self.limit:
            raise self._fail(
                f"stream ends inside the field ({n} bytes needed, "
                f"{max(self.limit - pos, 0)} left)",
                pos, path, truncated=True,
            )

    def decode_vmsd(self, vmsd: VmsdDesc, pos: int, path: str) -> tuple[list[Node], int]:
        """Fields then subsections of one vmsd; returns the nodes and the end offset."""
        nodes: list[Node] = []
        for f in vmsd.fields:
            node, pos = self.decode_field(f, pos, path)
            nodes.append(node)
        for sub in vmsd.subsections:
            node, pos = self.decode_subsection(sub, pos, path)
            nodes.append(node)
        return nodes, pos

    def decode_subsection(self, sub: VmsdDesc, pos: int, path: str) -> tuple[Node, int]:
        spath = f"{path}/{sub.vmsd_name}" if path else sub.vmsd_name
        start = pos
        self._need(pos, 2, spath)
        if self.buf[pos] != SectionType.QEMU_VM_SUBSECTION:
            raise self._fail(
                f"expected subsection {sub.vmsd_name!r} (marker 0x05), found byte "
                f"{self.buf[pos]:#04x}",
                pos, spath,
            )
        n = self.buf[pos + 1]
        self._need(pos + 2, n + 4, spath)
        name = bytes(self.buf[pos + 2 : pos + 2 + n]).decode("latin-1")
        if name != sub.vmsd_name:
            raise self._fail(
                f"expected subsection {sub.vmsd_name!r}, found {name!r}", pos, spath
            )
        version = int.from_bytes(self.buf[pos + 2 + n : pos + 6 + n], "big")
        pos += 6 + n
        children, pos = self.decode_vmsd(sub, pos, spath)
        return (
            Node(name, "subsection", start, pos - start, None, children, "subsection",
                 version, sub.vmsd_name),
            pos,
        )

    def decode_field(self, f: FieldDesc, pos: int, path: str) -> tuple[Node, int]:
        label = f.name if f.index is None else f"{f.name}[{f.index}]"
        fpath = f"{path}/{label}" if path else label
        if f.array_len is None:
            node, end = self.decode_element(f, label, pos, fpath)
            return node, end
        start = pos
        elems: list[Node] = []
        for i in range(f.array_len):
            node, pos = self.decode_element(f, f"{f.name}[{i}]", pos, f"{fpath}[{i}]")
            node.kind = "element" if node.kind == "field" else node.kind
            elems.append(node)
        return Node(f.name, f.type, start, pos - start, None, elems, "array"), pos

    def decode_element(self, f: FieldDesc, name: str, pos: int, path: str) -> tuple[Node, int]:
        t = f.type
        if t == "struct":
            st = f.struct
            if st is None or (not st.vmsd_name and not st.fields and f.size == 1):
                return self._nullptr(f, name, pos, path)
            children, end = self.decode_vmsd(st, pos, path)
            node = Node(name, t, pos, end - pos, None, children, "struct", st.version,
                        st.vmsd_name)
            self._check_size(f, node, path)
            return node, end
        if t in ("vstruct", "tmp"):
            if not f.nested:
                return self._scalar(f, name, pos, path)
            g = f.nested[0]
            children, end = self.decode_vmsd(g, pos, path)
            node = Node(name, t, pos, end - pos, None, children, "struct", g.version, g.vmsd_name)
            self._check_size(f, node, path)
            return node, end
        if t in ("qtailq", "qlist"):
            return self._queue(f, name, pos, path)
        if t == "gtree":
            return self._gtree(f, name, pos, path)
        natural = INT_INFOS.get(t)
        if natural is not None and f.size == 1 and natural[0] != 1:
            return self._nullptr(f, name, pos, path)
        return self._scalar(f, name, pos, path)

    def _check_size(self, f: FieldDesc, node: Node, path: str) -> None:
        if node.size != f.size:
            raise self._fail(
                f"description says {f.size} bytes for this {f.type}, the payload decodes "
                f"as {node.size}",
                node.offset, path,
            )

    def _nullptr(self, f: FieldDesc, name: str, pos: int, path: str) -> tuple[Node, int]:
        self._need(pos, 1, path)
        if self.buf[pos] != VMS_NULLPTR_MARKER:
            raise self._fail(
                f"expected the NULL pointer marker 0x30, found {self.buf[pos]:#04x}", pos, path
            )
        return Node(name, f.type, pos, 1, None, None, "nullptr"), pos + 1

    def _scalar(self, f: FieldDesc, name: str, pos: int, path: str) -> tuple[Node, int]:
        size = f.size
        if size < 0:
            raise self._fail(f"negative field size {size} in the description", pos, path)
        self._need(pos, size, path)
        raw = bytes(self.buf[pos : pos + size])
        value: Value
        natural = INT_INFOS.get(f.type)
        if natural is not None and natural[0] == size:
            if f.type == "bool":
                value = raw[0] != 0
            else:
                value = int.from_bytes(raw, "big", signed=natural[1])
        else:
            value = raw
        return Node(name, f.type, pos, size, value), pos + size

    def _queue(self, f: FieldDesc, name: str, pos: int, path: str) -> tuple[Node, int]:
        start = pos
        elems: list[Node] = []
        i = 0
        while True:
            self._need(pos, 1, path)
            marker = self.buf[pos]
            if marker == 0:
                pos += 1
                break
            if i >= len(f.nested):
                raise self._fail(
                    f"{f.type} has more elements than the description lists ({len(f.nested)})",
                    pos, path,
                )
            g = f.nested[i]
            epath = f"{path}[{i}]"
            children, end = self.decode_vmsd(g, pos + 1, epath)
            elems.append(
                Node(f"{name}[{i}]", "struct", pos, end - pos, None, children, "element",
                     g.version, g.vmsd_name)
            )
            pos = end
            i += 1
        if i != len(f.nested):
            raise self._fail(
                f"{f.type} has {i} elements, the description lists {len(f.nested)}", start, path
            )
        node = Node(name, f.type, start, pos - start, None, elems, "array")
        self._check_size(f, node, path)
        return node, pos

    def _gtree(self, f: FieldDesc, name: str, pos: int, path: str) -> tuple[Node, int]:
        start = pos
        self._need(pos, 4, path)
        count = int.from_bytes(self.buf[pos : pos + 4], "big")
        pos += 4
        groups = f.nested
        if count and len(groups) not in (count, 2 * count):
            raise self._fail(
                f"gtree has {count} nodes, the description lists {len(groups)} vmsds", start, path
            )
        direct_keys = len(groups) == count
        elems: list[Node] = [Node("nnodes", "uint32", start, 4, count)]
        gi = 0
        for i in range(count):
            epath = f"{path}[{i}]"
            self._need(pos, 1, epath)
            if self.buf[pos] != 1:
                raise self._fail(
                    f"expected gtree node marker 0x01, found {self.buf[pos]:#04x}", pos, epath
                )
            nstart = pos
            pos += 1
            kids: list[Node] = []
            if direct_keys:
                self._need(pos, 8, epath + "/key")
                kids.append(
                    Node("key", "uint64", pos, 8, int.from_bytes(self.buf[pos : pos + 8], "big"))
                )
                pos += 8
            else:
                kg = groups[gi]
                gi += 1
                kc, end = self.decode_vmsd(kg, pos, epath + "/key")
                kids.append(Node("key", "struct", pos, end - pos, None, kc, "struct",
                                 kg.version, kg.vmsd_name))
                pos = end
            vg = groups[gi]
            gi += 1
            vc, end = self.decode_vmsd(vg, pos, epath + "/value")
            kids.append(Node("value", "struct", pos, end - pos, None, vc, "struct",
                             vg.version, vg.vmsd_name))
            pos = end
            elems.append(Node(f"{name}[{i}]", "gtree node", nstart, pos - nstart, None, kids,
                              "element"))
        self._need(pos, 1, path)
        if self.buf[pos] != 0:
            raise self._fail(
                f"expected the gtree end marker 0x00, found {self.buf[pos]:#04x}", pos, path
            )
        pos += 1
        node = Node(name, f.type, start, pos - start, None, elems, "array")
        self._check_size(f, node, path)
        return node, pos
