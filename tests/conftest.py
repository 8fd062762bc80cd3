"""Shared pytest fixtures: the committed real captures and the real-QEMU requirement."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "fixtures" / "captures"
DATA = Path(__file__).resolve().parent / "data"


def capture_paths() -> list[Path]:
    return sorted(CAPTURES.glob("*.bin"))


def oracle_of(path: Path) -> dict[str, Any] | None:
    o = path.with_suffix(".oracle.json")
    if not o.exists():
        return None
    data: dict[str, Any] = json.loads(o.read_text())
    return data


def require_qemu() -> str:
    """The QEMU binary; skips locally without it, but fails under CI (CI=true)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        if os.environ.get("CI") == "true":
            pytest.fail("qemu-system-x86_64 is required in CI (apt-get install qemu-system-x86)")
        pytest.skip("qemu-system-x86_64 not installed")
    return qemu


@pytest.fixture(params=capture_paths(), ids=lambda p: p.stem)
def capture(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not capture_paths() and os.environ.get("CI") == "true":
        raise pytest.UsageError("no committed captures under fixtures/captures")


@pytest.fixture(scope="session")
def large_xbzrle_capture(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """pc-xbzrle-long, captured once per session with real QEMU (not committed).

    A live capture depends on the guest getting CPU time; on a loaded host it can converge
    early, so the kit retries it a few times before giving up.
    """
    require_qemu()
    from fixtures.kit.capture import capture

    tmp = tmp_path_factory.mktemp("large")
    return capture("pc-xbzrle-long", tmp, workdir=tmp / "w", cache_dir=tmp / "c", retries=4)
