"""Write side: QEMU's savevm/migration save path, in Python.

For regression tests::

    from savevm import GenerateOptions, MigrationParameters, Workload, generate, load_profile

    machine = load_profile("pc-i440fx-7.2")            # or machine_from_stream(Stream.open(...))
    stats = generate(machine, "out.bin", GenerateOptions(
        ram_image=data, xbzrle=True,
        params=MigrationParameters(max_bandwidth=2 << 20, downtime_limit=50),
        workload=Workload(seed=1, dirty_rate=200)))

`savevm.template.replay(stream, fileobj)` re-emits a parsed capture byte for byte.
"""

from typing import Any

_EXPORTS = {
    "MigrationParameters": "savevm.migration",
    "MigrationStats": "savevm.migration",
    "Workload": "savevm.migration",
    "GenerateOptions": "savevm.profiles",
    "Machine": "savevm.profiles",
    "ProfileError": "savevm.profiles",
    "generate": "savevm.profiles",
    "load_profile": "savevm.profiles",
    "machine_from_stream": "savevm.profiles",
    "profile_text": "savevm.profiles",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Lazy exports: `migstream` imports savevm.cli at every start and must stay quick."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'savevm' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
