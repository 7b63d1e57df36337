"""The packed GEMM driver (fastconv._testing.gemm) vs numpy matmul, every ISA.

Sizes straddle the register tile (MR, NR) and the cache blocks; integer-valued data must be exact.
"""
import numpy as np
import pytest

import fastconv._testing as T
from conftest import assert_close, assert_same, seeded_rng

pytestmark = pytest.mark.usefixtures("isa")

SIZES = ["1", "MR-1", "MR", "MR+1", "2NR+3", "300"]


def _size(name, mr, nr):
    return {"1": 1, "MR-1": mr - 1, "MR": mr, "MR+1": mr + 1, "2NR+3": 2 * nr + 3,
            "300": 300}[name]


def _ints(rng, shape, dtype, lim=3):
    return rng.integers(-lim, lim + 1, size=shape).astype(dtype)


@pytest.mark.parametrize("accumulate", [False, True], ids=["set", "acc"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", SIZES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("m", SIZES)
def test_gemm_edges_exact(m, n, k, dtype, accumulate):
    mr, nr = T.tile_sizes(dtype)
    assert mr >= 1 and nr >= 1
    M, N, K = _size(m, mr, nr), _size(n, mr, nr), _size(k, mr, nr)
    rng = seeded_rng("gemm", M, N, K, dtype, accumulate)
    a = _ints(rng, (M, K), dtype)
    b = _ints(rng, (K, N), dtype)
    c0 = _ints(rng, (M, N), dtype, 20)
    c = c0.copy() if accumulate else np.full((M, N), np.nan, dtype)  # NaN must not leak (beta=0)
    a_before, b_before = a.copy(), b.copy()
    T.gemm(a, b, c, accumulate)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    if accumulate:
        ref += c0
    assert_same(c, ref, f"M={M} N={N} K={K}")
    assert_same(a, a_before)
    assert_same(b, b_before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mnk", [(97, 1000, 1100), (301, 37, 700), (1, 513, 600),
                                 (640, 3, 257)], ids=str)
def test_gemm_large_blocks(mnk, dtype):
    """Crosses the MC / NC / KC cache blocks; integer data exact, random data with tolerance."""
    M, N, K = mnk
    rng = seeded_rng("gemm-large", mnk, dtype)
    a = _ints(rng, (M, K), dtype, 2)
    b = _ints(rng, (K, N), dtype, 2)
    c = np.empty((M, N), dtype)
    T.gemm(a, b, c, False)
    assert_same(c, a.astype(np.float64) @ b.astype(np.float64))
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = rng.standard_normal((M, N)).astype(dtype)
    c0 = c.astype(np.float64)
    T.gemm(a, b, c, True)
    ref = a.astype(np.float64) @ b.astype(np.float64) + c0
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + np.abs(c0)
    assert_close(c, ref, scale, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_zero_k(dtype):
    """K == 0: c = 0 (or unchanged when accumulating)."""
    a = np.empty((5, 0), dtype)
    b = np.empty((0, 7), dtype)
    c = np.full((5, 7), np.nan, dtype)
    try:
        T.gemm(a, b, c, False)
    except ValueError:
        return  # refusing an empty inner dimension is acceptable for a test hook
    assert_same(c, np.zeros((5, 7)))
    c = np.full((5, 7), 3.0, dtype)
    T.gemm(a, b, c, True)
    assert_same(c, np.full((5, 7), 3.0))


def test_tile_sizes_reported():
    for dt in ("float32", "float64"):
        mr, nr = T.tile_sizes(dt)
        assert isinstance(mr, int) and isinstance(nr, int) and mr > 0 and nr > 0


# The weight gradient's dot-product microkernel: both operands k-contiguous, every partial
# tile (mr < MR, nr < NR) and k tails around the vector width, exact on integer data.
@pytest.mark.parametrize("accumulate", [False, True], ids=["set", "acc"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kc", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 64, 255, 256, 300])
def test_dot_ukr_exact(kc, dtype, accumulate):
    MR, NR = T.tile_sizes("dot_" + dtype)
    rng = seeded_rng("dot", kc, dtype, accumulate)
    for mr in range(1, MR + 1):
        for nr in range(1, NR + 1):
            a = _ints(rng, (mr, kc), dtype)
            b = _ints(rng, (nr, kc), dtype)
            c0 = _ints(rng, (mr, nr), dtype)
            c = c0.copy()
            T.dot_ukr(a, b, c, accumulate)
            want = a.astype(np.float64) @ b.astype(np.float64).T + (c0 if accumulate else 0)
            assert_same(c, want.astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dot_ukr_random_close(dtype):
    MR, NR = T.tile_sizes("dot_" + dtype)
    rng = seeded_rng("dotr", dtype)
    a = rng.standard_normal((MR, 1000)).astype(dtype)
    b = rng.standard_normal((NR, 1000)).astype(dtype)
    c = np.zeros((MR, NR), dtype)
    T.dot_ukr(a, b, c, False)
    assert_close(c, a.astype(np.float64) @ b.astype(np.float64).T, dtype=dtype, scale=np.abs(a) @ np.abs(b).T)
