"""pytest-benchmark: the ANCHORS pooling cases x {fwd, bwd} x candidates.

    pytest bench/bench_pool2d.py --benchmark-only
    FASTCONV_BENCH_QUICK=1 pytest bench/bench_pool2d.py --benchmark-only

Max-pool forwards return indices (what a training step needs); backwards route through indices
computed once beforehand. Each benchmark first checks its result against the NumPy baseline.
GB/s of compulsory traffic is stored in extra_info (see --benchmark-json).
"""
import pytest

from bench.pytest_support import params, run_benchmark
from bench.shapes import pool_cases


@pytest.mark.parametrize("case,op,cand", params(pool_cases()))
def test_pool2d(benchmark, bench_data, case, op, cand):
    run_benchmark(benchmark, bench_data, case, op, cand)
