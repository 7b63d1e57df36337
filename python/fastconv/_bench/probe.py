"""Small probes of this machine's limits, so that "% of peak" means something on any machine.

FMA peak (GFLOP/s) — an *estimate*, reported as "measured peak":
  1. ``fastconv._testing.gemm`` (the packed GEMM driver, one thread per call, GIL released) on a
     small cache-resident problem (about 400 x 400 x 256), run concurrently by ``n`` Python
     threads on their own matrices: the rate of n independent serial GEMMs;
  2. at 1 thread also the register-tile microkernel alone (``_testing.gemm_ukr`` on packed panels
     that live in L1/L2), timed at two depths so that the call overhead cancels out
     (slope = time per k-step; 2*MR*NR flops per step);
  3. NumPy's matmul (OpenBLAS) on 1024 x 1024 matrices with its thread count set to n (only
     when the BLAS thread count can be steered: threadpoolctl or OpenBLAS's own symbol);
  peak(n) = max(gemm(n) * max(1, ukr(1) / gemm(1)), blas(n)): the n-thread GEMM rate scaled up
  by the packing/edge overhead measured at 1 thread, unless the machine's BLAS does better.
  Every term is a rate actually achieved, i.e. a lower bound of the true FMA peak, and the best
  of them is kept (the one that makes "% of peak" smallest). On the 2-core Zen 3 host of
  ANCHORS.md (FP32 peak 101 / 196 GFLOP/s at 1 / 2 threads with 12 ymm accumulators) it reads
  about 95 / 190. It is not a datasheet figure, and a convolution path that needs fewer
  multiplies (Winograd) can report more than 100 %.

Memory bandwidth (GB/s), what pooling is judged against: NumPy over arrays well beyond the
last-level cache (64 MiB per array at least), ``n`` Python threads each on its own slice
(NumPy releases the GIL in these loops): ``copy`` (np.copyto; bytes read + bytes written, as
STREAM counts them) and a read-only reduction (``sum``; bytes read). The best of them is the
"measured bandwidth" (taking the best keeps "% of bandwidth" conservative). For n > 1 threads
both figures are at least the 1-thread ones (a guard against another process stealing a core
during the probe).

Nothing here is needed for correctness; the probes take about a second per thread count.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .runtime import fastconv

BANDWIDTH_BYTES = 64 << 20        # per array; well beyond ANCHORS' 32 MiB L3


def _concurrent(n: int, work: Callable[[int], None], reps: int) -> float:
    """Wall time of n threads each running work(i) ``reps`` times (started together)."""
    barrier = threading.Barrier(n + 1)
    errors: List[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(reps):
                work(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return dt


def _best_rate(n: int, work: Callable[[int], None], units_per_call: float, budget_s: float,
               samples: int = 5) -> float:
    """Best (max) units/s over ``samples`` samples, each calibrated to ~budget_s / samples."""
    t1 = _concurrent(n, work, 1)                          # warm-up and calibration
    per_sample = max(budget_s / samples, 1e-3)
    reps = max(1, int(per_sample / max(t1, 1e-7)))
    best = 0.0
    for _ in range(samples):
        dt = _concurrent(n, work, reps)
        best = max(best, n * reps * units_per_call / dt)
    return best


def _gemm_problem(mr: int, nr: int):
    m = max(mr, (400 // mr) * mr)
    n = max(nr, (400 // nr) * nr)
    return m, n, 256


def gemm_rate(dtype="float32", threads: int = 1, budget_s: float = 0.25) -> float:
    """GFLOP/s of ``threads`` concurrent serial fastconv GEMMs on cache-resident problems."""
    T = _testing()
    dt = np.dtype(dtype)
    mr, nr = T.tile_sizes(dt.name)
    m, n, k = _gemm_problem(mr, nr)
    rng = np.random.default_rng(0)
    mats = [(rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt),
             np.empty((m, n), dt)) for _ in range(threads)]

    def work(i: int) -> None:
        a, b, c = mats[i]
        T.gemm(a, b, c, False)
    return _best_rate(threads, work, 2.0 * m * n * k, budget_s) / 1e9


def ukr_rate(dtype="float32", budget_s: float = 0.2) -> float:
    """GFLOP/s of one core running the microkernel on L1/L2-resident packed panels (the call
    overhead removed by timing two depths)."""
    T = _testing()
    dt = np.dtype(dtype)
    mr, nr = T.tile_sizes(dt.name)
    k_lo, k_hi = 16, 384
    rng = np.random.default_rng(0)
    a = rng.standard_normal(k_hi * mr).astype(dt)
    b = rng.standard_normal(k_hi * nr).astype(dt)
    c = np.zeros((mr, nr), dt)
    ukr = T.gemm_ukr
    reps = 2000

    def sample(kc: int) -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            ukr(kc, a, b, c, mr, nr, False)
        return (time.perf_counter() - t0) / reps

    sample(k_hi)
    t_hi = sample(k_hi)
    rounds = max(3, min(15, int(budget_s / max(2 * reps * t_hi, 1e-6))))
    lo, hi = [], []
    for _ in range(rounds):
        lo.append(sample(k_lo))
        hi.append(sample(k_hi))
    slope = (min(hi) - min(lo)) / (k_hi - k_lo)          # seconds per k-step
    if slope <= 0:
        return 0.0
    return 2.0 * mr * nr / slope / 1e9


def blas_rate(dtype="float32", threads: int = 1, budget_s: float = 0.25,
              size: int = 1024) -> Optional[float]:
    """GFLOP/s of numpy.matmul (size^3) with the BLAS set to ``threads`` threads; None when the
    BLAS thread count cannot be set (its default could use more cores than asked)."""
    from . import runtime
    dt = np.dtype(dtype)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size)).astype(dt)
    b = rng.standard_normal((size, size)).astype(dt)
    c = np.empty((size, size), dt)
    prev = runtime.blas_threads()
    if prev is None or not runtime.set_blas_threads(threads) or \
            runtime.blas_threads() != threads:
        if prev is not None:
            runtime.set_blas_threads(prev)
        return None
    try:
        return _best_rate(1, lambda i: np.matmul(a, b, out=c), 2.0 * size ** 3, budget_s,
                          samples=3) / 1e9
    finally:
        runtime.set_blas_threads(prev)


def _testing():
    if fastconv is None:
        raise RuntimeError("fastconv is not importable")
    from fastconv import _testing as T  # noqa: WPS433 - test hooks, imported on demand
    return T


def fma_peak(threads: Sequence[int], dtype="float32", budget_s: float = 0.25
             ) -> Dict[int, Dict[str, Optional[float]]]:
    """{n: {"peak": GFLOP/s estimate, "gemm": n-thread fastconv GEMM rate, "ukr_1t": 1-thread
    microkernel rate, "blas": n-thread numpy.matmul rate or None}} for every thread count n
    (see the module docstring for the method)."""
    g1 = gemm_rate(dtype, 1, budget_s)
    try:
        u1 = ukr_rate(dtype, budget_s)
    except Exception:  # noqa: BLE001 - the microkernel hook is optional
        u1 = 0.0
    scale = max(1.0, u1 / g1) if g1 > 0 else 1.0
    out: Dict[int, Dict[str, Optional[float]]] = {}
    for n in sorted(set(threads) | {1}):
        g = g1 if n == 1 else gemm_rate(dtype, n, budget_s)
        try:
            bl = blas_rate(dtype, n, budget_s)
        except Exception:  # noqa: BLE001 - optional
            bl = None
        peak = max(g * scale, bl or 0.0)
        if n > 1 and 1 in out:               # n threads can do what one does (noise guard)
            peak = max(peak, out[1]["peak"] or 0.0)
        out[n] = {"peak": peak, "gemm": g, "ukr_1t": u1, "blas": bl}
    return {n: v for n, v in out.items() if n in set(threads)}


def bandwidth(threads: Sequence[int], budget_s: float = 0.3,
              nbytes: int = BANDWIDTH_BYTES) -> Dict[int, Dict[str, float]]:
    """{n: {"bandwidth": best GB/s, "copy": GB/s, "sum": GB/s}} for every thread count n."""
    count = nbytes // 8
    src = np.ones(count, np.float64)
    dst = np.zeros(count, np.float64)
    out: Dict[int, Dict[str, float]] = {}
    for n in sorted(set(threads) | {1}):
        bounds = np.linspace(0, count, n + 1).astype(np.int64)
        sl = [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(n)]
        per = nbytes / n

        def copy(i: int) -> None:
            np.copyto(dst[sl[i]], src[sl[i]])

        def read(i: int) -> None:
            np.add.reduce(src[sl[i]])
        cp = _best_rate(n, copy, 2 * per, budget_s) / 1e9
        rd = _best_rate(n, read, per, budget_s) / 1e9
        best = max(cp, rd)
        if n > 1 and 1 in out:               # n threads move at least what one does
            best = max(best, out[1]["bandwidth"])
        out[n] = {"bandwidth": best, "copy": cp, "sum": rd}
    return {n: v for n, v in out.items() if n in set(threads)}


def describe(peaks: Optional[Dict[int, Dict[str, float]]],
             bws: Optional[Dict[int, Dict[str, float]]], dtype: str = "float32") -> List[str]:
    """One line per thread count, for the report's header."""
    lines = []
    for n in sorted(set(peaks or {}) | set(bws or {})):
        parts = [f"{n} thread(s):"]
        if peaks and n in peaks:
            p = peaks[n]
            parts.append(f"measured {dtype} FMA peak {p['peak']:.1f} GFLOP/s (fastconv GEMM "
                         f"{p['gemm']:.1f}"
                         + (f", 1-core microkernel {p['ukr_1t']:.1f}" if p.get("ukr_1t") else "")
                         + (f", numpy.matmul {p['blas']:.1f}" if p.get("blas") else "") + ")")
        if bws and n in bws:
            b = bws[n]
            parts.append(f"measured bandwidth {b['bandwidth']:.1f} GB/s (copy {b['copy']:.1f}, "
                         f"read-only sum {b['sum']:.1f})")
        lines.append(" ".join(parts[:1]) + " " + "; ".join(parts[1:]))
    return lines
