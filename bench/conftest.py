"""pytest configuration for bench/: collects bench_*.py, matches thread counts, shares inputs.

    pytest bench/ --benchmark-only                       # the suite, every candidate
    FASTCONV_BENCH_QUICK=1 pytest bench/ --benchmark-only  # batch / 4
    FASTCONV_BENCH_THREADS=1 pytest bench/ --benchmark-only -k "r3x3 and fwd"
    pytest bench/test_baselines.py                       # the baseline's own correctness tests

Thread count: FASTCONV_BENCH_THREADS, else fastconv's own count (else torch's); fastconv, torch
and NumPy's OpenBLAS are all set to it for the session. Benchmarks of one (case, op) share a
pytest-benchmark group, so its table lines candidates up side by side.
"""
from __future__ import annotations

import os
import sys

# Before NumPy loads OpenBLAS: its idle threads sleep at once instead of spinning ~0.1 s after
# each GEMM on the cores the next candidate is timed on (fastconv._bench.runtime explains).
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:           # so that `import bench.xxx` works however pytest is started
    sys.path.insert(0, _ROOT)

from bench import runtime  # noqa: E402
from bench.pytest_support import SLOT, bench_threads  # noqa: E402


def pytest_collect_file(file_path, parent):
    """Also collect bench_*.py (pytest's default pattern only takes test_*.py)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session", autouse=True)
def _matched_threads():
    n = bench_threads()
    with runtime.matched_threads(n):
        yield n


def pytest_report_header(config):
    lines = [f"fastconv bench: threads={bench_threads()} (fastconv, torch and OpenBLAS matched)"]
    lines += ["  " + "; ".join(f"{k} {v}" for k, v in runtime.versions().items())]
    note = runtime.openblas_env_note()
    if note:
        lines.append(note)
    return lines


@pytest.fixture
def bench_data():
    """The one-slot cache of inputs and references (bench.pytest_support.SLOT)."""
    return SLOT
