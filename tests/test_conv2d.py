"""conv2d forward and backward vs the float64 NumPy reference, under every ISA (and, for the
forward, every forced convolution algorithm).

Integer-valued data is compared with ==; random data with |err| <= rtol * max(1, sum |x*w|).
Exception: Winograd (forced) is not exact on integer data (its filter transform has 1/3 and
1/15), and its rounding error at an output follows the magnitudes of the whole 6x6 input tile,
not of the output's own window; on the layers it takes, both kinds of data get the tolerance
against the largest scale of the layer, max sum |x*w| (tests/test_winograd.py bounds it).
"""
import numpy as np
import pytest

import fastconv
import reference as R
from conftest import (DTYPES, LAYOUTS, assert_close, assert_same, int_data, rand_data,
                      seeded_rng, variants, w_shape, x_shape)

pytestmark = pytest.mark.usefixtures("isa")

# (N, C, O, H, W, KH, KW, stride, padding, dilation, groups)
CASES = [
    (2, 3, 4, 7, 6, 3, 3, 1, 1, 1, 1),
    (1, 4, 5, 8, 8, 3, 3, 2, 1, 1, 1),
    (2, 6, 6, 6, 7, 3, 3, 1, 1, 1, 6),                       # depthwise
    (1, 4, 8, 6, 6, 3, 3, 1, "same", 1, 4),                  # depthwise, multiplier 2
    (2, 6, 4, 9, 9, 3, 2, 1, 0, 2, 2),                       # groups + dilation
    (1, 8, 16, 5, 5, 1, 1, 1, 0, 1, 1),                      # pointwise
    (2, 17, 19, 5, 6, 1, 1, 2, 0, 1, 1),                     # strided pointwise, odd channels
    (1, 3, 5, 10, 9, 5, 5, 2, "same", 1, 1),
    (1, 2, 3, 6, 7, 3, 3, 3, "full", 2, 1),
    (1, 3, 2, 5, 8, 2, 4, (1, 2), ((1, 2), (0, 3)), (2, 1), 1),
    (1, 3, 4, 4, 4, 4, 4, 1, "valid", 1, 1),                 # kernel == input
    (1, 16, 24, 7, 7, 3, 3, 1, 1, 1, 1),                     # Winograd-eligible
    (3, 9, 12, 10, 10, 3, 3, 1, 1, 1, 3),
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),
    (2, 5, 7, 3, 13, 1, 3, 1, (0, 1), 1, 1),
    (1, 2, 3, 11, 4, 3, 1, (2, 1), "same", (1, 1), 1),
    (1, 24, 8, 4, 5, 2, 2, 2, ((0, 1), (1, 0)), 1, 8),       # even kernel, per-side pads
    (1, 3, 18, 6, 6, 3, 3, 1, "same", 2, 1),
]


def _ids(cases):
    return ["-".join(str(v).replace(" ", "") for v in c) for c in cases]


def _kw(case, layout):
    n, c, o, h, w, kh, kw, s, p, d, g = case
    return dict(stride=s, padding=p, dilation=d, groups=g, layout=layout)


_cache = {}


def _setup(case, layout, dtype, integer):
    """(x, w, b, ref, scale) for one case, reference cached across ISAs/algorithms."""
    key = (case, layout, np.dtype(dtype).name, integer)
    if key not in _cache:
        n, c, o, h, w, kh, kw, s, p, d, g = case
        rng = seeded_rng("conv2d", key)
        gen = int_data if integer else rand_data
        x = gen(rng, x_shape(n, c, h, w, layout), dtype)
        wt = gen(rng, w_shape(o, c // g, kh, kw, layout), dtype)
        b = gen(rng, (o,), dtype)
        kwargs = _kw(case, layout)
        ref = R.conv2d(x, wt, b, **kwargs)
        scale = R.conv2d(np.abs(x), np.abs(wt), np.abs(b), **kwargs)
        _cache[key] = (x, wt, b, ref, scale)
    return _cache[key]


def _winograd_takes(conv_algo, kh, kw, s, d):
    """Forced Winograd runs on 3x3 stride-1 layers, dilated ones phase by phase (elsewhere it
    falls back)."""
    return conv_algo == "winograd" and (kh, kw) == (3, 3) and s in (1, (1, 1))  # any dilation


def _check(got, ref, scale, dtype, integer, what="", winograd=False):
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), what
    if winograd:
        assert_close(got, ref, np.max(scale), dtype, what)
    elif integer:
        assert_same(got, ref, what)
    else:
        assert_close(got, ref, scale, dtype, what)


# ------------------------------------------------------------------------------------------------
# forward
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_forward(case, layout, dtype, integer):
    x, w, b, ref, scale = _setup(case, layout, dtype, integer)
    got = fastconv.conv2d(x, w, b, **_kw(case, layout))
    _check(got, ref, scale, dtype, integer)
    assert got.flags.c_contiguous
    # without bias
    got_nb = fastconv.conv2d(x, w, **_kw(case, layout))
    bias_b = b if layout == "NHWC" else b[:, None, None]
    _check(got_nb, ref - bias_b, scale, dtype, integer, "no bias")


ALGO_CASES = [CASES[i] for i in (0, 1, 2, 3, 4, 5, 6, 9, 11, 12, 17)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_forward_every_algorithm(conv_algo, layout, dtype):
    """Each forced algorithm (the selector may fall back where one does not apply) is exact on
    integer data and within tolerance on random data, for a spread of shapes."""
    for case in ALGO_CASES:
        for integer in (True, False):
            x, w, b, ref, scale = _setup(case, layout, dtype, integer)
            got = fastconv.conv2d(x, w, b, **_kw(case, layout))
            n, c, o, h, wd, kh, kw, s, p, d, g = case
            _check(got, ref, scale, dtype, integer, f"algo={conv_algo} case={case} int={integer}",
                   winograd=_winograd_takes(conv_algo, kh, kw, s, d))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_larger_shapes_every_algorithm(conv_algo, layout):
    """Shapes big enough to cross GEMM blocking and tile edges (float32 random + int)."""
    rng = seeded_rng("conv2d-large", layout)
    for (n, c, o, h, w, k, s, p, g) in [(2, 32, 40, 13, 11, 3, 1, 1, 1),
                                         (1, 64, 48, 9, 10, 1, 1, 0, 1),
                                         (1, 40, 40, 12, 12, 3, 1, 1, 40),
                                         (1, 20, 70, 8, 9, 3, 2, "same", 1)]:
        for integer in (True, False):
            gen = int_data if integer else rand_data
            x = gen(rng, x_shape(n, c, h, w, layout), np.float32)
            wt = gen(rng, w_shape(o, c // g, k, k, layout), np.float32)
            kw = dict(stride=s, padding=p, groups=g, layout=layout)
            ref = R.conv2d(x, wt, **kw)
            got = fastconv.conv2d(x, wt, **kw)
            scale = R.conv2d(np.abs(x), np.abs(wt), **kw)
            _check(got, ref, scale, np.float32, integer, f"algo={conv_algo} {x.shape} int={integer}",
                   winograd=_winograd_takes(conv_algo, k, k, s, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_unbatched(layout, dtype):
    case = CASES[4]
    x, w, b, ref, scale = _setup(case, layout, dtype, True)
    got = fastconv.conv2d(x[1], w, b, **_kw(case, layout))
    assert got.ndim == 3
    assert_same(got, ref[1])


@pytest.mark.parametrize("padding", [0, 2, (1, 0), ((0, 2), (3, 1)), "valid", "same", "full"],
                         ids=str)
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), (3, 2), ((2, 3), (1, 2))],
                         ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_padding_forms(padding, stride, dilation, layout):
    rng = seeded_rng("pad-forms", padding, stride, dilation, layout)
    x = int_data(rng, x_shape(2, 3, 9, 8, layout), np.float32)
    w = int_data(rng, w_shape(4, 3, 3, 2, layout), np.float32)
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    ref = R.conv2d(x, w, **kw)
    got = fastconv.conv2d(x, w, **kw)
    assert_same(got, ref)
    if padding == "same":
        hw = got.shape[2:] if layout == "NCHW" else got.shape[1:3]
        s = R.pair(stride)
        assert hw == (-(-9 // s[0]), -(-8 // s[1]))


# ------------------------------------------------------------------------------------------------
# out=
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_out_argument(layout, dtype):
    case = CASES[1]
    x, w, b, ref, scale = _setup(case, layout, dtype, True)
    out = np.full(ref.shape, np.nan, dtype)          # NaN prefill must not leak into the result
    res = fastconv.conv2d(x, w, b, out=out, **_kw(case, layout))
    assert res is out
    assert_same(out, ref)
    out2 = np.full(ref.shape, 7.0, dtype)            # a second call overwrites, never accumulates
    fastconv.conv2d(x, w, b, out=out2, **_kw(case, layout))
    assert_same(out2, ref)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_out_unbatched(layout):
    case = CASES[0]
    x, w, b, ref, scale = _setup(case, layout, np.float64, True)
    out = np.full(ref.shape[1:], np.nan)
    res = fastconv.conv2d(x[0], w, b, out=out, **_kw(case, layout))
    assert np.shares_memory(res, out)
    assert_same(out, ref[0])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_out_non_contiguous(layout):
    """A non-contiguous out is either filled correctly (and returned) or refused with an error
    naming `out`; it is never silently replaced."""
    case = CASES[0]
    x, w, b, ref, scale = _setup(case, layout, np.float64, True)
    big = np.full(ref.shape[:-1] + (2 * ref.shape[-1],), -5.0)
    out = big[..., ::2]
    try:
        res = fastconv.conv2d(x, w, b, out=out, **_kw(case, layout))
    except ValueError as e:
        assert "out" in str(e)
        assert (big == -5.0).all(), "out was written before the error"
        return
    assert np.shares_memory(res, out)
    assert_same(out, ref)
    assert (big[..., 1::2] == -5.0).all(), "wrote outside the view"


# ------------------------------------------------------------------------------------------------
# unusual memory (BAD_INPUTS 3)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_memory_variants(layout, dtype):
    case = CASES[4]
    x, w, b, ref, scale = _setup(case, layout, dtype, False)
    kw = _kw(case, layout)
    base = fastconv.conv2d(x, w, b, **kw)
    assert_close(base, ref, scale, dtype)
    for name, xv in variants(x):
        assert_same(fastconv.conv2d(xv, w, b, **kw), base, f"x {name}")
    for name, wv in variants(w):
        assert_same(fastconv.conv2d(x, wv, b, **kw), base, f"weight {name}")
    for name, bv in variants(b):
        assert_same(fastconv.conv2d(x, w, bv, **kw), base, f"bias {name}")
    # broadcast (zero-stride) inputs
    xb = np.broadcast_to(x[:1], x.shape)
    assert_same(fastconv.conv2d(xb, w, b, **kw), fastconv.conv2d(np.ascontiguousarray(xb), w, b, **kw),
                "x broadcast")
    wb = np.broadcast_to(w[:1] if layout == "NCHW" else w[..., :1], w.shape)
    assert_same(fastconv.conv2d(x, wb, b, **kw), fastconv.conv2d(x, np.ascontiguousarray(wb), b, **kw),
                "weight broadcast")
    bb = np.broadcast_to(b[:1], b.shape)
    assert_same(fastconv.conv2d(x, w, bb, **kw), fastconv.conv2d(x, w, bb.copy(), **kw),
                "bias broadcast")
    # non-native byte order is still float32/float64 data
    xs = x.astype(x.dtype.newbyteorder())
    try:
        r = fastconv.conv2d(xs, w, b, **kw)
    except TypeError as e:
        assert "x" in str(e)
    else:
        assert_same(r, base, "byte-swapped x")


def test_inputs_not_modified():
    case = CASES[2]
    x, w, b, ref, scale = _setup(case, "NCHW", np.float32, False)
    xc, wc, bc = x.copy(), w.copy(), b.copy()
    fastconv.conv2d(x, w, b, **_kw(case, "NCHW"))
    go = np.ones(ref.shape, np.float32)
    fastconv.conv2d_backward(go, x, w, **_kw(case, "NCHW"))
    assert_same(x, xc)
    assert_same(w, wc)
    assert_same(b, bc)


# ------------------------------------------------------------------------------------------------
# empty dims (BAD_INPUTS 8)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_empty_batch_and_out_channels(layout, dtype):
    x = np.ones(x_shape(0, 3, 5, 5, layout), dtype)
    w = np.ones(w_shape(4, 3, 3, 3, layout), dtype)
    y = fastconv.conv2d(x, w, np.ones(4, dtype), padding=1, layout=layout)
    assert y.shape == x_shape(0, 4, 5, 5, layout) and y.dtype == dtype
    gx, gw, gb = fastconv.conv2d_backward(np.ones(y.shape, dtype), x, w, stride=1, padding=1,
                                          dilation=1, groups=1, layout=layout)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (4,)
    assert not gw.any() and not gb.any()
    # O = 0
    x1 = np.ones(x_shape(2, 3, 5, 5, layout), dtype)
    w0 = np.ones(w_shape(0, 3, 3, 3, layout), dtype)
    y0 = fastconv.conv2d(x1, w0, np.ones(0, dtype), layout=layout)
    assert y0.shape == x_shape(2, 0, 3, 3, layout)
    gx, gw, gb = fastconv.conv2d_backward(np.ones(y0.shape, dtype), x1, w0, stride=1, padding=0,
                                          dilation=1, groups=1, layout=layout)
    assert gx.shape == x1.shape and not gx.any()
    assert gw.shape == w0.shape and gb.shape == (0,)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_zero_input_channels(layout):
    x = np.ones(x_shape(2, 0, 5, 4, layout))
    w = np.ones(w_shape(3, 0, 3, 3, layout))
    b = np.array([1.5, -2.0, 3.0])
    y = fastconv.conv2d(x, w, b, padding=1, layout=layout)
    assert y.shape == x_shape(2, 3, 5, 4, layout)
    want = np.broadcast_to(b if layout == "NHWC" else b[:, None, None], y.shape[1:])
    assert_same(y, np.broadcast_to(want, y.shape))
    y0 = fastconv.conv2d(x, w, padding=1, layout=layout)
    assert y0.shape == y.shape and not y0.any()


# ------------------------------------------------------------------------------------------------
# backward
# ------------------------------------------------------------------------------------------------
_gcache = {}


def _grad_setup(case, layout, dtype, integer):
    key = (case, layout, np.dtype(dtype).name, integer)
    if key not in _gcache:
        x, w, b, ref, _ = _setup(case, layout, dtype, integer)
        rng = seeded_rng("conv2d-grad", key)
        go = (int_data if integer else rand_data)(rng, ref.shape, dtype)
        kw = _kw(case, layout)
        gx, gw, gb = R.conv2d_grads(go, x.shape, w.shape, x=x, weight=w, **kw)
        sx, sw, sb = R.conv2d_grads(np.abs(go), x.shape, w.shape, x=np.abs(x),
                                    weight=np.abs(w), **kw)
        _gcache[key] = (x, w, go, (gx, gw, gb), (sx, sw, sb))
    return _gcache[key]


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_backward(case, layout, dtype, integer):
    x, w, go, (rx, rw, rb), (sx, sw, sb) = _grad_setup(case, layout, dtype, integer)
    kw = _kw(case, layout)
    gx, gw, gb = fastconv.conv2d_backward(go, x, w, bias=True, **kw)
    _check(gx, rx, sx, dtype, integer, "grad_x")
    _check(gw, rw, sw, dtype, integer, "grad_w")
    _check(gb, rb, sb, dtype, integer, "grad_b")
    gi = fastconv.conv2d_input_grad(go, w, x.shape, **kw)
    _check(gi, rx, sx, dtype, integer, "conv2d_input_grad")
    gwt = fastconv.conv2d_weight_grad(go, x, w.shape, **kw)
    _check(gwt, rw, sw, dtype, integer, "conv2d_weight_grad")
    _, _, none_b = fastconv.conv2d_backward(go, x, w, bias=False, **kw)
    assert none_b is None


@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_unbatched(layout):
    case = CASES[3]
    x, w, go, (rx, rw, rb), _ = _grad_setup(case, layout, np.float64, True)
    kw = _kw(case, layout)
    gx, gw, gb = fastconv.conv2d_backward(go[0], x[0], w, **kw)
    rx1, rw1, rb1 = R.conv2d_grads(go[:1], x[:1].shape, w.shape, x=x[:1], weight=w, **kw)
    assert gx.shape == x.shape[1:]
    assert_same(gx, rx1[0])
    assert_same(gw, rw1)
    assert_same(gb, rb1)
    assert_same(fastconv.conv2d_input_grad(go[0], w, x.shape[1:], **kw), rx1[0])
    assert_same(fastconv.conv2d_weight_grad(go[0], x[0], w.shape, **kw), rw1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_input_grad_with_unused_rows(layout):
    """Stride leaves the last rows/cols of the input unread: their gradient is exactly 0."""
    rng = seeded_rng("unused-rows", layout)
    w = int_data(rng, w_shape(3, 2, 3, 3, layout), np.float32)
    xs = x_shape(2, 2, 10, 9, layout)   # 3x3 stride 3: rows 9 and col... 8 unused
    go = int_data(rng, x_shape(2, 3, 3, 3, layout), np.float32)
    got = fastconv.conv2d_input_grad(go, w, xs, stride=3, layout=layout)
    ref, _, _ = R.conv2d_grads(go, xs, w.shape, weight=w, stride=3, layout=layout)
    assert_same(got, ref)
    x = int_data(rng, xs, np.float32)
    _, rw, _ = R.conv2d_grads(go, xs, w.shape, x=x, stride=3, layout=layout)
    assert_same(fastconv.conv2d_weight_grad(go, x, w.shape, stride=3, layout=layout), rw)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_memory_variants(layout):
    case = CASES[9]
    x, w, go, (rx, rw, rb), (sx, sw, sb) = _grad_setup(case, layout, np.float64, False)
    kw = _kw(case, layout)
    base = fastconv.conv2d_backward(go, x, w, **kw)
    for name, gv in variants(go):
        got = fastconv.conv2d_backward(gv, x, w, **kw)
        for a, b_, what in zip(got, base, ("grad_x", "grad_w", "grad_b")):
            assert_same(a, b_, f"grad_out {name}: {what}")
    for name, xv in variants(x):
        assert_same(fastconv.conv2d_backward(go, xv, w, **kw)[1], base[1], f"x {name}")
    for name, wv in variants(w):
        assert_same(fastconv.conv2d_backward(go, x, wv, **kw)[0], base[0], f"weight {name}")


# ------------------------------------------------------------------------------------------------
# numbers (BAD_INPUTS 19-21)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_nan_inf_propagation(conv_algo, layout, dtype):
    """NaN/Inf reach exactly the outputs whose windows read them (IEEE, as a direct sum)."""
    rng = seeded_rng("naninf", layout, np.dtype(dtype).name)
    x = rand_data(rng, x_shape(1, 4, 9, 9, layout), dtype)
    w = rand_data(rng, w_shape(6, 4, 3, 3, layout), dtype)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 3, replace=False)] = [np.nan, np.inf, -np.inf]
    for kw in (dict(padding=1), dict(padding=0, stride=2), dict(padding="same")):
        got = fastconv.conv2d(x, w, layout=layout, **kw)
        ref = R.conv2d(x, w, layout=layout, **kw)
        assert np.array_equal(np.isnan(got), np.isnan(ref)), f"NaN pattern {kw}"
        assert np.array_equal(np.isposinf(got), np.isposinf(ref)), f"+inf pattern {kw}"
        assert np.array_equal(np.isneginf(got), np.isneginf(ref)), f"-inf pattern {kw}"


def test_subnormals_not_flushed():
    tiny = np.float32(1e-40)  # subnormal in float32
    assert tiny != 0 and np.float32(tiny * np.float32(1.0)) != 0
    x = np.full((1, 1, 3, 3), tiny, np.float32)
    w = np.ones((1, 1, 1, 1), np.float32)
    y = fastconv.conv2d(x, w)
    assert_same(y, x)
    assert np.float32(1e-39) / np.float32(10) != 0  # the process is not in flush-to-zero mode


# 1x1 stride-1 layers with large images take plain-GEMM paths (forward straight from x, input
# gradient straight into grad_x, weight gradient as dot tiles): checked against einsum.
@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, o, hw, groups", [(2, 5, 7, (20, 21), 1), (1, 32, 8, (24, 24), 1),
                                                  (3, 12, 18, (17, 30), 3), (1, 3, 70, (40, 13), 1)])
def test_plain_1x1_paths(n, c, o, hw, groups, dtype):
    rng = seeded_rng("plain1x1", n, c, o, hw, groups, dtype)
    x = rng.standard_normal((n, c) + hw).astype(dtype)
    w = rng.standard_normal((o, c // groups, 1, 1)).astype(dtype)
    gy = rng.standard_normal((n, o) + hw).astype(dtype)
    G, cg, og = groups, c // groups, o // groups
    xg = x.reshape(n, G, cg, -1).astype(np.float64)
    wg = w.reshape(G, og, cg).astype(np.float64)
    gyg = gy.reshape(n, G, og, -1).astype(np.float64)
    y_ref = np.einsum("goc,ngcp->ngop", wg, xg).reshape(gy.shape)
    gx_ref = np.einsum("goc,ngop->ngcp", wg, gyg).reshape(x.shape)
    gw_ref = np.einsum("ngop,ngcp->goc", gyg, xg).reshape(w.shape)
    assert_close(fastconv.conv2d(x, w, groups=groups), y_ref, dtype=dtype,
                 scale=np.einsum("goc,ngcp->ngop", np.abs(wg), np.abs(xg)).reshape(gy.shape))
    assert_close(fastconv.conv2d_input_grad(gy, w, x.shape, groups=groups), gx_ref, dtype=dtype,
                 scale=np.einsum("goc,ngop->ngcp", np.abs(wg), np.abs(gyg)).reshape(x.shape))
    assert_close(fastconv.conv2d_weight_grad(gy, x, w.shape, groups=groups), gw_ref, dtype=dtype,
                 scale=np.einsum("ngop,ngcp->goc", np.abs(gyg), np.abs(xg)).reshape(w.shape))


# NHWC 1x1 stride-1 input gradients with >= 8 channels per group are one GEMM over the batch's
# pixels written straight into grad_x (blocks cross image boundaries): checked against einsum.
NHWC_1X1 = [(3, 8, 5, (7, 9), 1, "float32"), (2, 32, 24, (13, 11), 1, "float64"),
            (2, 30, 18, (9, 17), 3, "float32"), (1, 9, 70, (40, 13), 1, "float64")]


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("case", NHWC_1X1, ids=[str(i) for i in range(len(NHWC_1X1))])
def test_plain_1x1_nhwc_input_grad(case):
    n, c, o, hw, groups, dtype = case
    rng = seeded_rng("plain1x1-nhwc", *case)
    w = rng.standard_normal((1, 1, c // groups, o)).astype(dtype)
    gy = rng.standard_normal((n,) + hw + (o,)).astype(dtype)
    G, cg, og = groups, c // groups, o // groups
    wg = w.reshape(cg, G, og).transpose(1, 0, 2).astype(np.float64)        # [g][c][o]
    gyg = gy.reshape(n, hw[0], hw[1], G, og).astype(np.float64)
    ref = np.einsum("gco,nhwgo->nhwgc", wg, gyg).reshape((n,) + hw + (c,))
    scale = np.einsum("gco,nhwgo->nhwgc", np.abs(wg), np.abs(gyg)).reshape(ref.shape)
    x_shape = (n,) + hw + (c,)
    assert "straight into grad_x" in fastconv.explain_conv2d(
        x_shape, w.shape, groups=groups, layout="NHWC", op="input_grad", dtype=dtype)[1]
    outs = []
    for t in (1, 2):
        with fastconv.threads(t):
            outs.append(fastconv.conv2d_input_grad(gy, w, x_shape, groups=groups, layout="NHWC"))
    assert_close(outs[0], ref, scale=scale, dtype=dtype)
    np.testing.assert_array_equal(outs[1], outs[0])
