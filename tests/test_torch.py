"""fastconv vs PyTorch (torch.nn.functional, CPU) on >= 500 seeded random configurations, under
every ISA.

Covers both layouts, both dtypes, every conv padding form (int, pair, per-side, valid, same, full),
groups / depthwise, dilation, strides, ceil_mode, count_include_pad, divisor_override, unbatched
inputs and empty batches.  Tolerance (acceptance of issue 2): float32 |err| <= 1e-5 * max|ref|,
float64 |err| <= 1e-12 * max|ref|; integer-valued data exact for convolutions; max-pool values and
indices always equal.  Each case id is <op><number>; the failing configuration is printed in the
assertion message.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import configs as C  # noqa: E402
import fastconv  # noqa: E402
import torch_ref as T  # noqa: E402
from conftest import assert_same, int_data, rand_data, seeded_rng  # noqa: E402

pytestmark = pytest.mark.usefixtures("isa")

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

N_CONV, N_CONV_BIG, N_CONV_BWD = 195, 25, 70
N_CONVT, N_CONVT_BWD = 60, 40
N_MAX, N_MAX_BWD, N_AVG, N_AVG_BWD = 70, 25, 60, 25
N_AADAPT, N_MADAPT, N_GLOBAL = 15, 15, 10


def torch_close(got, ref, dtype, exact=False, what=""):
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != torch {ref.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {np.dtype(dtype)}"
    if exact:
        assert_same(got, ref, what)
        return
    if ref.size == 0:
        return
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    assert np.array_equal(np.isnan(g), np.isnan(r)), f"{what}: NaN pattern differs"
    fin = ~np.isnan(r)
    mx = float(np.max(np.abs(r[fin]))) if fin.any() else 0.0
    err = float(np.max(np.abs(g[fin] - r[fin]))) if fin.any() else 0.0
    tol = RTOL[np.dtype(dtype)] * mx
    assert err <= tol, f"{what}: max err {err:.3g} > {tol:.3g} (max|ref| {mx:.3g})"


def _gen(cfg):
    return int_data if cfg["integer"] else rand_data


def _cases(prefix, n, make):
    return [pytest.param(make(i), id=f"{prefix}{i}") for i in range(n)]


# ------------------------------------------------------------------------------------------------
# convolution
# ------------------------------------------------------------------------------------------------
CONV_CFGS = (_cases("conv", N_CONV, lambda i: C.conv_config(10_000 + i))
             + _cases("convbig", N_CONV_BIG, lambda i: C.conv_config(11_000 + i, True)))


@pytest.mark.parametrize("cfg", CONV_CFGS)
def test_conv2d(cfg):
    rng = seeded_rng("torch-conv", cfg["seed"])
    x, w, b = C.conv_arrays(cfg, rng)
    kw = C.conv_kwargs(cfg)
    ref = T.conv2d(x, w, b, **kw)
    got = fastconv.conv2d(x, w, b, **kw)
    torch_close(got, ref, cfg["dtype"], cfg["integer"], f"conv2d {C.describe(cfg)}")


@pytest.mark.parametrize("cfg", _cases("convbwd", N_CONV_BWD,
                                       lambda i: C.conv_config(12_000 + i, i % 7 == 6)))
def test_conv2d_backward(cfg):
    rng = seeded_rng("torch-conv-bwd", cfg["seed"])
    x, w, _ = C.conv_arrays(cfg, rng)
    kw = C.conv_kwargs(cfg)
    y_shape = T.conv2d(x, w, None, **kw).shape
    go = _gen(cfg)(rng, y_shape, np.dtype(cfg["dtype"]))
    rx, rw, rb = T.conv2d_backward(go, x, w, **kw)
    gx, gw, gb = fastconv.conv2d_backward(go, x, w, bias=True, **kw)
    d, ex, tag = cfg["dtype"], cfg["integer"], C.describe(cfg)
    torch_close(gx, rx, d, ex, f"grad_x {tag}")
    torch_close(gw, rw, d, ex, f"grad_w {tag}")
    torch_close(gb, rb, d, ex, f"grad_b {tag}")
    torch_close(fastconv.conv2d_input_grad(go, w, x.shape, **kw), rx, d, ex,
                f"conv2d_input_grad {tag}")
    torch_close(fastconv.conv2d_weight_grad(go, x, w.shape, **kw), rw, d, ex,
                f"conv2d_weight_grad {tag}")


@pytest.mark.parametrize("cfg", _cases("convT", N_CONVT, lambda i: C.transposed_config(13_000 + i)))
def test_conv_transpose2d(cfg):
    rng = seeded_rng("torch-convT", cfg["seed"])
    x, w, b = C.conv_arrays(cfg, rng, transposed=True)
    kw = C.transposed_kwargs(cfg)
    ref = T.conv_transpose2d(x, w, b, **kw)
    got = fastconv.conv_transpose2d(x, w, b, **kw)
    torch_close(got, ref, cfg["dtype"], cfg["integer"], f"conv_transpose2d {C.describe(cfg)}")


@pytest.mark.parametrize("cfg", _cases("convTbwd", N_CONVT_BWD,
                                       lambda i: C.transposed_config(14_000 + i)))
def test_conv_transpose2d_backward(cfg):
    rng = seeded_rng("torch-convT-bwd", cfg["seed"])
    x, w, _ = C.conv_arrays(cfg, rng, transposed=True)
    kw = C.transposed_kwargs(cfg)
    y_shape = T.conv_transpose2d(x, w, None, **kw).shape
    go = _gen(cfg)(rng, y_shape, np.dtype(cfg["dtype"]))
    rx, rw, rb = T.conv_transpose2d_backward(go, x, w, **kw)
    gx, gw, gb = fastconv.conv_transpose2d_backward(go, x, w, bias=True, **kw)
    d, ex, tag = cfg["dtype"], cfg["integer"], C.describe(cfg)
    torch_close(gx, rx, d, ex, f"grad_x {tag}")
    torch_close(gw, rw, d, ex, f"grad_w {tag}")
    torch_close(gb, rb, d, ex, f"grad_b {tag}")


# ------------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------------
def _pool_x(cfg, rng, nan=False):
    x = C.pool_input(cfg, rng)
    if cfg["integer"]:
        x = np.clip(x, -1, 1)  # many ties
    if nan and x.size:
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, max(1, flat.size // 10), replace=False)] = np.nan
    return x


@pytest.mark.parametrize("cfg", _cases("max", N_MAX, lambda i: C.pool_config(15_000 + i, "max")))
def test_max_pool2d(cfg):
    rng = seeded_rng("torch-max", cfg["seed"])
    x = _pool_x(cfg, rng, nan=cfg["seed"] % 4 == 0)
    kw = C.pool_kwargs(cfg)
    k = cfg["kernel_size"]
    ry, ridx = T.max_pool2d(x, k, **kw)
    y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
    tag = C.describe(cfg)
    torch_close(y, ry, cfg["dtype"], True, f"values {tag}")
    assert idx.dtype == np.int64
    assert_same(idx, ridx, f"indices {tag}")


@pytest.mark.parametrize("cfg", _cases("maxbwd", N_MAX_BWD,
                                       lambda i: C.pool_config(16_000 + i, "max")))
def test_max_pool2d_backward(cfg):
    rng = seeded_rng("torch-max-bwd", cfg["seed"])
    x = _pool_x(cfg, rng)
    kw = C.pool_kwargs(cfg)
    k = cfg["kernel_size"]
    y, idx = fastconv.max_pool2d(x, k, return_indices=True, **kw)
    go = _gen(cfg)(rng, y.shape, np.dtype(cfg["dtype"]))
    ref = T.max_pool2d_backward(go, x, k, **kw)
    got = fastconv.max_pool2d_backward(go, idx, x.shape, k, **kw)
    torch_close(got, ref, cfg["dtype"], cfg["integer"], f"max_pool2d_backward {C.describe(cfg)}")


@pytest.mark.parametrize("cfg", _cases("avg", N_AVG, lambda i: C.pool_config(17_000 + i, "avg")))
def test_avg_pool2d(cfg):
    rng = seeded_rng("torch-avg", cfg["seed"])
    x = C.pool_input(cfg, rng)
    kw = C.pool_kwargs(cfg)
    ref = T.avg_pool2d(x, cfg["kernel_size"], **kw)
    got = fastconv.avg_pool2d(x, cfg["kernel_size"], **kw)
    torch_close(got, ref, cfg["dtype"], False, f"avg_pool2d {C.describe(cfg)}")


@pytest.mark.parametrize("cfg", _cases("avgbwd", N_AVG_BWD,
                                       lambda i: C.pool_config(18_000 + i, "avg")))
def test_avg_pool2d_backward(cfg):
    rng = seeded_rng("torch-avg-bwd", cfg["seed"])
    x = C.pool_input(cfg, rng)
    kw = C.pool_kwargs(cfg)
    k = cfg["kernel_size"]
    y_shape = T.avg_pool2d(x, k, **kw).shape
    dt = np.dtype(cfg["dtype"])
    go = _gen(cfg)(rng, y_shape, dt)
    ref = T.avg_pool2d_backward(go, x.shape, k, dtype=dt, **kw)
    got = fastconv.avg_pool2d_backward(go, x.shape, k, **kw)
    torch_close(got, ref, dt, False, f"avg_pool2d_backward {C.describe(cfg)}")


@pytest.mark.parametrize("cfg", _cases("aavg", N_AADAPT,
                                       lambda i: C.adaptive_config(19_000 + i, "adaptive_avg")))
def test_adaptive_avg_pool2d(cfg):
    rng = seeded_rng("torch-aavg", cfg["seed"])
    x = C.pool_input(cfg, rng)
    lay, dt, tag = cfg["layout"], np.dtype(cfg["dtype"]), C.describe(cfg)
    ref = T.adaptive_avg_pool2d(x, cfg["output_size"], lay)
    torch_close(fastconv.adaptive_avg_pool2d(x, cfg["output_size"], layout=lay), ref, dt, False,
                f"forward {tag}")
    go = _gen(cfg)(rng, ref.shape, dt)
    torch_close(fastconv.adaptive_avg_pool2d_backward(go, x.shape, layout=lay),
                T.adaptive_avg_pool2d_backward(go, x.shape, lay, dt), dt, False,
                f"backward {tag}")


@pytest.mark.parametrize("cfg", _cases("amax", N_MADAPT,
                                       lambda i: C.adaptive_config(20_000 + i, "adaptive_max")))
def test_adaptive_max_pool2d(cfg):
    rng = seeded_rng("torch-amax", cfg["seed"])
    x = _pool_x(cfg, rng, nan=cfg["seed"] % 3 == 0)
    lay, dt, tag = cfg["layout"], np.dtype(cfg["dtype"]), C.describe(cfg)
    ry, ridx = T.adaptive_max_pool2d(x, cfg["output_size"], lay)
    y, idx = fastconv.adaptive_max_pool2d(x, cfg["output_size"], return_indices=True, layout=lay)
    torch_close(y, ry, dt, True, f"values {tag}")
    assert_same(idx, ridx, f"indices {tag}")
    go = _gen(cfg)(rng, ry.shape, dt)
    torch_close(fastconv.adaptive_max_pool2d_backward(go, idx, x.shape, layout=lay),
                T.adaptive_max_pool2d_backward(go, x, lay), dt, cfg["integer"], f"backward {tag}")


@pytest.mark.parametrize("cfg", _cases("gavg", N_GLOBAL,
                                       lambda i: C.adaptive_config(21_000 + i, "global_avg")))
def test_global_avg_pool2d(cfg):
    rng = seeded_rng("torch-gavg", cfg["seed"])
    x = C.pool_input(cfg, rng)
    lay, dt, tag = cfg["layout"], np.dtype(cfg["dtype"]), C.describe(cfg)
    ref = T.global_avg_pool2d(x, lay)
    torch_close(fastconv.global_avg_pool2d(x, layout=lay), ref, dt, False, f"forward {tag}")
    go = _gen(cfg)(rng, ref.shape, dt)
    torch_close(fastconv.global_avg_pool2d_backward(go, x.shape, layout=lay),
                T.global_avg_pool2d_backward(go, x.shape, lay, dt), dt, False, f"backward {tag}")


# ------------------------------------------------------------------------------------------------
# coverage of the sweep itself (acceptance: >= 500 configurations covering every feature)
# ------------------------------------------------------------------------------------------------
def test_sweep_coverage():
    conv = [p.values[0] for p in CONV_CFGS]
    total = (len(CONV_CFGS) + N_CONV_BWD + N_CONVT + N_CONVT_BWD + N_MAX + N_MAX_BWD + N_AVG
             + N_AVG_BWD + N_AADAPT + N_MADAPT + N_GLOBAL)
    assert total >= 500
    kinds = {type(c["padding"]).__name__ if not isinstance(c["padding"], str) else c["padding"]
             for c in conv}
    kinds |= {"sides" for c in conv if isinstance(c["padding"], tuple)
              and isinstance(c["padding"][0], tuple)}
    assert {"int", "tuple", "sides", "valid", "same", "full"} <= kinds, kinds
    assert {c["layout"] for c in conv} == {"NCHW", "NHWC"}
    assert {c["dtype"] for c in conv} == {"float32", "float64"}
    assert any(c["groups"] > 1 and c["groups"] == c["C"] for c in conv)       # depthwise
    assert any(1 < c["groups"] < c["C"] for c in conv)                        # grouped
    assert any(c["dilation"] != 1 for c in conv) and any(c["stride"] != 1 for c in conv)
    assert any(c["N"] == 0 for c in conv) and any(c["unbatched"] for c in conv)
    pools = [C.pool_config(15_000 + i, "max") for i in range(N_MAX)]
    pools += [C.pool_config(17_000 + i, "avg") for i in range(N_AVG)]
    assert any(p["ceil_mode"] for p in pools)
    assert {"same", "valid"} <= {p["padding"] for p in pools if isinstance(p["padding"], str)}
    assert any(p.get("dilation", 1) != 1 for p in pools)
    assert any(p.get("divisor_override") for p in pools)
    assert any(p.get("count_include_pad") is False and p["padding"] != 0 for p in pools)
