"""The vector pooling paths (per-ISA row kernels, gather backward, row-window backward) against the
NumPy reference and against the scalar ISA, at the edges where they change behaviour: output
widths around the vector width (NCHW), channel counts around it (NHWC), NaN / -inf / ties in
every lane, -0.0 gradients, invalid indices in every lane, row-block splits with halo rows,
non-temporal (large) outputs, 1 vs 2 threads."""
import re

import numpy as np
import pytest

import fastconv
import reference as R
from conftest import (DTYPES, LAYOUTS, assert_bitwise, assert_close, assert_same, int_data,
                      rand_data, seeded_rng, x_shape)

pytestmark = pytest.mark.usefixtures("isa")

# (kernel, stride, padding, dilation, ceil_mode): the stride-2 / stride-1 row kernels, the
# 2-wide gather, overlapping windows (halo rows), dilation, ceil-mode edge windows.
MAX_GEOMS = [
    (2, 2, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    (2, 1, 0, 1, False),
    (3, 1, 1, 1, False),
    (2, 2, 0, 1, True),
    ((2, 3), (2, 1), (1, 1), (1, 2), False),
    (3, 3, 1, 1, True),
    # windows 3 wide 2 apart across the width (the k3s2 gather, NHWC; the plane scatter, NCHW)
    # with other heights, no padding, ceil-mode edges, 4 candidate rows
    (3, 2, 0, 1, False),
    (3, 2, 0, 1, True),
    ((5, 3), (3, 2), (2, 1), 1, False),
    ((4, 3), (1, 2), (2, 0), 1, True),
    ((1, 3), (1, 2), (0, 1), 1, False),
]


def _gid(g):
    return "-".join(str(v).replace(" ", "") for v in g)


def _special(rng, shape, dtype):
    """Ties (small integers), and NaN / -inf / +inf sprinkled over every position."""
    x = int_data(rng, shape, dtype, -2, 2)
    flat = x.reshape(-1)
    k = max(1, flat.size // 6)
    flat[rng.choice(flat.size, k, replace=False)] = np.nan
    flat[rng.choice(flat.size, k, replace=False)] = -np.inf
    flat[rng.choice(flat.size, max(1, k // 4), replace=False)] = np.inf
    return x


def _max_kw(g, layout):
    k, s, p, d, cm = g
    return k, dict(stride=s, padding=p, dilation=d, ceil_mode=cm, layout=layout)


def _check_max(x, g, layout, dtype, rng):
    k, kw = _max_kw(g, layout)
    try:
        y, idx = R.max_pool2d(x, k, **kw)
    except (AssertionError, ValueError):
        return False
    got, gidx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
    assert_same(got, y, f"values {x.shape}")
    assert_same(gidx, idx, f"indices {x.shape}")
    go = int_data(rng, y.shape, dtype, -3, 3)
    go.reshape(-1)[::5] = -0.0  # adding -0.0 to a zeroed element gives +0.0
    gx = fastconv.max_pool2d_backward(go, gidx, x.shape, k, **kw)
    ref = R.max_pool2d_backward(go, idx, x.shape, layout)
    assert_same(gx, ref, f"backward {x.shape}")
    assert (np.signbit(gx) == np.signbit(np.asarray(ref, dtype))).all(), "sign of zero"
    return True


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("g", MAX_GEOMS, ids=_gid)
def test_max_nchw_widths(g, dtype):
    """Output widths 1..~40 cover full vectors, overlapping tails and no vector at all."""
    rng = seeded_rng("nchw-widths", _gid(g), np.dtype(dtype).name)
    done = 0
    for w in range(1, 41):
        x = _special(rng, (1, 2, 6, w), dtype)
        done += _check_max(x, g, "NCHW", dtype, rng)
    assert done >= 30


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("g", MAX_GEOMS, ids=_gid)
def test_max_nhwc_channels(g, dtype):
    rng = seeded_rng("nhwc-channels", _gid(g), np.dtype(dtype).name)
    for c in (1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40):
        x = _special(rng, (2, 5, 7, c), dtype)
        assert _check_max(x, g, "NHWC", dtype, rng)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_nan_in_each_lane(layout):
    """One NaN per window row at every lane position; the rest -inf or ties."""
    w, c = 36, 20
    for fill in (-np.inf, 1.0):
        for lane in range(18):
            x = np.full((1, c, 4, w), fill, np.float32)
            x[0, :, 1, 2 * lane] = np.nan
            x[0, :, 2, 2 * lane + 1] = np.nan  # later NaN in the same window wins
            if layout == "NHWC":
                x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            for g in ((2, 2, 0, 1, False), (3, 2, 1, 1, False), (2, 1, 0, 1, False)):
                assert _check_max(x, g, layout, np.float32, seeded_rng("lane", lane))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_max_3x3s2_tall_planes(dtype):
    """Windows 3x3 2 apart down taller planes: after the first output row each window's first row
    comes from the previous window (fused row + column pass, row results chained), the padded
    left column beside it; heights and widths either side of the input's end (last row's read)."""
    rng = seeded_rng("3x3s2-tall", np.dtype(dtype).name)
    for g in ((3, 2, 1, 1, False), (3, 2, 1, 1, True), (3, 2, 0, 1, False), (3, 2, 0, 1, True)):
        for h in range(5, 13):
            for w in (15, 16, 17, 18, 19, 33, 34, 35, 50):
                x = _special(rng, (1, 2, h, w), dtype)
                assert _check_max(x, g, "NCHW", dtype, rng)


def test_max_3x3s2_nan_each_lane_tall():
    """A NaN at each lane position in each row of the chained windows, earlier NaNs overruled by
    later ones in the same window; the rest -inf or ties."""
    h, w = 9, 36
    for fill in (-np.inf, 1.0):
        for lane in range(18):
            for r in range(1, h - 1):
                x = np.full((1, 2, h, w), fill, np.float32)
                x[0, :, r, 2 * lane] = np.nan
                x[0, :, r + 1, (2 * lane + 1) % w] = np.nan
                x[0, 1, r - 1, (2 * lane + 2) % w] = 2.0
                for g in ((3, 2, 1, 1, False), (3, 2, 0, 1, True)):
                    assert _check_max(x, g, "NCHW", np.float32, seeded_rng("lane-tall", lane))


def _same_on_every_isa(fn):
    """fn() under the current ISA equals fn() under the scalar ISA, bit for bit."""
    from fastconv import _testing
    got = fn()
    with _testing.isa("scalar"):
        ref = fn()
    for a, b in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple)
                    else (ref,)):
        assert_bitwise(a, b, "vs scalar ISA")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bitwise_vs_scalar_isa(layout, dtype):
    rng = seeded_rng("vs-scalar", layout, np.dtype(dtype).name)
    for (h, w, c) in ((9, 37, 3), (12, 50, 19), (6, 17, 33)):
        x = rand_data(rng, x_shape(2, c, h, w, layout), dtype)
        x.reshape(-1)[::11] = np.nan
        for g in MAX_GEOMS:
            k, kw = _max_kw(g, layout)
            y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
            go = rand_data(rng, y.shape, dtype)
            go.reshape(-1)[::3] = -0.0
            _same_on_every_isa(lambda: fastconv.max_pool2d(x, k, return_indices=True, **kw))
            _same_on_every_isa(lambda: fastconv.max_pool2d_backward(go, idx, x.shape, k, **kw))
        for k, s, p, cm, cip, div in AVG_GEOMS:
            kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip,
                      divisor_override=div, layout=layout)
            y = fastconv.avg_pool2d(x, k, **kw)
            go = rand_data(rng, y.shape, dtype)
            go.reshape(-1)[::3] = -0.0
            _same_on_every_isa(lambda: fastconv.avg_pool2d(x, k, **kw))
            _same_on_every_isa(lambda: fastconv.avg_pool2d_backward(go, x.shape, k, **kw))


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override): non-overlapping
# columns (the expanded-row backward, the 2-wide duplication), gaps, edges; and overlapping ones.
AVG_GEOMS = [
    (2, 2, 0, False, True, None),
    (2, 2, 1, True, False, None),
    (2, 2, 0, True, True, 3),
    ((2, 3), (2, 3), (1, 1), True, True, None),
    (2, 3, 0, True, False, None),
    ((3, 2), (2, 2), (1, 0), False, True, None),
    (3, 2, 1, False, False, None),
    (3, 3, 1, True, True, None),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("g", AVG_GEOMS, ids=_gid)
def test_avg_backward_widths(g, layout, dtype):
    k, s, p, cm, cip, div = g
    kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip, divisor_override=div,
              layout=layout)
    rng = seeded_rng("avg-widths", _gid(g), layout, np.dtype(dtype).name)
    for w in range(2, 41, 3 if layout == "NHWC" else 1):
        for c in ((1, 9) if layout == "NHWC" else (2,)):
            xs = x_shape(1, c, 5, w, layout)
            try:
                y = R.avg_pool2d(np.zeros(xs), k, **kw)
            except (AssertionError, ValueError):
                continue
            go = int_data(rng, y.shape, dtype)
            got = fastconv.avg_pool2d_backward(go, xs, k, **kw)
            ref = R.avg_pool2d_backward(go, xs, k, **kw)
            assert_close(got, ref, R.avg_pool2d_backward(np.abs(go), xs, k, **kw), dtype,
                         f"w={w}")
            x = rand_data(rng, xs, dtype)
            assert_close(fastconv.avg_pool2d(x, k, **kw), R.avg_pool2d(x, k, **kw),
                         R.avg_pool2d(np.abs(x), k, **kw), dtype, f"forward w={w}")


# ------------------------------------------------------------------------------------------------
# invalid indices: caught in every lane of the fused check and the gather kernels
# ------------------------------------------------------------------------------------------------
def _pos(layout, n, c, oh, ow):
    return (n, c, oh, ow) if layout == "NCHW" else (n, oh, ow, c)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("g", [(2, 2, 0, 1, False), (3, 2, 1, 1, False), (2, 2, 0, 2, False)],
                         ids=_gid)
def test_bad_index_every_lane(g, layout):
    rng = seeded_rng("bad-lanes", _gid(g), layout)
    c_, h, w = 20, 6, 40
    x = rand_data(rng, x_shape(1, c_, h, w, layout), np.float32)
    k, kw = _max_kw(g, layout)
    y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
    go = rand_data(rng, y.shape, np.float32)
    oh_n, ow_n = (y.shape[2], y.shape[3]) if layout == "NCHW" else (y.shape[1], y.shape[2])
    for lane in range(0, ow_n):
        for kind in ("neighbour", "negative", "huge", "end"):
            bad = idx.copy()
            c, oh = lane % c_, 1 + lane % (oh_n - 1)
            p = _pos(layout, 0, c, oh, lane)
            v = int(bad[p])
            newv = {"neighbour": v + (3 if lane + 1 < ow_n else -3),  # outside its window
                    "negative": -1, "huge": 2**40 + v, "end": h * w}[kind]
            # a second bad index later in array order is not the one reported
            last = _pos(layout, 0, c_ - 1, oh_n - 1, ow_n - 1)
            if last != p:
                bad[last] = -5
            bad[p] = newv
            msg = re.escape(f"indices[{', '.join(map(str, p))}] = {newv}")
            for t in (1, 2):
                with fastconv.threads(t):
                    with pytest.raises(ValueError, match=msg):
                        fastconv.max_pool2d_backward(go, bad, x.shape, k, **kw)


# ------------------------------------------------------------------------------------------------
# task splits: row blocks with halo rows, 1 vs 2 threads, non-temporal (large) outputs
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_row_blocks_threads_bitwise(layout, dtype):
    rng = seeded_rng("blocks", layout, np.dtype(dtype).name)
    shape = x_shape(1, 3, 200, 100, layout) if layout == "NCHW" else x_shape(1, 16, 64, 64, layout)
    x = rand_data(rng, shape, dtype)
    for g in ((3, 2, 1, 1, False), (2, 2, 0, 1, False), (3, 1, 1, 1, True), (3, 2, 1, 2, False)):
        k, kw = _max_kw(g, layout)
        res = []
        for t in (1, 2):
            with fastconv.threads(t):
                y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
                go = rand_data(seeded_rng("go", _gid(g)), y.shape, dtype)
                res.append((y, idx, fastconv.max_pool2d_backward(go, idx, x.shape, k, **kw)))
        for a, b in zip(*res):
            assert_bitwise(a, b, f"max {g}")
        assert_close(res[0][2], R.max_pool2d_backward(go, res[0][1], x.shape, layout),
                     R.max_pool2d_backward(np.abs(go), res[0][1], x.shape, layout), dtype)
    for k, s, p, cm, cip, div in AVG_GEOMS[:4] + AVG_GEOMS[5:]:
        kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip,
                  divisor_override=div, layout=layout)
        y = fastconv.avg_pool2d(x, k, **kw)
        go = rand_data(rng, y.shape, dtype)
        res = []
        for t in (1, 2):
            with fastconv.threads(t):
                res.append(fastconv.avg_pool2d_backward(go, x.shape, k, **kw))
        assert_bitwise(res[0], res[1], f"avg {k} {s}")
        assert_close(res[0], R.avg_pool2d_backward(go, x.shape, k, **kw),
                     R.avg_pool2d_backward(np.abs(go), x.shape, k, **kw), dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_large_outputs_match_per_image(layout):
    """A batch whose grad_x exceeds the non-temporal threshold (8 MiB) equals, image by image,
    the same computation on one image (below it)."""
    rng = seeded_rng("large", layout)
    x = rand_data(rng, x_shape(3, 64, 112, 112, layout), np.float32)  # 9.6 MB
    for g in ((2, 2, 0, 1, False), (3, 2, 1, 1, False)):
        k, kw = _max_kw(g, layout)
        y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
        go = rand_data(rng, y.shape, np.float32)
        gx = fastconv.max_pool2d_backward(go, idx, x.shape, k, **kw)
        ga = fastconv.avg_pool2d_backward(go, x.shape, k, stride=kw["stride"],
                                          padding=kw["padding"], layout=layout)
        for n in range(x.shape[0]):
            y1, i1 = fastconv.max_pool2d(x[n:n + 1], k, return_indices=True, **kw)
            assert_bitwise(y1, y[n:n + 1])
            assert_bitwise(i1, idx[n:n + 1])
            assert_bitwise(fastconv.max_pool2d_backward(go[n:n + 1], i1, x[n:n + 1].shape, k,
                                                        **kw), gx[n:n + 1])
            assert_bitwise(fastconv.avg_pool2d_backward(go[n:n + 1], x[n:n + 1].shape, k,
                                                        stride=kw["stride"],
                                                        padding=kw["padding"], layout=layout),
                           ga[n:n + 1])
        # one image against the independent reference
        assert_close(gx[:1], R.max_pool2d_backward(go[:1], idx[:1], x[:1].shape, layout),
                     R.max_pool2d_backward(np.abs(go[:1]), idx[:1], x[:1].shape, layout),
                     np.float32)


@pytest.mark.parametrize("g", [(3, 2, 1, 1, False), (3, 2, 0, 1, True), ((2, 3), (1, 2), (1, 1), 1,
                                                                            False)], ids=_gid)
def test_max_backward_planes_beyond_cache(g):
    """NCHW planes too large for the whole-plane scatter (> 256 KB): the row gather, against the
    reference, 1 vs 2 threads, with grad_x above the non-temporal threshold, and a bad index."""
    rng = seeded_rng("big-planes", _gid(g))
    x = rand_data(rng, (3, 3, 301, 263), np.float32)
    k, kw = _max_kw(g, "NCHW")
    y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
    go = int_data(rng, y.shape, np.float32, -3, 3)
    go.reshape(-1)[::7] = -0.0
    res = []
    for t in (1, 2):
        with fastconv.threads(t):
            res.append(fastconv.max_pool2d_backward(go, idx, x.shape, k, **kw))
    assert_bitwise(res[0], res[1], "1 vs 2 threads")
    ref = R.max_pool2d_backward(go[:1, :1], idx[:1, :1], x[:1, :1].shape)
    assert_same(res[0][:1, :1], ref, "vs reference")
    assert (np.signbit(res[0][:1, :1]) == np.signbit(np.asarray(ref, np.float32))).all()
    _same_on_every_isa(lambda: fastconv.max_pool2d_backward(go, idx, x.shape, k, **kw))
    bad = idx.copy()
    bad[2, 1, 40, 17] += 2**32
    bad[2, 2, 3, 3] = -1
    with pytest.raises(ValueError, match=re.escape(f"indices[2, 1, 40, 17] = {2**32 + int(idx[2, 1, 40, 17])}")):
        fastconv.max_pool2d_backward(go, bad, x.shape, k, **kw)


def test_plane_scatter_after_bad_index():
    """An invalid index abandons a half-accumulated plane buffer: later calls, with smaller and
    larger planes, on 1 and 2 threads, are still exact."""
    rng = seeded_rng("plane-after-bad")
    for t in (1, 2):
        with fastconv.threads(t):
            for hw in ((40, 44), (9, 11), (60, 70), (40, 44)):
                x = rand_data(rng, (2, 3) + hw, np.float32)
                y, idx = fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
                go = int_data(rng, y.shape, np.float32, -3, 3)
                bad = idx.copy()
                bad[1, 2, -1, -1] = -7
                with pytest.raises(ValueError, match="indices"):
                    fastconv.max_pool2d_backward(go, bad, x.shape, 3, stride=2, padding=1)
                gx = fastconv.max_pool2d_backward(go, idx, x.shape, 3, stride=2, padding=1)
                assert_same(gx, R.max_pool2d_backward(go, idx, x.shape), f"{hw} threads={t}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_narrow_planes(layout):
    """Tall planes one or two columns wide, one channel (NHWC with C = 1 runs as NCHW)."""
    rng = seeded_rng("narrow", layout)
    for w in (1, 2):
        x = _special(rng, x_shape(2, 1, 300, w, layout), np.float32)
        for g in ((3, 2, 1, 1, False), ((3, 1), (2, 1), (1, 0), 1, True), (1, 1, 0, 1, False)):
            assert _check_max(x, g, layout, np.float32, rng)


# ------------------------------------------------------------------------------------------------
# global average: the plane-sum kernels (NCHW: 8 planes at once, masked plane tails; NHWC:
# channel vectors with an overlapping last one) and the argument fast path
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_global_avg_plane_sizes(layout, dtype):
    rng = seeded_rng("global", layout, np.dtype(dtype).name)
    for (h, w) in ((1, 1), (1, 7), (2, 4), (3, 3), (1, 9), (4, 4), (3, 5), (7, 7), (5, 13)):
        for n, c in ((1, 1), (1, 7), (2, 8), (1, 9), (3, 17), (2, 33)):
            x = rand_data(rng, x_shape(n, c, h, w, layout), dtype)
            x.reshape(-1)[::7] = -0.0
            got = fastconv.global_avg_pool2d(x, layout=layout)
            assert_close(got, R.global_avg_pool2d(x, layout),
                         R.global_avg_pool2d(np.abs(x), layout), dtype, f"{h}x{w} n={n} c={c}")
            _same_on_every_isa(lambda: fastconv.global_avg_pool2d(x, layout=layout))
            with fastconv.threads(2):
                assert_bitwise(fastconv.global_avg_pool2d(x, layout=layout), got, "2 threads")
            go = rand_data(rng, got.shape, dtype)
            gx = fastconv.global_avg_pool2d_backward(go, x.shape, layout=layout)
            assert_close(gx, R.global_avg_pool2d_backward(go, x.shape, layout),
                         R.global_avg_pool2d_backward(np.abs(go), x.shape, layout), dtype)


def test_global_avg_exact_sums():
    """Integer data over power-of-two planes: every sum and division is exact, so the mean is the
    reference's to the last bit."""
    rng = seeded_rng("global-exact")
    for layout in LAYOUTS:
        x = int_data(rng, x_shape(3, 21, 4, 8, layout), np.float32, -8, 8)
        assert_same(fastconv.global_avg_pool2d(x, layout=layout),
                    R.global_avg_pool2d(x, layout).astype(np.float32))


def test_global_avg_fast_path_falls_back():
    """Inputs outside the fast path (3-D, non-contiguous, big-endian, bad layout, mismatched
    grad_out) get the general path's results and errors."""
    rng = seeded_rng("global-fallback")
    x = rand_data(rng, (2, 5, 4, 6), np.float32)
    ref = fastconv.global_avg_pool2d(x)
    assert_bitwise(fastconv.global_avg_pool2d(x[0])[None], ref[:1])
    assert_bitwise(fastconv.global_avg_pool2d(np.asfortranarray(x)), ref)
    assert_bitwise(fastconv.global_avg_pool2d(x.astype(">f4")), ref)
    with pytest.raises(ValueError):
        fastconv.global_avg_pool2d(x, layout="NWHC")
    with pytest.raises(TypeError):
        fastconv.global_avg_pool2d(x, layout=0)
    with pytest.raises(ValueError):
        fastconv.global_avg_pool2d_backward(ref, (2, 5, 4, 7, 1))
    with pytest.raises(ValueError):
        fastconv.global_avg_pool2d_backward(ref[:, :4], (2, 5, 4, 6))
    with pytest.raises(ValueError):
        fastconv.global_avg_pool2d_backward(ref, (2, 5, 0, 6))
    assert_bitwise(fastconv.global_avg_pool2d_backward(ref, [2, 5, 4, 6]),
                   fastconv.global_avg_pool2d_backward(ref, (2, 5, 4, 6)))


# ------------------------------------------------------------------------------------------------
# avg forward: the NHWC channel kernel, power-of-two divisors as exact reciprocal products,
# non-temporal output rows
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("g", AVG_GEOMS, ids=_gid)
def test_avg_nhwc_channels(g, dtype):
    k, s, p, cm, cip, div = g
    kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip, divisor_override=div,
              layout="NHWC")
    rng = seeded_rng("avg-nhwc-channels", _gid(g), np.dtype(dtype).name)
    for c in (1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40):
        x = rand_data(rng, (2, 5, 7, c), dtype)
        x.reshape(-1)[::5] = -0.0
        got = fastconv.avg_pool2d(x, k, **kw)
        assert_close(got, R.avg_pool2d(x, k, **kw), R.avg_pool2d(np.abs(x), k, **kw), dtype,
                     f"c={c}")
        _same_on_every_isa(lambda: fastconv.avg_pool2d(x, k, **kw))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_avg_divisors_exact(layout):
    """Integer data whose window sums are exact: power-of-two divisors (multiplied by their
    reciprocal) and others (divided) both give the reference's quotient to the last bit, also
    for subnormal results."""
    rng = seeded_rng("avg-div", layout)
    x = int_data(rng, x_shape(2, 19, 9, 40, layout), np.float32, -6, 6)
    for scale in (1.0, 2.0 ** -130):  # the second makes most quotients subnormal
        xs = (x * np.float32(scale)).astype(np.float32)
        for k, s, p, div in ((2, 2, 0, None), (2, 2, 0, 3), (2, 2, 0, 8), (3, 2, 1, 16),
                             (3, 2, 1, None), (2, 1, 0, 5)):
            kw = dict(stride=s, padding=p, divisor_override=div, layout=layout)
            ref = R.avg_pool2d(xs.astype(np.float64), k, **kw).astype(np.float32)
            assert_same(fastconv.avg_pool2d(xs, k, **kw), ref, f"{k} {s} {p} {div} {scale}")


def test_avg_2x2_long_rows():
    """NCHW 2x2 stride-2 rows are summed in chunks of 32 vectors (two row passes through
    scratch): widths around the chunk ends of every vector width, odd widths, padding and
    ceil-mode edges, -0.0 sums; exact against the reference and bitwise against the scalar ISA."""
    rng = seeded_rng("avg-2x2-long")
    for w in (15, 16, 17, 255, 256, 257, 510, 512, 514, 530, 1022, 1024, 1026, 1041, 2100):
        x = int_data(rng, (1, 2, 5, w), np.float32, -6, 6)
        x.reshape(-1)[::3] = -0.0
        for p, cm, cip in ((0, False, True), (1, True, False), (0, True, True)):
            kw = dict(stride=2, padding=p, ceil_mode=cm, count_include_pad=cip)
            ref = R.avg_pool2d(x.astype(np.float64), 2, **kw).astype(np.float32)
            got = fastconv.avg_pool2d(x, 2, **kw)
            assert_same(got, ref, f"w={w} p={p} cm={cm}")
            assert (np.signbit(got) == np.signbit(ref)).all(), f"sign of zero w={w}"
            _same_on_every_isa(lambda: fastconv.avg_pool2d(x, 2, **kw))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_avg_large_output_streamed(layout):
    """An avg forward output above the non-temporal threshold (8 MiB) equals, image by image,
    the in-place computation on one image, at 1 and 2 threads."""
    rng = seeded_rng("avg-large", layout)
    x = rand_data(rng, x_shape(3, 64, 224, 224, layout), np.float32)  # output 9.6 MB
    for k, s in ((2, 2), (3, 2)):
        res = []
        for t in (1, 2):
            with fastconv.threads(t):
                res.append(fastconv.avg_pool2d(x, k, stride=s, layout=layout))
        assert_bitwise(res[0], res[1], "threads")
        for n in range(x.shape[0]):
            assert_bitwise(fastconv.avg_pool2d(x[n:n + 1], k, stride=s, layout=layout),
                           res[0][n:n + 1])
    assert_close(res[0][:1], R.avg_pool2d(x[:1], 3, stride=2, layout=layout),
                 R.avg_pool2d(np.abs(x[:1]), 3, stride=2, layout=layout), np.float32)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k, st", [(2, 2), (3, 3), (2, 3)])
def test_backward_tiled_rows_written_directly(layout, k, st):
    """Windows that never overlap (stride >= kernel) have their grad_x rows written straight out
    (avg backward; max backward's gather kernels where the windows tile the rows) instead of
    through zeroed scratch rows. Heights and widths that leave rows / columns outside every
    window (which must still be zero: stride 3 leaves gaps between windows), widths around the
    vector width, -0.0 gradients, ties, and a batch above the non-temporal threshold; exact
    against the reference, bitwise across 1 and 2 threads."""
    rng = seeded_rng("tiled", layout, k, st)
    shapes = [(2, 3, 2 * k + 1, 8 * k), (1, 16, 3 * k, 16 * k + 1), (2, 9, k, 24 * k),
              (1, 8, 4 * k, 4 * k), (24, 64, 4 * st, 56 * st)]  # the last: grad_x > 8 MiB
    for n, c, h, w in shapes:
        x = int_data(rng, x_shape(n, c, h, w, layout), np.float32, -2, 2)
        y, idx = R.max_pool2d(x, k, stride=st, layout=layout)
        go = int_data(rng, y.shape, np.float32, -3, 3)
        go.reshape(-1)[::5] = -0.0
        res, old = [], fastconv.get_num_threads()
        for t in (1, 2):
            fastconv.set_num_threads(t)
            try:
                _, gidx = fastconv.max_pool2d(x, k, stride=st, return_indices=True, layout=layout)
                assert_same(gidx, idx, f"indices {x.shape}")
                # freed NaN blocks of grad_x's size: the allocator tends to hand them back, so
                # rows outside every window are seen to be written, not found zero
                junk = np.full(x.shape, np.nan, np.float32)
                del junk
                gm = fastconv.max_pool2d_backward(go, gidx, x.shape, k, stride=st, layout=layout)
                junk = np.full(x.shape, np.nan, np.float32)
                del junk
                res.append((gm, fastconv.avg_pool2d_backward(go, x.shape, k, stride=st,
                                                             layout=layout)))
            finally:
                fastconv.set_num_threads(old)
        gx, ga = res[0]
        ref = R.max_pool2d_backward(go, idx, x.shape, layout)
        assert_same(gx, ref, f"max backward {x.shape}")
        assert (np.signbit(gx) == np.signbit(np.asarray(ref, np.float32))).all(), "sign of zero"
        aref = R.avg_pool2d_backward(go, x.shape, k, stride=st, layout=layout)
        assert_close(ga, aref, R.avg_pool2d_backward(np.abs(go), x.shape, k, stride=st,
                                                     layout=layout), np.float32)
        assert (np.signbit(ga) == np.signbit(np.asarray(aref, np.float32) + np.float32(0))).all()
        assert_bitwise(res[1][0], gx, f"max threads {x.shape}")
        assert_bitwise(res[1][1], ga, f"avg threads {x.shape}")
