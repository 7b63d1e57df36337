"""Strided convolutions with large outputs: the forward runs the GEMM over stride-phase planes
(each task splits its input rows into zero-padded phase images, then packs contiguous runs);
layers with 16..256 channels per group take the direct forward instead (taps read in place at
the stride, NCHW from a transposed band of input rows, unless <= 64 outputs per group let the
phase path read its planes in place; tests/test_gemm_inplace.py covers the edges); the NCHW input gradient accumulates each tap's product into phase planes and interleaves them
once.
Checked against the float64 NumPy reference under every ISA, both layouts and dtypes, with
integer data compared exactly; plus thread-count independence and the explained path.
"""
import numpy as np
import pytest

import fastconv
import reference as R
from conftest import assert_close, assert_same, int_data, rand_data, seeded_rng, w_shape, x_shape

pytestmark = pytest.mark.usefixtures("isa")

# (N, C, O, H, W, KH, KW, stride, padding, dilation, groups); outputs >= 16 x 16 pixels
CASES = [
    (2, 5, 7, 37, 35, 3, 3, 2, 1, 1, 1),                      # 3x3 stride 2, odd sizes
    (1, 3, 18, 45, 44, 7, 7, 2, 3, 1, 1),                     # stem-like: 3 channels, 7x7
    (1, 6, 9, 52, 49, 3, 2, (3, 2), ((1, 2), (0, 3)), (2, 1), 3),  # per-side pads, groups
    (2, 4, 17, 40, 41, 1, 1, 2, 0, 1, 1),                     # strided 1x1: one phase used
    (1, 9, 10, 70, 33, 5, 4, (2, 1), 2, (1, 2), 1),           # stride 2 along h only
    (1, 10, 12, 20, 66, 2, 3, (1, 3), ((0, 1), (2, 0)), 1, 2),  # stride 3 along w only
    (1, 12, 20, 36, 36, 3, 3, 2, "same", 1, 1),               # TF "same": extra pad bottom/right
    (1, 2, 3, 70, 71, 4, 4, 4, "valid", 1, 1),                # stride 4: one tap per phase
]


def _ids(cases):
    return ["-".join(str(v).replace(" ", "") for v in c) for c in cases]


def _every_case(test):
    """Every case x layout x dtype x (integer, random) data."""
    for name, values, ids in [("integer", [True, False], ["int", "rand"]),
                              ("dtype", ["float32", "float64"], None),
                              ("layout", ["NCHW", "NHWC"], None), ("case", CASES, _ids(CASES))]:
        test = pytest.mark.parametrize(name, values, ids=ids)(test)
    return test


def _data(case, layout, dtype, integer):
    n, c, o, h, w, kh, kw, s, p, d, g = case
    rng = seeded_rng("strided", case, layout, np.dtype(dtype).name, integer)
    gen = int_data if integer else rand_data
    x = gen(rng, x_shape(n, c, h, w, layout), dtype)
    wt = gen(rng, w_shape(o, c // g, kh, kw, layout), dtype)
    b = gen(rng, (o,), dtype)
    return x, wt, b, dict(stride=s, padding=p, dilation=d, groups=g, layout=layout)


@_every_case
def test_strided_forward(case, layout, dtype, integer):
    x, wt, b, kw = _data(case, layout, dtype, integer)
    for bias in (b, None):
        ref = R.conv2d(x, wt, bias, **kw)
        got = fastconv.conv2d(x, wt, bias, **kw)
        assert got.dtype == np.dtype(dtype)
        if integer:
            assert_same(got, ref, f"bias={bias is not None}")
        else:
            scale = R.conv2d(np.abs(x), np.abs(wt), None if bias is None else np.abs(bias), **kw)
            assert_close(got, ref, scale, dtype, f"bias={bias is not None}")


@_every_case
def test_strided_input_grad(case, layout, dtype, integer):
    x, wt, _, kw = _data(case, layout, dtype, integer)
    y_shape = R.conv2d(x, wt, **kw).shape
    rng = seeded_rng("strided-gy", case, layout, np.dtype(dtype).name, integer)
    gy = (int_data if integer else rand_data)(rng, y_shape, dtype)
    ref = R.conv2d_grads(gy, x.shape, wt.shape, weight=wt, **kw)[0]
    got = fastconv.conv2d_input_grad(gy, wt, x.shape, **kw)
    assert got.dtype == np.dtype(dtype) and got.shape == x.shape
    if integer:
        assert_same(got, ref)
    else:
        scale = R.conv2d_grads(np.abs(gy), x.shape, wt.shape, weight=np.abs(wt), **kw)[0]
        assert_close(got, ref, scale, dtype)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_strided_forward_path_and_threads(layout):
    # 64 channels at N=1. NCHW: the planes of a full row block exceed the memory bound, so the
    # plan takes fewer rows per task. NHWC takes the direct path (no planes). Results must not
    # depend on the thread count.
    case = (1, 64, 40, 40, 42, 3, 3, 2, 1, 1, 1)
    x, wt, b, kw = _data(case, layout, "float32", True)
    name, reason = fastconv.explain_conv2d(x.shape, wt.shape, **kw)
    says = "stride-phase" if layout == "NCHW" else "direct NHWC"
    assert name == "gemm" and says in reason, reason
    ref = R.conv2d(x, wt, b, **kw)
    outs = []
    for t in (1, 2, 3):
        with fastconv.threads(t):
            outs.append(fastconv.conv2d(x, wt, b, **kw))
    assert_same(outs[0], ref)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_strided_input_grad_path_and_threads():
    case = (16, 8, 16, 34, 35, 3, 3, 2, 1, 1, 1)
    x, wt, _, kw = _data(case, "NCHW", "float32", True)
    name, reason = fastconv.explain_conv2d(x.shape, wt.shape, op="input_grad", **kw)
    assert name == "gemm" and "stride-phase" in reason, reason
    gy = int_data(seeded_rng("strided-gy-threads"), R.conv2d(x, wt, **kw).shape, np.float32)
    ref = R.conv2d_grads(gy, x.shape, wt.shape, weight=wt, **kw)[0]
    outs = []
    for t in (1, 2, 3):
        with fastconv.threads(t):
            outs.append(fastconv.conv2d_input_grad(gy, wt, x.shape, **kw))
    assert_same(outs[0], ref)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_small_strided_outputs_keep_the_batched_path():
    # 8x8 outputs: too few pixels per image for a phase task of its own
    reason = fastconv.explain_conv2d((4, 16, 16, 16), (32, 16, 3, 3), stride=2, padding=1)[1]
    assert "stride-phase" not in reason


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_large_output_streamed_matches_per_image(layout):
    """Outputs of >= 8 MiB leave the phase tile with non-temporal stores (NHWC: transposed,
    4 x 4 blocks): a batch above the threshold equals, image by image, the same layer on one
    image (below it), and one image matches the reference."""
    rng = seeded_rng("strided-large", layout)
    x = rand_data(rng, x_shape(4, 3, 200, 200, layout), np.float32)
    wt = rand_data(rng, w_shape(64, 3, 7, 7, layout), np.float32)
    b = rand_data(rng, (64,), np.float32)
    kw = dict(stride=2, padding=3, layout=layout)
    assert "stride-phase" in fastconv.explain_conv2d(x.shape, wt.shape, **kw)[1]
    y = fastconv.conv2d(x, wt, b, **kw)
    assert y.nbytes >= 8 << 20
    for n in range(x.shape[0]):
        np.testing.assert_array_equal(fastconv.conv2d(x[n:n + 1], wt, b, **kw), y[n:n + 1])
    ref = R.conv2d(x[:1], wt, b, **kw)
    assert_close(y[:1], ref, R.conv2d(np.abs(x[:1]), np.abs(wt), np.abs(b), **kw), np.float32)
