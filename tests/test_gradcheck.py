"""Central finite differences (float64) of the reference forward ops vs fastconv's backward ops.

L = sum(G * f(inputs)) for a fixed random G; dL/dinput by (L(a + eps) - L(a - eps)) / (2 eps)
element by element.  Conv ops are linear, so the differences are exact up to rounding; max pools use
all-distinct inputs with gaps far larger than eps, so no perturbation changes a winner.
"""
import functools

import numpy as np
import pytest

import fastconv
import reference as R
from conftest import LAYOUTS, distinct_data, seeded_rng, w_shape, wt_shape, x_shape

pytestmark = pytest.mark.usefixtures("isa")

EPS = 1e-6


def numgrad(f, arrays, which, G):
    """d sum(G * f(*arrays)) / d arrays[which], by central differences."""
    arrays = [a.copy() for a in arrays]
    a = arrays[which]
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + EPS
        fp = float(np.sum(G * f(*arrays)))
        a[i] = old - EPS
        fm = float(np.sum(G * f(*arrays)))
        a[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


def gclose(got, want, what):
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    tol = 1e-6 * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    err = np.max(np.abs(got - want)) if want.size else 0.0
    assert err <= tol, f"{what}: max |analytic - numeric| = {err:.3g} > {tol:.3g}"


# ------------------------------------------------------------------------------------------------
# conv2d
# ------------------------------------------------------------------------------------------------
CONV = [  # (N, C, O, H, W, K, stride, padding, dilation, groups)
    (2, 3, 4, 5, 6, 3, 1, 1, 1, 1),
    (1, 4, 4, 7, 6, 3, 2, "same", 1, 2),
    (1, 3, 6, 6, 6, 2, 1, ((1, 0), (0, 2)), 2, 3),
    (1, 2, 3, 5, 5, 3, (2, 1), "full", (1, 2), 1),
    (2, 4, 4, 5, 4, 3, 1, "valid", 1, 4),
]


@functools.lru_cache(maxsize=None)
def _conv_numeric(case, layout):
    n, c, o, h, w, k, s, p, d, g = case
    rng = seeded_rng("gc-conv", case, layout)
    x = rng.standard_normal(x_shape(n, c, h, w, layout))
    wt = rng.standard_normal(w_shape(o, c // g, k, k, layout))
    b = rng.standard_normal(o)
    kw = dict(stride=s, padding=p, dilation=d, groups=g, layout=layout)
    f = lambda x_, w_, b_: R.conv2d(x_, w_, b_, **kw)
    G = rng.standard_normal(f(x, wt, b).shape)
    return x, wt, b, G, kw, [numgrad(f, [x, wt, b], i, G) for i in range(3)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CONV, ids=[str(i) for i in range(len(CONV))])
def test_conv2d(case, layout):
    x, w, b, G, kw, (nx, nw, nb) = _conv_numeric(case, layout)
    gx, gw, gb = fastconv.conv2d_backward(G, x, w, bias=True, **kw)
    gclose(gx, nx, "grad_x")
    gclose(gw, nw, "grad_w")
    gclose(gb, nb, "grad_b")
    gclose(fastconv.conv2d_input_grad(G, w, x.shape, **kw), nx, "conv2d_input_grad")
    gclose(fastconv.conv2d_weight_grad(G, x, w.shape, **kw), nw, "conv2d_weight_grad")


# ------------------------------------------------------------------------------------------------
# conv_transpose2d
# ------------------------------------------------------------------------------------------------
CONVT = [  # (N, Cin, Cout, H, W, K, stride, padding, output_padding, dilation, groups)
    (2, 3, 2, 3, 4, 3, 2, 1, 1, 1, 1),
    (1, 4, 6, 3, 3, 2, (1, 2), 0, (0, 1), 1, 2),
    (1, 2, 2, 4, 3, 3, 1, (1, 2), 1, 2, 2),
]


@functools.lru_cache(maxsize=None)
def _convt_numeric(case, layout):
    n, ci, co, h, w, k, s, p, op, d, g = case
    rng = seeded_rng("gc-convT", case, layout)
    x = rng.standard_normal(x_shape(n, ci, h, w, layout))
    wt = rng.standard_normal(wt_shape(ci, co // g, k, k, layout))
    b = rng.standard_normal(co)
    kw = dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g, layout=layout)
    f = lambda x_, w_, b_: R.conv_transpose2d(x_, w_, b_, **kw)
    G = rng.standard_normal(f(x, wt, b).shape)
    return x, wt, b, G, kw, [numgrad(f, [x, wt, b], i, G) for i in range(3)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CONVT, ids=[str(i) for i in range(len(CONVT))])
def test_conv_transpose2d(case, layout):
    x, w, b, G, kw, (nx, nw, nb) = _convt_numeric(case, layout)
    gx, gw, gb = fastconv.conv_transpose2d_backward(G, x, w, bias=True, **kw)
    gclose(gx, nx, "grad_x")
    gclose(gw, nw, "grad_w")
    gclose(gb, nb, "grad_b")


# ------------------------------------------------------------------------------------------------
# pools
# ------------------------------------------------------------------------------------------------
MAXP = [  # (H, W, k, stride, padding, dilation, ceil_mode)
    (6, 7, 3, 2, 1, 1, True),
    (6, 6, 2, 1, 0, 1, False),         # overlapping windows
    (7, 7, 3, 1, 1, 2, False),
    (5, 8, (2, 3), (2, 1), "same", 1, False),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", MAXP, ids=[str(i) for i in range(len(MAXP))])
def test_max_pool2d(case, layout):
    h, w, k, s, p, d, cm = case
    rng = seeded_rng("gc-max", case, layout)
    x = distinct_data(rng, x_shape(2, 3, h, w, layout))
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=cm, layout=layout)
    y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
    G = rng.standard_normal(y.shape)
    num = numgrad(lambda a: R.max_pool2d(a, k, **kw)[0], [x], 0, G)
    gclose(fastconv.max_pool2d_backward(G, idx, x.shape, k, **kw), num, "max_pool2d")


AVGP = [  # (H, W, k, stride, padding, ceil_mode, count_include_pad, divisor_override)
    (6, 7, 3, 2, 1, True, True, None),
    (6, 7, 3, 2, 1, True, False, None),
    (5, 5, 2, 1, 1, False, True, 3),
    (7, 5, (3, 2), (2, 1), "same", False, False, None),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", AVGP, ids=[str(i) for i in range(len(AVGP))])
def test_avg_pool2d(case, layout):
    h, w, k, s, p, cm, cip, dov = case
    rng = seeded_rng("gc-avg", case, layout)
    x = rng.standard_normal(x_shape(2, 3, h, w, layout))
    kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip, divisor_override=dov,
              layout=layout)
    G = rng.standard_normal(R.avg_pool2d(x, k, **kw).shape)
    num = numgrad(lambda a: R.avg_pool2d(a, k, **kw), [x], 0, G)
    gclose(fastconv.avg_pool2d_backward(G, x.shape, k, **kw), num, "avg_pool2d")


@pytest.mark.parametrize("osz", [3, (2, 5), (7, 4)], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_adaptive_avg_pool2d(osz, layout):
    rng = seeded_rng("gc-aavg", osz, layout)
    x = rng.standard_normal(x_shape(2, 3, 5, 7, layout))
    G = rng.standard_normal(R.adaptive_avg_pool2d(x, osz, layout).shape)
    num = numgrad(lambda a: R.adaptive_avg_pool2d(a, osz, layout), [x], 0, G)
    gclose(fastconv.adaptive_avg_pool2d_backward(G, x.shape, layout=layout), num, "adaptive avg")


@pytest.mark.parametrize("osz", [3, (2, 5), (7, 4)], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_adaptive_max_pool2d(osz, layout):
    rng = seeded_rng("gc-amax", osz, layout)
    x = distinct_data(rng, x_shape(2, 3, 5, 7, layout))
    y, idx = fastconv.adaptive_max_pool2d(x, osz, return_indices=True, layout=layout)
    G = rng.standard_normal(y.shape)
    num = numgrad(lambda a: R.adaptive_max_pool2d(a, osz, layout)[0], [x], 0, G)
    gclose(fastconv.adaptive_max_pool2d_backward(G, idx, x.shape, layout=layout), num,
           "adaptive max")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_global_avg_pool2d(layout):
    rng = seeded_rng("gc-gavg", layout)
    x = rng.standard_normal(x_shape(2, 3, 4, 5, layout))
    G = rng.standard_normal(R.global_avg_pool2d(x, layout).shape)
    num = numgrad(lambda a: R.global_avg_pool2d(a, layout), [x], 0, G)
    gclose(fastconv.global_avg_pool2d_backward(G, x.shape, layout=layout), num, "global avg")
