"""The NumPy reference (tests/reference.py) checked against PyTorch directly.

Runs without fastconv (only numpy + torch), so the reference can be trusted before the extension
builds.  Everything in float64; tolerance 1e-12 relative to the scale of the result.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import configs as C  # noqa: E402
import reference as R  # noqa: E402
import torch_ref as T  # noqa: E402
from conftest import assert_close, assert_same, int_data, seeded_rng  # noqa: E402

F64 = np.float64


def close64(a, b, what=""):
    scale = max(1.0, float(np.max(np.abs(b))) if np.size(b) else 1.0)
    assert_close(a, b, scale, what=what)


def _f64(cfg):
    return dict(cfg, dtype="float64")


@pytest.mark.parametrize("seed", range(70))
def test_conv2d_and_grads(seed):
    cfg = _f64(C.conv_config(1000 + seed, big_channels=seed % 10 == 9))
    rng = seeded_rng("ref-conv", seed)
    x, w, b = C.conv_arrays(cfg, rng)
    kw = C.conv_kwargs(cfg)
    y = R.conv2d(x, w, b, **kw)
    close64(y, T.conv2d(x, w, b, **kw), "forward")
    go = rng.standard_normal(y.shape)
    gx, gw, gb = R.conv2d_grads(go, x.shape, w.shape, x=x, weight=w, **kw)
    tx, tw, tb = T.conv2d_backward(go, x, w, **kw)
    close64(gx, tx, "grad_x")
    close64(gw, tw, "grad_w")
    close64(gb, tb, "grad_b")


@pytest.mark.parametrize("seed", range(40))
def test_conv_transpose2d_and_grads(seed):
    cfg = _f64(C.transposed_config(2000 + seed))
    rng = seeded_rng("ref-convT", seed)
    x, w, b = C.conv_arrays(cfg, rng, transposed=True)
    kw = C.transposed_kwargs(cfg)
    y = R.conv_transpose2d(x, w, b, **kw)
    close64(y, T.conv_transpose2d(x, w, b, **kw), "forward")
    go = rng.standard_normal(y.shape)
    gx, gw, gb = R.conv_transpose2d_grads(go, x, w, **kw)
    tx, tw, tb = T.conv_transpose2d_backward(go, x, w, **kw)
    close64(gx, tx, "grad_x")
    close64(gw, tw, "grad_w")
    close64(gb, tb, "grad_b")


@pytest.mark.parametrize("seed", range(50))
def test_max_pool(seed):
    cfg = _f64(C.pool_config(3000 + seed, "max"))
    rng = seeded_rng("ref-max", seed)
    x = C.pool_input(cfg, rng)
    if seed % 3 == 0:  # ties and NaN
        x = np.round(x)
        x.flat[rng.integers(0, max(x.size, 1), size=min(x.size, 3))] = np.nan
    kw = C.pool_kwargs(cfg)
    k = cfg["kernel_size"]
    y, idx = R.max_pool2d(x, k, **kw)
    ty, tidx = T.max_pool2d(x, k, **kw)
    assert_same(y, ty, "values")
    assert_same(idx, tidx, "indices")
    go = rng.standard_normal(y.shape)
    gx = R.max_pool2d_backward(go, idx, x.shape, layout=cfg["layout"])
    close64(gx, T.max_pool2d_backward(go, x, k, **kw), "grad_x")


@pytest.mark.parametrize("seed", range(50))
def test_avg_pool(seed):
    cfg = _f64(C.pool_config(4000 + seed, "avg"))
    rng = seeded_rng("ref-avg", seed)
    x = C.pool_input(cfg, rng)
    kw = C.pool_kwargs(cfg)
    k = cfg["kernel_size"]
    y = R.avg_pool2d(x, k, **kw)
    close64(y, T.avg_pool2d(x, k, **kw), "forward")
    go = rng.standard_normal(y.shape)
    close64(R.avg_pool2d_backward(go, x.shape, k, **kw),
            T.avg_pool2d_backward(go, x.shape, k, **kw), "grad_x")


@pytest.mark.parametrize("op", ["adaptive_avg", "adaptive_max", "global_avg"])
@pytest.mark.parametrize("seed", range(12))
def test_adaptive(op, seed):
    cfg = _f64(C.adaptive_config(5000 + seed, op))
    rng = seeded_rng("ref-adaptive", op, seed)
    x = C.pool_input(cfg, rng)
    lay = cfg["layout"]
    if op == "adaptive_avg":
        y = R.adaptive_avg_pool2d(x, cfg["output_size"], lay)
        close64(y, T.adaptive_avg_pool2d(x, cfg["output_size"], lay))
        go = rng.standard_normal(y.shape)
        close64(R.adaptive_avg_pool2d_backward(go, x.shape, lay),
                T.adaptive_avg_pool2d_backward(go, x.shape, lay))
    elif op == "adaptive_max":
        if seed % 2:
            x = np.round(x)
        y, idx = R.adaptive_max_pool2d(x, cfg["output_size"], lay)
        ty, tidx = T.adaptive_max_pool2d(x, cfg["output_size"], lay)
        assert_same(y, ty)
        assert_same(idx, tidx)
        go = rng.standard_normal(y.shape)
        close64(R.adaptive_max_pool2d_backward(go, idx, x.shape, lay),
                T.adaptive_max_pool2d_backward(go, x, lay))
    else:
        y = R.global_avg_pool2d(x, lay)
        close64(y, T.global_avg_pool2d(x, lay))
        go = rng.standard_normal(y.shape)
        close64(R.global_avg_pool2d_backward(go, x.shape, lay),
                T.global_avg_pool2d_backward(go, x.shape, lay))


def test_avg_pool_ceil_mode_values():
    x = np.arange(49, dtype=F64).reshape(1, 1, 7, 7)
    want = [[4, 7, 9.5], [25, 28, 30.5], [42.5, 45.5, 48]]
    assert_same(R.avg_pool2d(x, 2, stride=3, ceil_mode=True)[0, 0], np.array(want))
    assert_same(T.avg_pool2d(x, 2, stride=3, ceil_mode=True)[0, 0], np.array(want))


def test_max_pool_nan_tie_inf_rules():
    x = np.array([[[[1, 5, 5, np.nan],
                    [5, np.nan, 2, 0],
                    [-np.inf, -np.inf, 3, 3],
                    [-np.inf, -np.inf, 3, 3]]]])
    y, idx = R.max_pool2d(x, 2)
    assert_same(y, [[[[np.nan, np.nan], [-np.inf, 3]]]])
    assert_same(idx, [[[[5, 3], [8, 10]]]])
    ty, tidx = T.max_pool2d(x, 2)
    assert_same(y, ty)
    assert_same(idx, tidx)


def test_integer_data_is_exact_in_torch_float32():
    """The premise of the exact comparisons: integer data gives exact float32 sums in torch too."""
    rng = seeded_rng("int-exact")
    x = int_data(rng, (2, 6, 9, 9), np.float32)
    w = int_data(rng, (8, 3, 3, 3), np.float32)
    y = T.conv2d(x, w, None, padding=1, groups=2)
    assert_same(y, R.conv2d(x, w, padding=1, groups=2).astype(np.float32))


@pytest.mark.parametrize("h,k,s,d", [(7, 3, 2, 1), (8, 3, 2, 2), (1, 4, 3, 1), (10, 1, 4, 1),
                                     (5, 5, 1, 1), (6, 2, 5, 3)])
def test_same_padding_rule(h, k, s, d):
    pt, pb, pl, pr = R.conv_pads("same", (h, h), (k, k), s, d)
    assert pb - pt in (0, 1)
    out = (h + pt + pb - d * (k - 1) - 1) // s + 1
    assert out == -(-h // s)
