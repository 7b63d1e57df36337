"""conv_transpose2d forward and backward vs the scatter-definition reference, every ISA."""
import numpy as np
import pytest

import fastconv
import reference as R
from conftest import (DTYPES, LAYOUTS, assert_close, assert_same, int_data, rand_data,
                      seeded_rng, variants, wt_shape, x_shape)

pytestmark = pytest.mark.usefixtures("isa")

# (N, C_in, C_out, H, W, KH, KW, stride, padding, output_padding, dilation, groups)
CASES = [
    (2, 3, 4, 4, 5, 3, 3, 1, 0, 0, 1, 1),
    (1, 4, 6, 5, 4, 3, 3, 2, 1, 1, 1, 1),
    (2, 4, 4, 3, 3, 4, 4, 2, 1, 0, 1, 4),              # depthwise (upsampling filter)
    (1, 6, 4, 4, 6, 3, 2, (2, 3), (1, 0), (1, 2), 1, 2),
    (2, 2, 3, 5, 5, 3, 3, 1, 2, 1, 2, 1),             # output_padding < dilation
    (1, 5, 7, 3, 4, 1, 1, 3, 0, 2, 1, 1),              # 1x1 strided
    (1, 3, 2, 1, 1, 2, 2, 2, 0, 0, 1, 1),
    (1, 16, 20, 4, 4, 3, 3, 2, 1, 1, 1, 1),            # more channels (SIMD tiles)
    (3, 6, 9, 3, 5, 2, 3, (1, 2), (1, 1), 0, (2, 1), 3),
    (1, 2, 2, 4, 5, 5, 5, 1, 3, 0, 1, 1),              # padding crops all but the middle
]


def _ids(cases):
    return ["-".join(str(v).replace(" ", "") for v in c) for c in cases]


def _kw(case, layout):
    n, ci, co, h, w, kh, kw, s, p, op, d, g = case
    return dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g, layout=layout)


_cache = {}


def _setup(case, layout, dtype, integer):
    key = (case, layout, np.dtype(dtype).name, integer)
    if key not in _cache:
        n, ci, co, h, w, kh, kw, s, p, op, d, g = case
        rng = seeded_rng("convT", key)
        gen = int_data if integer else rand_data
        x = gen(rng, x_shape(n, ci, h, w, layout), dtype)
        wt = gen(rng, wt_shape(ci, co // g, kh, kw, layout), dtype)
        b = gen(rng, (co,), dtype)
        kwargs = _kw(case, layout)
        ref = R.conv_transpose2d(x, wt, b, **kwargs)
        scale = R.conv_transpose2d(np.abs(x), np.abs(wt), np.abs(b), **kwargs)
        go = gen(rng, ref.shape, dtype)
        grads = R.conv_transpose2d_grads(go, x, wt, **kwargs)
        gscale = R.conv_transpose2d_grads(np.abs(go), np.abs(x), np.abs(wt), **kwargs)
        _cache[key] = (x, wt, b, ref, scale, go, grads, gscale)
    return _cache[key]


def _check(got, ref, scale, dtype, integer, what=""):
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), what
    if integer:
        assert_same(got, ref, what)
    else:
        assert_close(got, ref, scale, dtype, what)


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_forward(case, layout, dtype, integer):
    x, w, b, ref, scale, *_ = _setup(case, layout, dtype, integer)
    got = fastconv.conv_transpose2d(x, w, b, **_kw(case, layout))
    _check(got, ref, scale, dtype, integer)
    bias_b = b if layout == "NHWC" else b[:, None, None]
    _check(fastconv.conv_transpose2d(x, w, **_kw(case, layout)), ref - bias_b, scale, dtype,
           integer, "no bias")


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_backward(case, layout, dtype, integer):
    x, w, b, ref, scale, go, (rx, rw, rb), (sx, sw, sb) = _setup(case, layout, dtype, integer)
    gx, gw, gb = fastconv.conv_transpose2d_backward(go, x, w, bias=True, **_kw(case, layout))
    _check(gx, rx, sx, dtype, integer, "grad_x")
    _check(gw, rw, sw, dtype, integer, "grad_w")
    _check(gb, rb, sb, dtype, integer, "grad_b")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_unbatched(layout):
    case = CASES[3]
    x, w, b, ref, scale, go, _, _ = _setup(case, layout, np.float64, True)
    kw = _kw(case, layout)
    got = fastconv.conv_transpose2d(x[0], w, b, **kw)
    assert got.ndim == 3
    assert_same(got, ref[0])
    gx, gw, gb = fastconv.conv_transpose2d_backward(go[0], x[0], w, **kw)
    rx, rw, rb = R.conv_transpose2d_grads(go[:1], x[:1], w, **kw)
    assert_same(gx, rx[0])
    assert_same(gw, rw)
    assert_same(gb, rb)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_is_adjoint_of_conv2d(layout):
    """<conv2d(y, W), x> == <y, conv_transpose2d(x, W)> with the weight read as (O,C,...) for
    conv2d and (C_in=O, C_out=C, ...) for the transposed op (NCHW: same array)."""
    rng = seeded_rng("adjoint", layout)
    s, p, d = 2, 1, 1
    x = int_data(rng, x_shape(2, 4, 4, 4, layout), np.float64)      # the transposed input
    w = int_data(rng, (4, 3, 3, 3), np.float64)                       # NCHW conv weight (O=4,C=3)
    yt = fastconv.conv_transpose2d(x, w if layout == "NCHW" else w.transpose(2, 3, 1, 0),
                                   stride=s, padding=p, output_padding=1, layout=layout)
    y = int_data(rng, yt.shape, np.float64)
    cx = fastconv.conv2d(y, w if layout == "NCHW" else w.transpose(2, 3, 1, 0), stride=s,
                         padding=p, layout=layout)
    assert cx.shape == x.shape
    assert float((cx * x).sum()) == float((y * yt).sum())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_memory_variants(layout):
    case = CASES[1]
    x, w, b, ref, scale, go, _, _ = _setup(case, layout, np.float32, False)
    kw = _kw(case, layout)
    base = fastconv.conv_transpose2d(x, w, b, **kw)
    for name, xv in variants(x):
        assert_same(fastconv.conv_transpose2d(xv, w, b, **kw), base, f"x {name}")
    for name, wv in variants(w):
        assert_same(fastconv.conv_transpose2d(x, wv, b, **kw), base, f"weight {name}")
    bgrads = fastconv.conv_transpose2d_backward(go, x, w, **kw)
    for name, gv in variants(go):
        got = fastconv.conv_transpose2d_backward(gv, x, w, **kw)
        for a, c in zip(got, bgrads):
            assert_same(a, c, f"grad_out {name}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_empty(layout):
    x = np.ones(x_shape(0, 3, 4, 4, layout), np.float32)
    w = np.ones(wt_shape(3, 2, 3, 3, layout), np.float32)
    y = fastconv.conv_transpose2d(x, w, stride=2, layout=layout)
    assert y.shape == x_shape(0, 2, 9, 9, layout)
    gx, gw, gb = fastconv.conv_transpose2d_backward(np.ones(y.shape, np.float32), x, w, stride=2,
                                                    layout=layout)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (2,)
    assert not gw.any() and not gb.any()
