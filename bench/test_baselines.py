"""The NumPy baseline (bench.baselines) against direct loops in float64, and against torch.

    pytest bench/test_baselines.py
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench import baselines as B
from bench import candidates as C
from bench import compare, shapes
from bench.runtime import torch

# (N, C, K, H, W, k, stride, pad, dilation, groups)
CONV_SMALL = [
    (2, 3, 4, 7, 6, 3, 1, 1, 1, 1),
    (2, 4, 6, 9, 8, 3, 2, 1, 1, 2),
    (1, 6, 6, 10, 11, 3, 1, 2, 2, 6),      # depthwise, dilated
    (3, 1, 2, 8, 8, 5, 1, 2, 1, 1),        # LeNet-like
    (2, 4, 4, 5, 5, 1, 1, 0, 1, 1),        # 1x1
    (1, 3, 5, 11, 9, 4, 3, 0, 1, 1),       # stride leaves rows uncovered
    (2, 2, 3, 6, 7, 2, 2, 1, 2, 1),
]


def _conv_direct(x, w, s, p, d, g):
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    ho = (h + 2 * p - d * (kh - 1) - 1) // s + 1
    wo = (wd + 2 * p - d * (kw - 1) - 1) // s + 1
    y = np.zeros((n, k, ho, wo))
    for b, o, i, j in itertools.product(range(n), range(k), range(ho), range(wo)):
        gi = o // (k // g)
        acc = 0.0
        for ci, a, bb in itertools.product(range(cg), range(kh), range(kw)):
            hh, ww = i * s - p + a * d, j * s - p + bb * d
            if 0 <= hh < h and 0 <= ww < wd:
                acc += float(x[b, gi * cg + ci, hh, ww]) * float(w[o, ci, a, bb])
        y[b, o, i, j] = acc
    return y


def _conv_grads_direct(dy, x, w, s, p, d, g):
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    _, _, ho, wo = dy.shape
    dx = np.zeros(x.shape)
    dw = np.zeros(w.shape)
    for b, o, i, j in itertools.product(range(n), range(k), range(ho), range(wo)):
        gi = o // (k // g)
        for ci, a, bb in itertools.product(range(cg), range(kh), range(kw)):
            hh, ww = i * s - p + a * d, j * s - p + bb * d
            if 0 <= hh < h and 0 <= ww < wd:
                dx[b, gi * cg + ci, hh, ww] += float(dy[b, o, i, j]) * float(w[o, ci, a, bb])
                dw[o, ci, a, bb] += float(dy[b, o, i, j]) * float(x[b, gi * cg + ci, hh, ww])
    return dx, dw


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("cfg", CONV_SMALL, ids=lambda c: "x".join(map(str, c)))
def test_conv_against_direct_loops(cfg):
    n, c, k, h, w_, ks, s, p, d, g = cfg
    rng = np.random.default_rng(1)
    x, w = _rand(rng, (n, c, h, w_)), _rand(rng, (k, c // g, ks, ks))
    kw = dict(stride=s, padding=p, dilation=d, groups=g)
    y = B.conv2d_forward(x, w, **kw)
    y_ref = _conv_direct(x, w, s, p, d, g)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    dy = _rand(rng, y.shape)
    dx_ref, dw_ref = _conv_grads_direct(dy, x, w, s, p, d, g)
    dx = B.conv2d_input_grad(dy, w, x.shape, **kw)
    dw = B.conv2d_weight_grad(dy, x, w.shape, **kw)
    assert dx.shape == x.shape and dw.shape == w.shape
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=1e-5)
    b = _rand(rng, (k,))
    np.testing.assert_allclose(B.conv2d_forward(x, w, b, **kw), y_ref + b[None, :, None, None],
                               rtol=1e-5, atol=1e-5)
    gx, gw, gb = B.conv2d_backward(dy, x, w, **kw)
    np.testing.assert_allclose(gb, dy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5,
                               atol=1e-5)


def test_conv_integer_data_exact():
    """Small integers: every product and sum is exact in float32, so results match exactly."""
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, (2, 4, 9, 9)).astype(np.float32)
    w = rng.integers(-3, 4, (6, 2, 3, 3)).astype(np.float32)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    y = B.conv2d_forward(x, w, **kw)
    assert np.array_equal(y, _conv_direct(x, w, 2, 1, 1, 2))
    dy = rng.integers(-3, 4, y.shape).astype(np.float32)
    dx_ref, dw_ref = _conv_grads_direct(dy, x, w, 2, 1, 1, 2)
    assert np.array_equal(B.conv2d_input_grad(dy, w, x.shape, **kw), dx_ref)
    assert np.array_equal(B.conv2d_weight_grad(dy, x, w.shape, **kw), dw_ref)


def test_im2col_col2im_adjoint():
    """<im2col(x), c> == <x, col2im(c)> for random x and c."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 7))
    cols = B.im2col(x, 3, 2, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    c = rng.standard_normal(cols.shape)
    back = B.col2im(c, x.shape, 3, 2, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    assert np.isclose((cols * c).sum(), (x * back).sum())


# ------------------------------------------------------------------------------------ pools
def _pool_direct(x, k, s, p, kind):
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    idx = np.zeros((n, c, ho, wo), np.int64)
    for b, ch, i, j in itertools.product(range(n), range(c), range(ho), range(wo)):
        best, arg, acc = -np.inf, -1, 0.0
        for a, bb in itertools.product(range(k), range(k)):
            hh, ww = i * s - p + a, j * s - p + bb
            if 0 <= hh < h and 0 <= ww < w:
                v = float(x[b, ch, hh, ww])
                acc += v
                if v > best:
                    best, arg = v, hh * w + ww
        out[b, ch, i, j] = best if kind == "max" else acc / (k * k)
        idx[b, ch, i, j] = arg
    return out, idx


POOL_SMALL = [(3, 2, 1), (2, 2, 0), (3, 1, 1), (2, 1, 0), (3, 3, 0), (4, 2, 2)]


@pytest.mark.parametrize("k,s,p", POOL_SMALL)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_against_direct_loops(k, s, p, ties):
    rng = np.random.default_rng(4)
    shape = (2, 3, 9, 8) if (k, s) != (2, 2) else (2, 3, 8, 10)
    x = (rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    out, cache = B.max_pool2d_forward(x, k, s, p)
    out_ref, idx_ref = _pool_direct(x, k, s, p, "max")
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(B.max_pool2d_indices(cache), idx_ref)   # first max wins
    dy = _rand(rng, out.shape)
    dx_ref = np.zeros(x.shape)
    flat = dx_ref.reshape(x.shape[0], x.shape[1], -1)
    for b, ch, i, j in itertools.product(*map(range, out.shape)):
        flat[b, ch, idx_ref[b, ch, i, j]] += dy[b, ch, i, j]
    np.testing.assert_allclose(B.max_pool2d_backward(dy, cache), dx_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k,s,p", POOL_SMALL)
def test_avg_pool_against_direct_loops(k, s, p):
    rng = np.random.default_rng(5)
    shape = (2, 3, 9, 8) if (k, s) != (2, 2) else (2, 3, 8, 10)
    x = _rand(rng, shape)
    out = B.avg_pool2d_forward(x, k, s, p)
    out_ref, _ = _pool_direct(x, k, s, p, "avg")
    np.testing.assert_allclose(out, out_ref, rtol=1e-5, atol=1e-6)
    dy = _rand(rng, out.shape)
    # adjoint: <avg(x), dy> == <x, avg_backward(dy)>
    dx = B.avg_pool2d_backward(dy, x.shape, k, s, p)
    assert dx.shape == x.shape
    xr = rng.standard_normal(shape)
    lhs = (_pool_direct(xr, k, s, p, "avg")[0] * dy).sum()
    assert np.isclose(lhs, (xr * dx).sum(), rtol=1e-5)


def test_global_avg():
    rng = np.random.default_rng(6)
    x = _rand(rng, (2, 5, 7, 6))
    y = B.global_avg_pool2d_forward(x)
    assert y.shape == (2, 5, 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-5)
    dy = _rand(rng, y.shape)
    dx = B.global_avg_pool2d_backward(dy, x.shape)
    np.testing.assert_allclose(dx, np.broadcast_to(dy / 42.0, x.shape), rtol=1e-6)


# ------------------------------------------------------------------------------------ torch
needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


@needs_torch
@pytest.mark.parametrize("cfg", CONV_SMALL, ids=lambda c: "x".join(map(str, c)))
def test_conv_against_torch(cfg):
    F = torch.nn.functional
    n, c, k, h, w_, ks, s, p, d, g = cfg
    rng = np.random.default_rng(7)
    x, w = _rand(rng, (n, c, h, w_)), _rand(rng, (k, c // g, ks, ks))
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    yt = F.conv2d(xt, wt, None, s, p, d, g)
    dy = _rand(rng, tuple(yt.shape))
    yt.backward(torch.from_numpy(dy))
    kw = dict(stride=s, padding=p, dilation=d, groups=g)
    np.testing.assert_allclose(B.conv2d_forward(x, w, **kw), yt.detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(B.conv2d_input_grad(dy, w, x.shape, **kw), xt.grad.numpy(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(B.conv2d_weight_grad(dy, x, w.shape, **kw), wt.grad.numpy(),
                               rtol=1e-4, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("k,s,p", POOL_SMALL)
def test_pools_against_torch(k, s, p):
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    x = _rand(rng, (2, 3, 10, 9))
    xt = torch.from_numpy(x)
    yt, it = F.max_pool2d(xt, k, s, p, return_indices=True)
    out, cache = B.max_pool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(out, yt.numpy())
    np.testing.assert_array_equal(B.max_pool2d_indices(cache), it.numpy())
    np.testing.assert_allclose(B.avg_pool2d_forward(x, k, s, p), F.avg_pool2d(xt, k, s, p).numpy(),
                               rtol=1e-5, atol=1e-6)
    dy = _rand(rng, out.shape)
    dyt = torch.from_numpy(dy)
    A = torch.ops.aten
    np.testing.assert_allclose(
        B.max_pool2d_backward(dy, cache),
        A.max_pool2d_with_indices_backward(dyt, xt, [k, k], [s, s], [p, p], [1, 1], False,
                                           it).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        B.avg_pool2d_backward(dy, x.shape, k, s, p),
        A.avg_pool2d_backward(dyt, xt, [k, k], [s, s], [p, p], False, True, None).numpy(),
        rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------ suite
def test_suite_matches_anchors():
    assert len(shapes.CONV_LAYERS) == 12 and len(shapes.POOL_CASES) == 4
    for case in shapes.CONV_LAYERS:
        want = shapes.ANCHOR_GFLOP[case.name]
        assert abs(case.gflop - want) <= 0.006 * want + 5e-5, (case.name, case.gflop, want)
    mp = {c.name: c for c in shapes.POOL_CASES}
    assert mp["maxpool3x3s2p1_64@112"].y_shape == (8, 64, 56, 56)
    # ANCHORS: torch CL 1t 4.64 ms <-> 6.9 GB/s for this case
    assert abs(mp["maxpool3x3s2p1_64@112"].gbytes / 4.64e-3 - 6.9) < 0.1
    assert mp["globalavg_512@7"].y_shape == (8, 512, 1, 1)
    quick = shapes.conv_layers(quick=True)
    assert [c.N for c in quick][:3] == [16, 16, 2]


def test_check_rejects_wrong_results():
    case = shapes.ConvCase("tiny", 1, 2, 3, 5, 5, 3, 1, 1)
    ref = np.ones((1, 3, 5, 5), np.float32)
    assert C.check(case, "fwd", ref + 1e-6, ref) <= 1e-4
    with pytest.raises(C.MismatchError):
        C.check(case, "fwd", ref * 1.01, ref)
    with pytest.raises(C.MismatchError):
        C.check(case, "fwd", ref[:, :2], ref)


@pytest.mark.parametrize("case", [
    shapes.ConvCase("tiny_dw", 2, 4, 4, 9, 9, 3, 1, 1, groups=4),
    shapes.ConvCase("tiny_s2", 2, 3, 5, 10, 10, 3, 2, 1, dilation=1),
    shapes.PoolCase("tiny_max", "max", 2, 3, 10, 10, 3, 2, 1),
    shapes.PoolCase("tiny_max2", "max", 2, 3, 10, 10, 2, 2, 0),
    shapes.PoolCase("tiny_avg", "avg", 2, 3, 10, 10, 2, 2, 0),
    shapes.PoolCase("tiny_gap", "global", 2, 3, 7, 7),
], ids=lambda c: c.name)
def test_compare_runs_every_available_candidate(case):
    """compare.run_case on tiny cases: every available candidate checks out and gets a time."""
    inputs = C.make_inputs(case)
    for op in C.ops_for(case):
        row = compare.run_case(case, op, 1, C.available_candidates(), inputs, repeats=3,
                               min_sample_s=0.0)
        assert not row.errors, row.errors
        assert all(t and t > 0 for t in row.ms.values())
        assert row.fastest_peer() in C.PEERS
    assert "numpy ms" in compare.format_table([row])
    assert compare.format_markdown([row]).startswith("| case")


def test_measure_interleaves_and_takes_medians():
    order = []
    ticks = iter(range(10_000))
    calls = {n: (lambda n=n: order.append(n)) for n in "abc"}
    res = compare.measure(calls, repeats=7, warmup=1, min_sample_s=0.0,
                          timer=lambda: float(next(ticks)))
    assert set(res) == set("abc") and all(len(r["samples"]) == 7 for r in res.values())
    timed = order[3:]                         # after the 3 warm-up calls
    assert timed[:3] == list("abc") and timed[3:6] == list("bca")


def test_check_max_pool_indices():
    """Indices must match exactly, except at a tie (both name equal input values)."""
    case = shapes.PoolCase("tiny_max", "max", 1, 1, 2, 4, 2, 2, 0)
    x = np.array([[[[1, 5, 2, 3], [5, 0, 4, 1]]]], np.float32)     # window 0 ties: 5 at 1 and 4
    out, cache = B.max_pool2d_forward(x, 2, 2, 0)
    idx = B.max_pool2d_indices(cache)
    assert idx.tolist() == [[[[1, 6]]]]                              # first maximum wins
    inputs = {"x": x}
    C.check(case, "fwd", (out, idx), (out, idx), inputs)
    C.check(case, "fwd", (out, np.array([[[[4, 6]]]])), (out, idx), inputs)   # the tie
    with pytest.raises(C.MismatchError):
        C.check(case, "fwd", (out, np.array([[[[0, 6]]]])), (out, idx), inputs)
    with pytest.raises(C.MismatchError):
        C.check(case, "fwd", (out, np.array([[[[1, 99]]]])), (out, idx), inputs)


def test_measure_settles_after_named_candidates(monkeypatch):
    """settle_after pauses (untimed) once before the rounds and after each named sample."""
    sleeps = []
    monkeypatch.setattr(compare.time, "sleep", lambda s: sleeps.append(s))
    ticks = iter(range(10_000))
    calls = {n: (lambda: None) for n in ("numpy", "fastconv")}
    compare.measure(calls, repeats=3, warmup=1, min_sample_s=0.0, gap_s=0.0,
                    timer=lambda: float(next(ticks)), settle_after={"numpy": 0.5})
    assert sleeps == [0.5] * 4          # once up front, then after each of the 3 numpy samples
    sleeps.clear()
    compare.measure(calls, repeats=3, warmup=1, min_sample_s=0.0, gap_s=0.0,
                    timer=lambda: float(next(ticks)))
    assert sleeps == []
