"""Pooling (max / avg / adaptive / global, forward and backward) vs the NumPy reference, under
every ISA.  Max pooling values and indices are compared exactly (NaN == NaN)."""
import numpy as np
import pytest

import fastconv
import reference as R
from conftest import (DTYPES, LAYOUTS, assert_close, assert_same, int_data, rand_data,
                      seeded_rng, variants, x_shape)

pytestmark = pytest.mark.usefixtures("isa")

N, CH = 2, 9  # odd channel count: SIMD tails in NHWC

# (H, W, kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (7, 7, 2, None, 0, 1, False),
    (8, 9, 3, 2, 1, 1, False),
    (8, 9, 3, 2, 1, 1, True),
    (7, 6, (2, 3), (1, 2), (1, 1), 1, True),
    (9, 9, 3, 1, 1, 2, False),
    (10, 7, 3, 3, 0, (2, 1), True),
    (6, 6, 1, 1, 0, 1, False),
    (5, 8, 4, 2, 2, 1, True),
    (7, 7, 3, 2, "same", 1, False),
    (8, 5, 2, 2, "same", 1, False),
    (6, 9, 3, 2, "same", 2, False),
    (7, 7, 3, 2, "valid", 1, False),
    (5, 5, 5, 1, 0, 1, False),
    (13, 11, 3, 2, 1, 1, False),
    (4, 20, (1, 3), (1, 3), (0, 1), 1, True),
]

# (H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    (7, 7, 2, 3, 0, True, True, None),
    (8, 9, 3, 2, 1, False, True, None),
    (8, 9, 3, 2, 1, False, False, None),
    (8, 9, 3, 2, 1, True, False, None),
    (8, 9, 3, 2, 1, True, True, None),
    (7, 6, (2, 3), (1, 2), (1, 1), True, True, None),
    (7, 6, (2, 3), (1, 2), (1, 1), True, False, None),
    (6, 6, 2, None, 0, False, True, None),
    (6, 7, 3, 2, 1, False, True, 5),
    (6, 7, 3, 2, 1, True, False, 2),
    (7, 7, 3, 2, "same", False, False, None),
    (8, 5, 2, 2, "same", False, True, None),   # string padding: padded cells never counted
    (7, 7, 3, 2, "valid", False, True, None),
    (5, 5, 5, 1, 2, False, False, None),
    (11, 13, 4, 3, 2, True, True, None),
]


def _ids(cases):
    return ["-".join(str(v).replace(" ", "") for v in c) for c in cases]


def _max_kw(case, layout):
    h, w, k, s, p, d, cm = case
    return k, dict(stride=s, padding=p, dilation=d, ceil_mode=cm, layout=layout)


def _avg_kw(case, layout):
    h, w, k, s, p, cm, cip, dov = case
    return k, dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip,
                   divisor_override=dov, layout=layout)


def _max_data(rng, shape, dtype, kind):
    if kind == "rand":
        return rand_data(rng, shape, dtype)
    x = int_data(rng, shape, dtype, -2, 2)          # lots of ties
    if kind == "nan":
        flat = x.reshape(-1)
        k = max(1, flat.size // 7)
        flat[rng.choice(flat.size, k, replace=False)] = np.nan
        flat[rng.choice(flat.size, k, replace=False)] = -np.inf
        flat[rng.choice(flat.size, max(1, k // 3), replace=False)] = np.inf
    return x


_cache = {}


def _max_setup(case, layout, dtype, kind):
    key = ("max", case, layout, np.dtype(dtype).name, kind)
    if key not in _cache:
        h, w = case[:2]
        rng = seeded_rng(*key)
        x = _max_data(rng, x_shape(N, CH, h, w, layout), dtype, kind)
        k, kw = _max_kw(case, layout)
        y, idx = R.max_pool2d(x, k, **kw)
        go = int_data(rng, y.shape, dtype) if kind != "rand" else rand_data(rng, y.shape, dtype)
        gx = R.max_pool2d_backward(go, idx, x.shape, layout)
        gs = R.max_pool2d_backward(np.abs(go), idx, x.shape, layout)
        _cache[key] = (x, y, idx, go, gx, gs)
    return _cache[key]


# ------------------------------------------------------------------------------------------------
# max pooling
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rand", "ties", "nan"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", MAX_CASES, ids=_ids(MAX_CASES))
def test_max_pool(case, layout, dtype, kind):
    x, y, idx, go, gx, gs = _max_setup(case, layout, dtype, kind)
    k, kw = _max_kw(case, layout)
    got, gidx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
    assert got.dtype == np.dtype(dtype) and gidx.dtype == np.int64
    assert_same(got, y, "values")
    assert_same(gidx, idx, "indices")
    only = fastconv.max_pool2d(x, k, **kw)
    assert isinstance(only, np.ndarray)
    assert_same(only, y, "values without indices")


@pytest.mark.parametrize("kind", ["rand", "ties"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", MAX_CASES, ids=_ids(MAX_CASES))
def test_max_pool_backward(case, layout, dtype, kind):
    """Gradient goes to the index; overlapping windows accumulate every contribution."""
    x, y, idx, go, gx, gs = _max_setup(case, layout, dtype, kind)
    k, kw = _max_kw(case, layout)
    got = fastconv.max_pool2d_backward(go, idx, x.shape, k, **kw)
    assert got.shape == x.shape and got.dtype == np.dtype(dtype)
    if kind == "ties":  # integer data: sums are exact
        assert_same(got, gx)
    else:
        assert_close(got, gx, gs, dtype)


# ------------------------------------------------------------------------------------------------
# average pooling
# ------------------------------------------------------------------------------------------------
def _avg_setup(case, layout, dtype, integer):
    key = ("avg", case, layout, np.dtype(dtype).name, integer)
    if key not in _cache:
        h, w = case[:2]
        rng = seeded_rng(*key)
        gen = int_data if integer else rand_data
        x = gen(rng, x_shape(N, CH, h, w, layout), dtype)
        k, kw = _avg_kw(case, layout)
        y = R.avg_pool2d(x, k, **kw)
        ys = R.avg_pool2d(np.abs(x), k, **kw)
        go = gen(rng, y.shape, dtype)
        gx = R.avg_pool2d_backward(go, x.shape, k, **kw)
        gs = R.avg_pool2d_backward(np.abs(go), x.shape, k, **kw)
        _cache[key] = (x, y, ys, go, gx, gs)
    return _cache[key]


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", AVG_CASES, ids=_ids(AVG_CASES))
def test_avg_pool(case, layout, dtype, integer):
    x, y, ys, go, gx, gs = _avg_setup(case, layout, dtype, integer)
    k, kw = _avg_kw(case, layout)
    got = fastconv.avg_pool2d(x, k, **kw)
    assert_close(got, y, ys, dtype, "forward")
    gotb = fastconv.avg_pool2d_backward(go, x.shape, k, **kw)
    assert_close(gotb, gx, gs, dtype, "backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_avg_pool_ceil_mode_values(layout, dtype):
    """BAD_INPUTS 17: the overhang is not counted (PyTorch values)."""
    x = np.arange(49, dtype=dtype).reshape(1, 1, 7, 7)
    want = np.array([[4, 7, 9.5], [25, 28, 30.5], [42.5, 45.5, 48]])
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    got = fastconv.avg_pool2d(x, 2, stride=3, ceil_mode=True, layout=layout)
    got = got[0, 0] if layout == "NCHW" else got[0, :, :, 0]
    assert_same(got, want)


# ------------------------------------------------------------------------------------------------
# adaptive / global
# ------------------------------------------------------------------------------------------------
ADAPTIVE_CASES = [(7, 7, 3), (8, 6, (3, 4)), (5, 5, 5), (4, 9, (7, 2)), (10, 10, 1),
                  (13, 5, (4, 5)), (1, 1, 2), (6, 11, (6, 4))]


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=_ids(ADAPTIVE_CASES))
def test_adaptive_avg(case, layout, dtype, integer):
    h, w, osz = case
    rng = seeded_rng("aavg", case, layout, np.dtype(dtype).name, integer)
    gen = int_data if integer else rand_data
    x = gen(rng, x_shape(N, CH, h, w, layout), dtype)
    y = R.adaptive_avg_pool2d(x, osz, layout)
    got = fastconv.adaptive_avg_pool2d(x, osz, layout=layout)
    assert_close(got, y, R.adaptive_avg_pool2d(np.abs(x), osz, layout), dtype)
    go = gen(rng, y.shape, dtype)
    gotb = fastconv.adaptive_avg_pool2d_backward(go, x.shape, layout=layout)
    assert_close(gotb, R.adaptive_avg_pool2d_backward(go, x.shape, layout),
                 R.adaptive_avg_pool2d_backward(np.abs(go), x.shape, layout), dtype)


@pytest.mark.parametrize("kind", ["rand", "ties", "nan"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=_ids(ADAPTIVE_CASES))
def test_adaptive_max(case, layout, dtype, kind):
    h, w, osz = case
    rng = seeded_rng("amax", case, layout, np.dtype(dtype).name, kind)
    x = _max_data(rng, x_shape(N, CH, h, w, layout), dtype, kind)
    y, idx = R.adaptive_max_pool2d(x, osz, layout)
    got, gidx = fastconv.adaptive_max_pool2d(x, osz, return_indices=True, layout=layout)
    assert gidx.dtype == np.int64
    assert_same(got, y, "values")
    assert_same(gidx, idx, "indices")
    assert_same(fastconv.adaptive_max_pool2d(x, osz, layout=layout), y)
    go = int_data(rng, y.shape, dtype)
    gotb = fastconv.adaptive_max_pool2d_backward(go, idx, x.shape, layout=layout)
    assert_same(gotb, R.adaptive_max_pool2d_backward(go, idx, x.shape, layout))


@pytest.mark.parametrize("hw", [(7, 7), (1, 1), (3, 5), (16, 9)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_global_avg(hw, layout, dtype):
    rng = seeded_rng("gavg", hw, layout, np.dtype(dtype).name)
    x = rand_data(rng, x_shape(N, 17, *hw, layout), dtype)
    y = R.global_avg_pool2d(x, layout)
    got = fastconv.global_avg_pool2d(x, layout=layout)
    assert got.shape == x_shape(N, 17, 1, 1, layout)
    assert_close(got, y, R.global_avg_pool2d(np.abs(x), layout), dtype)
    go = rand_data(rng, y.shape, dtype)
    gotb = fastconv.global_avg_pool2d_backward(go, x.shape, layout=layout)
    assert_close(gotb, R.global_avg_pool2d_backward(go, x.shape, layout),
                 R.global_avg_pool2d_backward(np.abs(go), x.shape, layout), dtype)


# ------------------------------------------------------------------------------------------------
# unbatched, memory variants, empty
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_unbatched(layout):
    rng = seeded_rng("pool-unbatched", layout)
    x = int_data(rng, x_shape(1, 5, 8, 7, layout), np.float32)[0]
    y, idx = R.max_pool2d(x, 3, stride=2, padding=1, layout=layout)
    got, gidx = fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True, layout=layout)
    assert got.ndim == 3 and gidx.ndim == 3
    assert_same(got, y)
    assert_same(gidx, idx)
    go = int_data(rng, y.shape, np.float32)
    assert_same(fastconv.max_pool2d_backward(go, idx, x.shape, 3, stride=2, padding=1,
                                             layout=layout),
                R.max_pool2d_backward(go, idx, x.shape, layout))
    ya = R.avg_pool2d(x, 2, layout=layout)
    assert_close(fastconv.avg_pool2d(x, 2, layout=layout), ya)
    ga = int_data(rng, ya.shape, np.float32)
    assert_close(fastconv.avg_pool2d_backward(ga, x.shape, 2, layout=layout),
                 R.avg_pool2d_backward(ga, x.shape, 2, layout=layout))
    assert_close(fastconv.adaptive_avg_pool2d(x, 3, layout=layout),
                 R.adaptive_avg_pool2d(x, 3, layout))
    am, ai = fastconv.adaptive_max_pool2d(x, 3, return_indices=True, layout=layout)
    rm, ri = R.adaptive_max_pool2d(x, 3, layout)
    assert_same(am, rm)
    assert_same(ai, ri)
    g = fastconv.global_avg_pool2d(x, layout=layout)
    assert g.shape == ((5, 1, 1) if layout == "NCHW" else (1, 1, 5))
    assert_close(g, R.global_avg_pool2d(x, layout))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_memory_variants(layout):
    rng = seeded_rng("pool-variants", layout)
    x = rand_data(rng, x_shape(2, 9, 8, 7, layout), np.float32)
    base, bidx = fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True,
                                     layout=layout)
    abase = fastconv.avg_pool2d(x, 3, stride=2, padding=1, layout=layout)
    adbase = fastconv.adaptive_avg_pool2d(x, (3, 2), layout=layout)
    for name, xv in variants(x) + [("broadcast", np.broadcast_to(x[:1], x.shape))]:
        xref = base if name != "broadcast" else fastconv.max_pool2d(
            np.ascontiguousarray(xv), 3, stride=2, padding=1, layout=layout)
        got, gidx = fastconv.max_pool2d(xv, 3, stride=2, padding=1, return_indices=True,
                                        layout=layout)
        assert_same(got, xref, f"max {name}")
        if name != "broadcast":
            assert_same(gidx, bidx, f"max idx {name}")
            assert_same(fastconv.avg_pool2d(xv, 3, stride=2, padding=1, layout=layout), abase,
                        f"avg {name}")
            assert_same(fastconv.adaptive_avg_pool2d(xv, (3, 2), layout=layout), adbase,
                        f"adaptive {name}")
    go = rand_data(rng, base.shape, np.float32)
    gbase = fastconv.max_pool2d_backward(go, bidx, x.shape, 3, stride=2, padding=1,
                                         layout=layout)
    for name, gv in variants(go):
        assert_same(fastconv.max_pool2d_backward(gv, bidx, x.shape, 3, stride=2, padding=1,
                                                 layout=layout), gbase, f"grad_out {name}")
    for name, iv in variants(bidx):
        assert_same(fastconv.max_pool2d_backward(go, iv, x.shape, 3, stride=2, padding=1,
                                                 layout=layout), gbase, f"indices {name}")
    abg = fastconv.avg_pool2d_backward(go, x.shape, 3, stride=2, padding=1, layout=layout)
    for name, gv in variants(go):
        assert_same(fastconv.avg_pool2d_backward(gv, x.shape, 3, stride=2, padding=1,
                                                 layout=layout), abg, f"avg grad_out {name}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_empty_batch(layout):
    x = np.ones(x_shape(0, 4, 6, 6, layout), np.float32)
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True, layout=layout)
    assert y.shape == idx.shape == x_shape(0, 4, 3, 3, layout)
    assert fastconv.max_pool2d_backward(y, idx, x.shape, 2, layout=layout).shape == x.shape
    a = fastconv.avg_pool2d(x, 3, stride=1, padding=1, layout=layout)
    assert a.shape == x_shape(0, 4, 6, 6, layout)
    assert fastconv.avg_pool2d_backward(a, x.shape, 3, stride=1, padding=1,
                                        layout=layout).shape == x.shape
    assert fastconv.adaptive_avg_pool2d(x, 2, layout=layout).shape == x_shape(0, 4, 2, 2, layout)
    m, i = fastconv.adaptive_max_pool2d(x, 2, return_indices=True, layout=layout)
    assert m.shape == i.shape == x_shape(0, 4, 2, 2, layout)
    assert fastconv.global_avg_pool2d(x, layout=layout).shape == x_shape(0, 4, 1, 1, layout)
    # C == 0
    x0 = np.ones(x_shape(2, 0, 6, 6, layout), np.float64)
    assert fastconv.max_pool2d(x0, 2, layout=layout).shape == x_shape(2, 0, 3, 3, layout)
    assert fastconv.avg_pool2d(x0, 2, layout=layout).shape == x_shape(2, 0, 3, 3, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_constant_image(layout):
    """BAD_INPUTS 15: constant images -> the constant, index of the first window element."""
    x = np.full(x_shape(1, 3, 6, 6, layout), 2.5, np.float32)
    y, idx = fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True, layout=layout)
    ry, ridx = R.max_pool2d(x, 3, stride=2, padding=1, layout=layout)
    assert_same(y, ry)
    assert_same(idx, ridx)
    a = fastconv.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False, layout=layout)
    assert_same(a, np.full(a.shape, 2.5))
