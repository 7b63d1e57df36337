"""Helpers shared by bench_conv2d.py and bench_pool2d.py (kept out of conftest so that they can be
imported by name)."""
from __future__ import annotations

import os

import pytest

from . import candidates as C
from . import runtime


def bench_threads() -> int:
    """FASTCONV_BENCH_THREADS, else fastconv's own thread count (else torch's, else the cores)."""
    env = os.environ.get("FASTCONV_BENCH_THREADS", "").strip()
    return int(env) if env else runtime.default_threads()


def params(cases, candidates=C.CANDIDATES):
    """pytest params (case, op, candidate), candidate varying fastest so that inputs and
    references are computed once per case; unavailable candidates are marked skip."""
    out = []
    for case in cases:
        for op in C.ops_for(case):
            for cand in candidates:
                why = C.unavailable_reason(cand)
                marks = [pytest.mark.skip(reason=why)] if why else []
                out.append(pytest.param(case, op, cand, id=f"{case.name}-{op}-{cand}",
                                        marks=marks))
    return out


class _OneSlot:
    """Keeps the inputs and reference of the latest case only (the 224x224 pools are 100 MB)."""

    def __init__(self):
        self.key = None
        self.inputs = None
        self.refs = {}

    def inputs_for(self, case):
        if self.key != case:
            self.key, self.inputs, self.refs = None, None, {}
            self.inputs = C.make_inputs(case)
            self.key = case
        return self.inputs

    def reference(self, case, op):
        inputs = self.inputs_for(case)
        if op not in self.refs:
            self.refs[op] = C.reference(case, op, inputs)
        return self.refs[op]


SLOT = _OneSlot()


def run_benchmark(benchmark, bench_data, case, op, cand):
    """Shared body of bench_conv2d / bench_pool2d: check against the baseline, then time."""
    why = C.unavailable_reason(cand)
    if why:
        pytest.skip(why)
    inputs = bench_data.inputs_for(case)
    bound = C.bind(case, op, cand, inputs)
    if cand != "numpy":
        ref = bench_data.reference(case, op)
        err = C.check(case, op, bound.result(bound.call()), ref, inputs)
        benchmark.extra_info["rel_error"] = err
    benchmark.group = f"{case.name} {op}"
    benchmark.extra_info.update(candidate=cand, case=case.name, op=op, shape=case.describe(),
                                threads=bench_threads())
    if hasattr(case, "gflop"):
        benchmark.extra_info["gflop"] = case.gflop
    else:
        benchmark.extra_info["gbytes"] = case.gbytes
    benchmark(bound.call)
    stats = getattr(benchmark, "stats", None)
    med = getattr(getattr(stats, "stats", None), "median", None) if stats is not None else None
    if med:
        if hasattr(case, "gflop"):
            benchmark.extra_info["gflop_per_s"] = case.gflop / med
        else:
            benchmark.extra_info["gb_per_s"] = case.gbytes / med
