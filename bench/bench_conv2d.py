"""pytest-benchmark: the ANCHORS conv suite x {fwd, bwd_data, bwd_weight} x candidates.

    pytest bench/bench_conv2d.py --benchmark-only [-k "r3x3_64 and fwd"]
    FASTCONV_BENCH_QUICK=1 FASTCONV_BENCH_THREADS=1 pytest bench/bench_conv2d.py --benchmark-only

Each benchmark first checks the candidate's result against the NumPy baseline
(max |got - ref| <= 1e-4 * max |ref|), then times it. Candidates: see bench.candidates.
For interleaved same-process ratios use bench/compare.py (pytest-benchmark runs one candidate
after the other).
"""
import pytest

from bench.pytest_support import params, run_benchmark
from bench.shapes import conv_layers


@pytest.mark.parametrize("case,op,cand", params(conv_layers()))
def test_conv2d(benchmark, bench_data, case, op, cand):
    run_benchmark(benchmark, bench_data, case, op, cand)
