"""Small-channel direct convolution ("smallc") vs the float64 NumPy reference, under every ISA.

The algorithm is forced and forward (with and without bias), input gradient, weight gradient
and bias gradient are checked on LeNet-like layers and edge cases: odd widths and channel
counts (partial vectors, rows shorter than a vector, more lanes than two vectors), per-side
padding, vertical and horizontal strides (the forward pass falls back to another algorithm for
a horizontal stride > 1; both gradients run it), kernels wider than the image's interior,
batch 1 and several, both layouts and dtypes.

Integer-valued data must match exactly (every sum is exact); random data within
rtol * max(1, sum |terms|). Expectations come from tests/reference.py only.
"""
import functools

import numpy as np
import pytest

import fastconv
import fastconv._testing as FT
import reference as R
from conftest import (DTYPES, LAYOUTS, assert_bitwise, assert_same, check_conv_ops,
                      check_result, conv_case, int_data, seeded_rng, w_shape, x_shape)

pytestmark = pytest.mark.usefixtures("isa")

# (N, C, K, H, W, KH, KW, stride, padding)
CASES = [
    (3, 1, 6, 12, 12, 5, 5, 1, 2),                          # lenet_conv1-like
    (2, 6, 16, 9, 9, 5, 5, 1, 0),                           # lenet_conv2-like
    (1, 3, 5, 7, 11, 3, 3, 1, 1),                           # batch 1, odd everything
    (2, 2, 3, 6, 5, 3, 3, 1, 2),                            # padding == kernel - 1
    (2, 5, 20, 8, 13, 3, 2, 1, ((1, 2), (0, 1))),           # > 2 vectors of lanes, per-side pads
    (1, 4, 33, 5, 17, 2, 4, 1, ((0, 1), (3, 0))),           # 33 outputs: a lone partial lane
    (2, 3, 7, 11, 10, 3, 3, 2, 1),                          # stride 2 (forward falls back)
    (2, 6, 9, 10, 12, 5, 3, (2, 1), ((2, 0), (1, 1))),      # vertical stride only
    (1, 7, 2, 4, 30, 3, 5, 1, ((0, 0), (4, 4))),            # wide rows, 2 outputs
    (3, 1, 1, 6, 1, 3, 1, 1, ((1, 1), (0, 0))),             # width 1, one channel each
    (2, 9, 12, 3, 3, 5, 5, 1, 2),                           # kernel larger than the image
    (17, 2, 4, 5, 6, 3, 3, 1, 1),                           # 17 images: uneven reduction chunks
]


def _ids(cases):
    return ["-".join(str(v).replace(" ", "") for v in c) for c in cases]


def _kw(case, layout):
    n, c, k, h, w, kh, kw, s, p = case
    return dict(stride=s, padding=p, layout=layout)


@functools.lru_cache(maxsize=None)
def _setup(case, layout, dtype, integer):
    """Inputs, reference results and error scales for one case (cached across ISAs)."""
    n, c, k, h, w, kh, kw, s, p = case
    return conv_case(seeded_rng("smallc", case, layout, np.dtype(dtype).name, integer),
                     x_shape(n, c, h, w, layout), w_shape(k, c, kh, kw, layout), dtype, integer,
                     **_kw(case, layout))


_check = check_result


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_smallc_vs_reference(case, layout, dtype, integer):
    d = _setup(case, layout, dtype, integer)
    kw = _kw(case, layout)
    check_conv_ops(d, kw, dtype, integer, "smallc")


def _explain(d, kw, op):
    return fastconv.explain_conv2d(d["x"].shape, d["w"].shape, op=op, **kw)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_forced_smallc_runs_where_applicable(layout):
    """The forced algorithm is the one explained; a horizontal stride keeps the forward off it."""
    for case, fwd in [(CASES[1], True), (CASES[6], False), (CASES[7], True)]:
        d = _setup(case, layout, np.float32, True)
        kw = _kw(case, layout)
        with FT.conv_algorithm("smallc"):
            assert (_explain(d, kw, "forward")[0] == "smallc") == fwd
            assert _explain(d, kw, "input_grad")[0] == "smallc"
            assert _explain(d, kw, "weight_grad")[0] == "smallc"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_forced_smallc_falls_back(layout):
    """Forcing "smallc" on layers it cannot run (groups 2, dilation 2) still gives the reference."""
    rng = seeded_rng("smallc-fallback", layout)
    for cin, groups, dil in [(4, 2, 1), (2, 1, 2)]:
        x = int_data(rng, x_shape(2, cin, 7, 8, layout), np.float32)
        w = int_data(rng, w_shape(6, cin // groups, 3, 3, layout), np.float32)
        kw = dict(padding=1, groups=groups, dilation=dil, layout=layout)
        with FT.conv_algorithm("smallc"):
            for op in ("forward", "input_grad", "weight_grad"):
                assert fastconv.explain_conv2d(x.shape, w.shape, op=op, **kw)[0] != "smallc"
            y = fastconv.conv2d(x, w, **kw)
        assert_same(y, R.conv2d(x, w, **kw), "fallback forward")


LENET = [((64, 1, 28, 28), (6, 1, 5, 5), 2, ("forward", "input_grad", "weight_grad")),
         ((64, 6, 14, 14), (16, 6, 5, 5), 0, ("forward", "input_grad", "weight_grad"))]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("lenet", LENET, ids=["conv1", "conv2"])
def test_lenet_layers_choose_smallc(lenet, layout):
    """The LeNet layers select smallc automatically, and the result is the reference's."""
    (n, c, h, w), (k, _, kh, kw_), pad, ops = lenet
    rng = seeded_rng("smallc-lenet", lenet, layout)
    x = int_data(rng, x_shape(n, c, h, w, layout), np.float32)
    wt = int_data(rng, w_shape(k, c, kh, kw_, layout), np.float32)
    kw = dict(padding=pad, layout=layout)
    for op in ops:
        assert fastconv.explain_conv2d(x.shape, wt.shape, op=op, **kw)[0] == "smallc", op
    y = fastconv.conv2d(x, wt, **kw)
    assert_same(y, R.conv2d(x, wt, **kw), "forward")
    go = int_data(rng, y.shape, np.float32)
    gx, gw, _ = fastconv.conv2d_backward(go, x, wt, **kw)
    rgx, rgw, _ = R.conv2d_grads(go, x.shape, wt.shape, x=x, weight=wt, **kw)
    assert_same(gx, rgx, "input grad")
    assert_same(gw, rgw, "weight grad")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_smallc_bitwise_across_threads(layout, dtype):
    """Random data (rounding matters): 1 and 2 threads give bitwise identical results."""
    case = (37, 6, 16, 10, 11, 5, 5, 1, 1)
    d = _setup(case, layout, dtype, False)
    kw = _kw(case, layout)
    res = []
    with FT.conv_algorithm("smallc"):
        for n in (1, 2):
            with fastconv.threads(n):
                res.append((fastconv.conv2d(d["x"], d["w"], d["b"], **kw),
                            *fastconv.conv2d_backward(d["go"], d["x"], d["w"], **kw)))
    for a, b, what in zip(res[0], res[1], ("forward", "input grad", "weight grad", "bias")):
        assert_bitwise(a, b, what)
    _check(res[0][2], d["gw"], d["sw"], dtype, False, "weight grad")


# Weight gradients beyond the few-channel rule (up to 128 channels each way) take smallc too,
# within 1/4 of the im2col buffer: the threads are capped so their image copies fit (1 thread
# for the strided 64 -> 128 case, 2 for 64 -> 64 and 128 -> 128). The ResNet stem's shape at a
# smaller size; 48 outputs: three 16-lane vectors. NCHW images are transposed channels-last
# per image (4 -> 48 too: more than 32 outputs), except where the band driver takes the layer.
WIDE_WGRAD = [((4, 64, 20, 20), (64, 64, 3, 3), 1, 1), ((4, 64, 56, 56), (128, 64, 3, 3), 2, 1),
              ((2, 128, 28, 28), (128, 128, 3, 3), 1, 1), ((3, 24, 30, 30), (40, 24, 5, 5), 1, 2),
              ((8, 3, 96, 96), (64, 3, 7, 7), 2, 3), ((16, 4, 96, 96), (48, 4, 5, 5), 2, 2)]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", WIDE_WGRAD,
                         ids=["64to64", "64to128s2", "128to128", "24to40", "stem", "4to48"])
def test_wide_weight_grad_chooses_smallc(case, dtype, layout):
    (n, c, h, w), (k, _, kh, kw_), stride, pad = case
    rng = seeded_rng("smallc-wide-wgrad", case, np.dtype(dtype).name, layout)
    kw = dict(stride=stride, padding=pad, layout=layout)
    x = int_data(rng, x_shape(n, c, h, w, layout), dtype)
    ws = w_shape(k, c, kh, kw_, layout)
    algo, reason = fastconv.explain_conv2d(x.shape, ws, op="weight_grad", dtype=dtype, **kw)
    # 3x3 stride-1 layers take the Winograd weight gradient (test_winograd.py) unless forced
    wino = kh == 3 and stride == 1
    assert algo == ("winograd" if wino else "smallc"), reason
    go = int_data(rng, R.conv2d(np.zeros(x.shape), np.zeros(ws), **kw).shape, dtype)
    outs = []
    with FT.conv_algorithm("smallc" if wino else "auto"):
        if wino:
            assert fastconv.explain_conv2d(x.shape, ws, op="weight_grad", dtype=dtype,
                                           **kw)[0] == "smallc"
        for t in (1, 2):
            with fastconv.threads(t):
                outs.append(fastconv.conv2d_weight_grad(go, x, ws, **kw))
    _, ref, _ = R.conv2d_grads(go, x.shape, ws, x=x, **kw)
    assert_same(outs[0], ref, "weight grad")
    assert_bitwise(outs[0], outs[1], "weight grad, 1 vs 2 threads")


def test_nchw_weight_grad_band_layers_keep_gemm():
    # stride 1, rows of >= 48 outputs: the band driver (faster there) keeps the NCHW layer
    # (3x3 ones take Winograd automatically, so 5x5 here)
    algo, reason = fastconv.explain_conv2d((2, 64, 56, 56), (64, 64, 5, 5), op="weight_grad",
                                           padding=2)
    assert algo == "gemm" and "band" in reason, reason
    assert fastconv.explain_conv2d((2, 56, 56, 64), (5, 5, 64, 64), op="weight_grad", padding=2,
                                   layout="NHWC")[0] == "smallc"
