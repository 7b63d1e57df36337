"""Winograd F(4x4, 3x3) path (forced with conv_algorithm("winograd")) against the float64 NumPy
reference: forward, input gradient and weight gradient, both layouts and dtypes, every ISA, odd
sizes, tiny images, asymmetric and large padding, groups, bias. Plus its float32 error bound
(compared with the GEMM path on the same data), thread-count independence, the NaN/Inf
fallback and the memory bound.

Tolerances: rtol (1e-5 float32, 1e-12 float64) times the largest natural scale of the layer,
max over outputs of sum |x*w| -- not each output's own: Winograd's rounding error at an output
follows the magnitudes of its whole 6x6 input tile.
"""
import numpy as np
import pytest

import fastconv
import fastconv._testing as T
import reference as R
from conftest import (DTYPES, LAYOUTS, assert_bitwise, assert_close, rand_data,
                      seeded_rng, w_shape, x_shape)

# (N, C, O, H, W, padding (top, bottom, left, right), groups)
CASES = [
    (1, 3, 4, 8, 8, (1, 1, 1, 1), 1),
    (2, 5, 7, 9, 11, (1, 1, 1, 1), 1),        # partial edge tiles both ways
    (1, 4, 6, 1, 1, (1, 1, 1, 1), 2),         # 1x1 image
    (3, 2, 3, 2, 2, (1, 1, 1, 1), 1),         # 2x2 image
    (1, 3, 2, 5, 5, (0, 0, 0, 0), 1),         # valid: 3x3 output
    (2, 6, 5, 7, 7, (2, 2, 2, 2), 1),         # 'full' padding
    (1, 3, 4, 7, 5, (0, 3, 4, 1), 1),         # asymmetric
    (1, 2, 3, 2, 3, (5, 2, 0, 6), 1),         # padding larger than the kernel
    (2, 6, 9, 13, 6, (3, 0, 1, 4), 3),        # groups + asymmetric
    (1, 8, 8, 6, 9, (1, 1, 1, 1), 8),         # depthwise
    (2, 24, 20, 10, 13, (1, 2, 0, 1), 2),     # more channels than one transform chunk
    (1, 40, 70, 17, 15, (1, 1, 1, 1), 1),     # several o-panels, tile blocks across images
    (1, 9, 5, 6, 40, (0, 0, 0, 0), 1),        # wide rows: runs of interior tiles (row gather)
    (2, 5, 4, 10, 70, (1, 2, 1, 0), 1),
]


def _ids(cases):
    return ["-".join(str(v).replace(" ", "") for v in c) for c in cases]


def _pads(pad):
    t, b, l, r = pad
    return ((t, b), (l, r))


def _applicable(n, c, o, h, w, pad, g):
    t, b, l, r = pad
    return T._core._testing.winograd_applicable(n, c, h, w, o, 3, 3, 1, 1, t, b, l, r, 1, 1, g)


def _data(key, case, layout, dtype):
    n, c, o, h, w, pad, g = case
    rng = seeded_rng("winograd", key, case, layout, np.dtype(dtype).name)
    x = rand_data(rng, x_shape(n, c, h, w, layout), dtype)
    wt = rand_data(rng, w_shape(o, c // g, 3, 3, layout), dtype)
    b = rand_data(rng, (o,), dtype)
    return rng, x, wt, b


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_forward(isa, case, layout, dtype):
    n, c, o, h, w, pad, g = case
    assert _applicable(*case), "Winograd should take every 3x3 stride-1 layer"
    _, x, wt, b = _data("fwd", case, layout, dtype)
    kw = dict(padding=_pads(pad), groups=g, layout=layout)
    ref = R.conv2d(x, wt, b, **kw)
    scale = R.conv2d(np.abs(x), np.abs(wt), np.abs(b), **kw)
    with T.conv_algorithm("winograd"):
        got = fastconv.conv2d(x, wt, b, **kw)
        got_nb = fastconv.conv2d(x, wt, **kw)
    assert_close(got, ref, np.max(scale), dtype, "bias")
    bias_b = b if layout == "NHWC" else b[:, None, None]
    assert_close(got_nb, ref - bias_b, np.max(scale), dtype, "no bias")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_input_grad(isa, case, layout, dtype):
    n, c, o, h, w, pad, g = case
    rng, x, wt, _ = _data("bwd", case, layout, dtype)
    kw = dict(padding=_pads(pad), groups=g, layout=layout)
    y_shape = R.conv2d(x, wt, **kw).shape
    gy = rand_data(rng, y_shape, dtype)
    ref = R.conv2d_grads(gy, x.shape, wt.shape, weight=wt, **kw)[0]
    scale = R.conv2d_grads(np.abs(gy), x.shape, wt.shape, weight=np.abs(wt), **kw)[0]
    with T.conv_algorithm("winograd"):
        got = fastconv.conv2d_input_grad(gy, wt, x.shape, **kw)
        got_full = fastconv.conv2d_backward(gy, x, wt, bias=False, **kw)[0]
    assert_close(got, ref, np.max(scale), dtype, "conv2d_input_grad")
    assert_bitwise(got_full, got, "conv2d_backward grad_x")


def _wgrad_applicable(n, c, o, h, w, pad, g):
    t, b, l, r = pad
    return T._core._testing.winograd_weight_grad_applicable(n, c, h, w, o, 3, 3, 1, 1, t, b, l, r,
                                                            1, 1, g)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_weight_grad(isa, case, layout, dtype):
    """Weight gradient: Winograd for every layer without groups (grouped ones fall back)."""
    n, c, o, h, w, pad, g = case
    assert _wgrad_applicable(*case) == (g == 1)
    rng, x, wt, _ = _data("wgrad", case, layout, dtype)
    kw = dict(padding=_pads(pad), groups=g, layout=layout)
    gy = rand_data(rng, R.conv2d(x, wt, **kw).shape, dtype)
    ref = R.conv2d_grads(gy, x.shape, wt.shape, x=x, **kw)[1]
    scale = R.conv2d_grads(np.abs(gy), x.shape, wt.shape, x=np.abs(x), **kw)[1]
    with T.conv_algorithm("winograd"):
        got = fastconv.conv2d_weight_grad(gy, x, wt.shape, **kw)
        got_full = fastconv.conv2d_backward(gy, x, wt, bias=False, **kw)[1]
    assert_close(got, ref, np.max(scale), dtype, "conv2d_weight_grad")
    assert_bitwise(got_full, got, "conv2d_backward grad_w")


def test_really_runs_winograd():
    """Forced Winograd differs from GEMM in the last bits on random float32 data (so the tests
    above do exercise it), while both stay within tolerance."""
    rng = seeded_rng("winograd-differs")
    x = rand_data(rng, (2, 16, 12, 12), np.float32)
    wt = rand_data(rng, (16, 16, 3, 3), np.float32)
    with T.conv_algorithm("winograd"):
        a = fastconv.conv2d(x, wt, padding=1)
    with T.conv_algorithm("gemm"):
        b = fastconv.conv2d(x, wt, padding=1)
    assert not np.array_equal(a, b)
    assert_close(a, R.conv2d(x, wt, padding=1), np.max(R.conv2d(np.abs(x), np.abs(wt), padding=1)))


@pytest.mark.parametrize("shape", [
    dict(k=5, s=1, d=1), dict(k=3, s=2, d=1), dict(k=3, s=1, d=2), dict(k=1, s=1, d=1)])
def test_not_applicable_falls_back(shape, layout="NCHW"):
    k, s, d = shape["k"], shape["s"], shape["d"]
    assert not T._core._testing.winograd_applicable(1, 4, 9, 9, 5, k, k, s, s, 1, 1, 1, 1, d, d, 1)
    rng = seeded_rng("winograd-fallback", k, s, d)
    x = rand_data(rng, (1, 4, 9, 9), np.float64)
    wt = rand_data(rng, (5, 4, k, k), np.float64)
    kw = dict(stride=s, padding=1, dilation=d)
    with T.conv_algorithm("winograd"):
        got = fastconv.conv2d(x, wt, **kw)
    assert_close(got, R.conv2d(x, wt, **kw), R.conv2d(np.abs(x), np.abs(wt), **kw))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nan_inf_reach_only_their_windows(layout):
    """A non-finite input or weight makes Winograd hand the call to GEMM (a tile transform
    would spread it), so NaN/Inf still reach exactly the outputs that read them."""
    rng = seeded_rng("winograd-naninf", layout)
    x = rand_data(rng, x_shape(1, 16, 10, 10, layout), np.float32)
    wt = rand_data(rng, w_shape(16, 16, 3, 3, layout), np.float32)
    x.reshape(-1)[rng.choice(x.size, 3, replace=False)] = [np.nan, np.inf, -np.inf]
    kw = dict(padding=1, layout=layout)
    with T.conv_algorithm("winograd"):
        got = fastconv.conv2d(x, wt, **kw)
        gx = fastconv.conv2d_input_grad(x, wt, x.shape, **kw)
    ref = R.conv2d(x, wt, **kw)
    gref = R.conv2d_grads(x, x.shape, wt.shape, weight=wt, **kw)[0]
    for a, r in ((got, ref), (gx, gref)):
        assert np.array_equal(np.isnan(a), np.isnan(r))
        assert np.array_equal(np.isposinf(a), np.isposinf(r))
        assert np.array_equal(np.isneginf(a), np.isneginf(r))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bitwise_across_thread_counts(layout):
    rng = seeded_rng("winograd-threads", layout)
    x = rand_data(rng, x_shape(3, 48, 23, 19, layout), np.float32)
    wt = rand_data(rng, w_shape(40, 48, 3, 3, layout), np.float32)
    b = rand_data(rng, (40,), np.float32)
    kw = dict(padding=((1, 2), (0, 1)), layout=layout)
    gy = rand_data(rng, R.conv2d(x, wt, **kw).shape, np.float32)
    outs = []
    with T.conv_algorithm("winograd"):
        for n in (1, 2, 3, 5):
            with fastconv.threads(n):
                outs.append((fastconv.conv2d(x, wt, b, **kw),
                             fastconv.conv2d_input_grad(gy, wt, x.shape, **kw)))
    for n, (y, gx) in zip((2, 3, 5), outs[1:]):
        assert_bitwise(y, outs[0][0], f"forward, {n} threads")
        assert_bitwise(gx, outs[0][1], f"input grad, {n} threads")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_weight_grad_bitwise_across_thread_counts(layout):
    """The tiles are summed in chunks fixed by the shape (here 2: 800 tiles), never by the
    threads; c/o blocks and tile blocks change with the threads but not the order of any sum."""
    rng = seeded_rng("winograd-wgrad-threads", layout)
    x = rand_data(rng, x_shape(2, 12, 80, 78, layout), np.float32)
    wt = rand_data(rng, w_shape(40, 12, 3, 3, layout), np.float32)
    kw = dict(padding=1, layout=layout)
    gy = rand_data(rng, R.conv2d(x, wt, **kw).shape, np.float32)
    outs = []
    with T.conv_algorithm("winograd"):
        for n in (1, 2, 3, 5):
            with fastconv.threads(n):
                outs.append(fastconv.conv2d_weight_grad(gy, x, wt.shape, **kw))
    for n, dw in zip((2, 3, 5), outs[1:]):
        assert_bitwise(dw, outs[0], f"weight grad, {n} threads")
    ref = R.conv2d_grads(gy, x.shape, wt.shape, x=x, **kw)[1]
    scale = R.conv2d_grads(np.abs(gy), x.shape, wt.shape, x=np.abs(x), **kw)[1]
    assert_close(outs[0], ref, np.max(scale), np.float32, "weight grad")


@pytest.mark.parametrize("where", ["x", "grad_out", "x-last-chunk"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_weight_grad_nan_inf_falls_back(layout, where):
    """A non-finite x or grad_out makes the Winograd weight gradient hand the call to another
    algorithm: the result equals the forced GEMM path's, NaN/Inf where the reference has them."""
    rng = seeded_rng("winograd-wgrad-naninf", layout, where)
    n = 2 if where == "x-last-chunk" else 1
    hw = 80 if where == "x-last-chunk" else 10
    x = rand_data(rng, x_shape(n, 16, hw, hw, layout), np.float32)
    wt = rand_data(rng, w_shape(16, 16, 3, 3, layout), np.float32)
    kw = dict(padding=1, layout=layout)
    gy = rand_data(rng, R.conv2d(x, wt, **kw).shape, np.float32)
    a = gy if where == "grad_out" else x
    flat = a.reshape(-1)
    idx = rng.choice(flat.size // 2, 2, replace=False) + (flat.size // 2 if n == 2 else 0)
    flat[idx] = [np.nan, np.inf]
    with T.conv_algorithm("winograd"):
        got = fastconv.conv2d_weight_grad(gy, x, wt.shape, **kw)
    with T.conv_algorithm("gemm"):
        want = fastconv.conv2d_weight_grad(gy, x, wt.shape, **kw)
    ref = R.conv2d_grads(gy, x.shape, wt.shape, x=x, **kw)[1]
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.array_equal(np.isinf(got), np.isinf(ref))


def test_weight_grad_selected_automatically():
    plan = fastconv.explain_conv2d((8, 128, 28, 28), (128, 128, 3, 3), padding=1,
                                   op="weight_grad")
    assert plan[0] == "winograd", plan
    grouped = fastconv.explain_conv2d((8, 128, 28, 28), (128, 64, 3, 3), padding=1, groups=2,
                                      op="weight_grad")
    assert grouped[0] != "winograd", grouped


# ------------------------------------------------------------------------------------------------
# float32 error bound
# ------------------------------------------------------------------------------------------------
# Error of float32 results vs the float64 reference on standard-normal data, normalised by the
# natural scale of the layer: max over outputs |y - ref| / max over outputs of s, where
# s = sum |w| |x| over the output's window (so values are comparable across C). Forward: C
# inputs -> 16 outputs; input gradient: C outputs -> 16 inputs (both reduce over C). N=1,
# 12x12, pad 1. Measured worst over {scalar, avx2} x {NCHW, NHWC} (before picking the bound):
#     C      Winograd fwd / bwd       GEMM fwd / bwd
#     16     5.1e-7 / 5.8e-7         1.6e-7 / 4.9e-8
#     64     4.4e-7 / 4.4e-7         1.0e-7 / 3.4e-8
#     256    2.0e-7 / 1.7e-7         4.9e-8 / 4.3e-8
#     512    2.1e-7 / 1.3e-7         2.6e-8 / 2.8e-8
# (Winograd: 2-9 float32 epsilons, 3-13x the GEMM path, whose error falls with C as sums of
# random-sign terms cancel relative to sum |w||x|; Winograd's is dominated by the transforms'
# roundings of values a few times larger than |x| and |w|.) Bound: 2e-6 (3.4x headroom over
# the worst measured, ~34 epsilons); a transform with a wrong coefficient gives errors of order
# 1e-1 and more.
WINO_BOUND = 2e-6


def _err(got, ref, scale):
    return float(np.max(np.abs(got.astype(np.float64) - ref)) / np.max(scale))


@pytest.mark.parametrize("c", [16, 64, 256, 512])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_error_bound(isa, layout, c):
    rng = seeded_rng("winograd-error", layout, c)
    hw = 12
    x = rand_data(rng, x_shape(1, c, hw, hw, layout), np.float64)
    wt = rand_data(rng, w_shape(16, c, 3, 3, layout), np.float64)     # C -> 16
    wb = rand_data(rng, w_shape(c, 16, 3, 3, layout), np.float64)     # 16 -> C (for grad_x)
    kw = dict(padding=1, layout=layout)
    ref = R.conv2d(x, wt, **kw)
    scale = R.conv2d(np.abs(x), np.abs(wt), **kw)
    xs = x_shape(1, 16, hw, hw, layout)
    gref = R.conv2d_grads(x, xs, wb.shape, weight=wb, **kw)[0]          # grad_out = x
    gscale = R.conv2d_grads(np.abs(x), xs, wb.shape, weight=np.abs(wb), **kw)[0]
    x32, w32, wb32 = (a.astype(np.float32) for a in (x, wt, wb))
    errs = {}
    for algo in ("winograd", "gemm"):
        with T.conv_algorithm(algo):
            y = fastconv.conv2d(x32, w32, **kw)
            gx = fastconv.conv2d_input_grad(x32, wb32, xs, **kw)
        errs[algo] = (_err(y, ref, scale), _err(gx, gref, gscale))
    for i, what in enumerate(("forward", "input grad")):
        wino, gemm = errs["winograd"][i], errs["gemm"][i]
        assert wino < WINO_BOUND, f"{what}: Winograd error {wino:.3g} (GEMM {gemm:.3g})"
        assert gemm < WINO_BOUND, f"{what}: GEMM error {gemm:.3g}"


# Weight gradient, same normalisation (scale = sum |grad_out| |x| over each filter tap's
# terms), C -> 16 channels, pad 1. Measured worst over {scalar, avx2, avx512} x {NCHW, NHWC}:
#     N, C, HxW       Winograd     GEMM
#     1, 16, 12       3.5e-7       1.5e-7
#     1, 256, 12      5.5e-7       2.4e-7
#     16, 16, 28      3.4e-7       1.3e-8
#     64, 16, 14      2.0e-7       1.3e-8
# The Winograd error does not grow with the batch (the tiles' terms are summed in S, whose
# rounding is that of a plain sum; the transforms' roundings dominate). Same 2e-6 bound.
@pytest.mark.parametrize("n, c, hw", [(1, 16, 12), (1, 256, 12), (64, 16, 14)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_weight_grad_float32_error_bound(isa, layout, n, c, hw):
    rng = seeded_rng("winograd-wgrad-error", layout, n, c)
    x = rand_data(rng, x_shape(n, c, hw, hw, layout), np.float64)
    gy = rand_data(rng, x_shape(n, 16, hw, hw, layout), np.float64)
    ws = w_shape(16, c, 3, 3, layout)
    kw = dict(padding=1, layout=layout)
    ref = R.conv2d_grads(gy, x.shape, ws, x=x, **kw)[1]
    scale = R.conv2d_grads(np.abs(gy), x.shape, ws, x=np.abs(x), **kw)[1]
    errs = {}
    for algo in ("winograd", "gemm"):
        with T.conv_algorithm(algo):
            got = fastconv.conv2d_weight_grad(gy.astype(np.float32), x.astype(np.float32), ws,
                                              **kw)
        errs[algo] = _err(got, ref, scale)
    assert errs["winograd"] < WINO_BOUND, errs
    assert errs["gemm"] < WINO_BOUND, errs
    assert errs["winograd"] != errs["gemm"], "forced Winograd did not run"


# ------------------------------------------------------------------------------------------------
# memory bound
# ------------------------------------------------------------------------------------------------
_RSS_SCRIPT = r"""
import resource, sys
import numpy as np
import fastconv, fastconv._testing as T
from fastconv import _core
fastconv.set_num_threads(int(sys.argv[5]))
n, c, hw, layout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
xs = (n, c, hw, hw) if layout == "NCHW" else (n, hw, hw, c)
x = np.empty(xs, np.float32); rng.standard_normal(dtype=np.float32, out=x)
w = np.empty((c, c, 3, 3) if layout == "NCHW" else (3, 3, c, c), np.float32)
rng.standard_normal(dtype=np.float32, out=w)
out = np.ones(xs, np.float32)
lay = 0 if layout == "NCHW" else 1
args = (1, 1, 1, 1, 1, 1, 1, 1, 1, lay)
kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with T.conv_algorithm("winograd"):
    small = np.ones((1, 8, 6, 6) if layout == "NCHW" else (1, 6, 6, 8), np.float32)
    sw = np.ones((8, 8, 3, 3) if layout == "NCHW" else (3, 3, 8, 8), np.float32)
    sargs = (1, 1, 1, 1, 1, 1, 1, 1, 1, lay)
    _core.conv2d_forward(small, sw, None, np.empty_like(small), *sargs)  # code pages, runtime
    _core.conv2d_input_grad(small, sw, np.empty_like(small), *sargs)
    _core.conv2d_weight_grad(small, small, np.empty_like(sw), *sargs)
    gw = np.ones_like(w)
    before = kb()
    if sys.argv[6] == "weight_grad":
        _core.conv2d_weight_grad(out, x, gw, *args)
    else:
        _core.conv2d_forward(x, w, None, out, *args)
        _core.conv2d_input_grad(out, w, x, *args)
    print(kb() - before)
"""


@pytest.mark.parametrize("op", ["forward+input_grad", "weight_grad"])
@pytest.mark.parametrize("n, c, hw", [(8, 512, 7), (8, 256, 14), (2, 128, 28)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_peak_memory_within_quarter_im2col(n, c, hw, threads, layout, op):
    """Peak RSS growth of a forward + input-gradient call, or of a weight-gradient call, stays
    within a quarter of the layer's im2col matrix (N*C*9*Ho*Wo floats); these layers are the
    ones where the bound binds (the whole transformed weight set, or the weight gradient's
    36 x C x O sums, are 4x-20x larger). 64 KB of slack for page granularity."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(n), str(c), str(hw), layout,
                        str(threads), op], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    grown_kb = int(r.stdout.strip())
    bound_kb = n * c * 9 * hw * hw * 4 / 4 / 1024
    assert grown_kb <= bound_kb + 64, f"grew {grown_kb} KB, bound {bound_kb:.0f} KB"


# ------------------------------------------------------------------------------------------------
# dilated 3x3 stride-1 layers: one Winograd problem per dilation phase
# ------------------------------------------------------------------------------------------------
# (N, C, O, H, W, padding (top, bottom, left, right), dilation (h, w), groups)
DILATED = [
    (2, 6, 5, 13, 11, (2, 2, 2, 2), (2, 2), 1),     # 'same' for dilation 2, odd sizes
    (1, 4, 7, 20, 17, (3, 1, 0, 4), (3, 2), 1),     # asymmetric padding, mixed dilations
    (2, 12, 6, 9, 10, (1, 1, 2, 0), (2, 1), 3),     # one axis dilated, groups
    (1, 5, 4, 12, 12, (0, 0, 0, 0), (4, 4), 1),     # valid: some phases have 1 row
    (1, 8, 8, 30, 7, (6, 6, 1, 1), (5, 1), 1),      # padding past the dilated kernel
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", DILATED, ids=_ids(DILATED))
def test_dilated_forward_and_input_grad(isa, case, layout, dtype):
    n, c, o, h, w, pad, dil, g = case
    rng = seeded_rng("dilated", case, layout, dtype)
    x = rand_data(rng, x_shape(n, c, h, w, layout), dtype)
    wt = rand_data(rng, w_shape(o, c // g, 3, 3, layout), dtype)
    b = rand_data(rng, (o,), dtype)
    kw = dict(padding=_pads(pad), dilation=dil, groups=g, layout=layout)
    with T.conv_algorithm("winograd"):
        assert fastconv.explain_conv2d(x.shape, wt.shape, **kw)[0] == "winograd"
        got = fastconv.conv2d(x, wt, b, **kw)
        gy = rand_data(rng, got.shape, dtype)
        gx = fastconv.conv2d_input_grad(gy, wt, x.shape, **kw)
        wplan = fastconv.explain_conv2d(x.shape, wt.shape, op="weight_grad", **kw)[0]
        gw = fastconv.conv2d_weight_grad(gy, x, wt.shape, **kw)
    assert wplan == ("winograd" if g == 1 else "gemm")
    ref = R.conv2d(x, wt, b, **kw)
    scale = R.conv2d(np.abs(x), np.abs(wt), np.abs(b), **kw)
    assert_close(got, ref, np.max(scale), dtype, "forward")
    gref, wref, _ = R.conv2d_grads(gy, x.shape, wt.shape, x=x, weight=wt, **kw)
    gscale, wscale, _ = R.conv2d_grads(np.abs(gy), x.shape, wt.shape, x=np.abs(x),
                                       weight=np.abs(wt), **kw)
    assert_close(gx, gref, np.max(gscale), dtype, "input grad")
    assert_close(gw, wref, np.max(wscale), dtype, "weight grad")


def test_dilated_selected_automatically():
    name, reason = fastconv.explain_conv2d((8, 64, 56, 56), (64, 64, 3, 3), padding=2,
                                           dilation=2)
    assert name == "winograd" and "phase" in reason
    name, reason = fastconv.explain_conv2d((8, 64, 56, 56), (64, 64, 3, 3), padding=2,
                                           dilation=2, op="weight_grad")
    assert name == "winograd" and "phase" in reason


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dilated_nan_inf_in_a_later_phase(layout):
    """Dilated layers run one Winograd call per phase, each checking its own operands (the
    weight gradient: its result): NaN/Inf only in the last phase (odd rows and columns) makes
    that call decline after the first phases were written, and the GEMM fallback must still
    produce the whole, right result."""
    rng = seeded_rng("dilated-naninf", layout)
    n, c, o, h, w = 2, 16, 16, 18, 18
    x = rand_data(rng, x_shape(n, c, h, w, layout), np.float32)
    wt = rand_data(rng, w_shape(o, c, 3, 3, layout), np.float32)
    kw = dict(padding=2, dilation=2, layout=layout)
    gy = rand_data(rng, R.conv2d(x, wt, **kw).shape, np.float32)
    for a in (x, gy):  # odd row and column: phase (1, 1), the last of the four
        v = a if layout == "NCHW" else np.moveaxis(a, 3, 1)
        v[1, 3, 5, 7], v[0, 0, 9, 11], v[1, 7, 13, 3] = np.nan, np.inf, -np.inf
    with T.conv_algorithm("winograd"):
        got = fastconv.conv2d(x, wt, **kw)
        gx = fastconv.conv2d_input_grad(gy, wt, x.shape, **kw)
        gw = fastconv.conv2d_weight_grad(gy, x, wt.shape, **kw)
    ref = R.conv2d(x, wt, **kw)
    with np.errstate(invalid="ignore"):  # inf - inf in the reference's sums
        gref, wref, _ = R.conv2d_grads(gy, x.shape, wt.shape, x=x, weight=wt, **kw)
    for a, r, what in ((got, ref, "forward"), (gx, gref, "input grad"),
                       (gw, wref, "weight grad")):
        assert np.array_equal(np.isnan(a), np.isnan(r)), what
        assert np.array_equal(np.isposinf(a), np.isposinf(r)), what
        assert np.array_equal(np.isneginf(a), np.isneginf(r)), what
        fin = np.isfinite(r)
        assert np.isnan(r).any() and fin.any(), what
        np.testing.assert_allclose(a[fin], r[fin], rtol=1e-4, atol=1e-4, err_msg=what)
