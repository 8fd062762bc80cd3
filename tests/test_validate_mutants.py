"""`validate --reference BASE` against real QEMU 7.2's verdicts on the mutation corpus.

tests/data/mutants/verdicts.json (recorded once by tests/tools/make_mutants.py --record) holds
recipes for several hundred mutants of the committed captures and what a real QEMU 7.2
destination did with each. The mutants are rebuilt here from their recipes and validated with
their unmutated capture as the reference (the "cross" entries: every capture against every
other capture's configuration): the verdict must agree with QEMU's on at least 99%, and every
rejection must name the section QEMU's error names.
"""

from __future__ import annotations

import collections
from functools import cache
from typing import Any

import pytest

from analyzer.model import Stream
from analyzer.validate import Report, validate
from tests.support.mutants import CAPTURES, build, load_corpus, sha256

CORPUS = load_corpus()
MUTANTS: list[dict[str, Any]] = CORPUS["mutants"]
REQUIRED_CATEGORIES = {
    "version-bump", "version-drop", "subsection-unknown", "subsection-order", "machine",
    "capabilities", "footer", "truncate", "ram-flags", "ram-offset", "command", "section-id",
    "field", "flip", "cross",
}


@cache
def bases() -> dict[str, bytes]:
    return {name: (CAPTURES / f"{name}.bin").read_bytes() for name in CORPUS["bases"]}


def test_corpus_matches_the_captures() -> None:
    for name, digest in CORPUS["bases"].items():
        assert sha256(bases()[name]) == digest, (
            f"{name}.bin changed since the verdicts were recorded: rerun "
            "tests/tools/make_mutants.py --record")
    assert len(MUTANTS) >= 150
    categories = {m["category"] for m in MUTANTS}
    assert categories >= REQUIRED_CATEGORIES, REQUIRED_CATEGORIES - categories
    verdicts = collections.Counter(m["qemu"]["accepted"] for m in MUTANTS)
    assert verdicts[True] >= 50 and verdicts[False] >= 50
    assert len({m["id"] for m in MUTANTS}) == len(MUTANTS)


def _printable(name: str) -> str:
    """QEMU prints raw bytes; the recorded text was decoded as UTF-8 with replacement."""
    return name.encode("latin-1", "replace").decode("utf-8", "replace")


def _named(report: Report, qemu_section: str) -> bool:
    f = report.first_error
    if f is None:
        return False
    if qemu_section.startswith("id "):
        return f.section_id == int(qemu_section[3:])
    return f.idstr is not None and _printable(f.idstr) == qemu_section


def test_validate_agrees_with_qemu(tmp_path_factory: pytest.TempPathFactory) -> None:
    refs = {name: Stream.open(CAPTURES / f"{name}.bin") for name in CORPUS["bases"]}
    path = tmp_path_factory.mktemp("mutants") / "mutant.bin"
    disagree: list[str] = []
    unnamed: list[str] = []
    text_match = 0
    rejected = 0
    try:
        for m in MUTANTS:
            path.write_bytes(build(m, bases()))
            report = validate(path, reference=refs[m.get("reference") or m["base"]])
            q = m["qemu"]
            if report.loads != q["accepted"]:
                f = report.first_error
                disagree.append(f"{m['id']} ({m['description']}): QEMU "
                                f"{'accepts' if q['accepted'] else 'rejects'} "
                                f"({' / '.join(q['error'][:2])}), validate says "
                                f"{'loads' if report.loads else f.message if f else '?'}")
                continue
            if q["accepted"]:
                assert report.exit_code == 0, m["id"]
                continue
            rejected += 1
            assert report.exit_code in (1, 2), m["id"]
            f = report.first_error
            assert f is not None and f.severity == "error", m["id"]
            assert f.message and f.qemu, m["id"]
            if q["section"] is not None and not _named(report, q["section"]):
                unnamed.append(f"{m['id']}: QEMU names {q['section']!r}, validate "
                               f"{f.idstr!r} (section id {f.section_id})")
            predicted = (f.qemu or "").splitlines()
            if predicted and q["error"][: len(predicted)] == predicted:
                text_match += 1
    finally:
        for s in refs.values():
            s.close()
    agreement = 1 - len(disagree) / len(MUTANTS)
    print(f"\n{len(MUTANTS)} mutants, agreement with QEMU {agreement:.2%}, "
          f"{len(disagree)} disagreements; predicted QEMU error text exact for "
          f"{text_match}/{rejected} rejections")
    assert agreement >= 0.99, "\n".join(disagree)
    assert not unnamed, "\n".join(unnamed)
    assert text_match >= 0.9 * rejected
