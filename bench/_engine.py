"""Where the benchmark engine lives: the package ``fastconv._bench`` (shipped in the wheel, so that
``python -m fastconv bench`` works from an installed fastconv).

bench/shapes.py, baselines.py, runtime.py, candidates.py and compare.py are aliases of those
modules (``bench.shapes is fastconv._bench.shapes``). When fastconv is not built or not
installed, the engine is loaded from this source tree (python/fastconv/_bench) under the name
``_fastconv_bench_src``, so that the NumPy baseline, its tests and the peers still run.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(_ROOT, "python", "fastconv", "_bench")
FALLBACK = "_fastconv_bench_src"


def _package_name() -> str:
    try:
        import fastconv._bench  # noqa: F401
        return "fastconv._bench"
    except ImportError:
        pass
    if FALLBACK not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            FALLBACK, os.path.join(SOURCE, "__init__.py"), submodule_search_locations=[SOURCE])
        if spec is None or spec.loader is None:
            raise ImportError(f"bench: cannot find the benchmark engine in {SOURCE}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[FALLBACK] = mod
        spec.loader.exec_module(mod)
    return FALLBACK


PACKAGE = _package_name()


def module(name: str) -> ModuleType:
    """The engine's module ``name`` (shapes, baselines, runtime, candidates, compare, ...)."""
    return importlib.import_module(f"{PACKAGE}.{name}")
