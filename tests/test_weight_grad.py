"""conv2d_weight_grad of the GEMM-bound layers vs the float64 NumPy reference, under every ISA.

The cases are shaped to reach every branch of the NCHW row-A driver (weight_grad_rows: im2col
rows or grad_out rows as the A side, rows read in place or copied, several A and B blocks,
reduction chunks) and of the NHWC driver (weight_grad_nhwc: grad_out or the patches as the A
side, several output and patch blocks, channel runs that are not a multiple of the vector width
or shorter than a panel, padding, stride, dilation, groups),
in both layouts and both dtypes; and the result must be bitwise identical for 1 and 2 threads.
"""
import numpy as np
import pytest

import fastconv
import fastconv._testing as T
import reference as R
from conftest import (assert_bitwise, assert_close, assert_same, int_data, rand_data, seeded_rng,
                      w_shape, x_shape)

pytestmark = pytest.mark.usefixtures("isa")

# (N, C, O, H, W, K, stride, padding, dilation, groups)
CASES = [
    (2, 5, 20, 13, 13, 3, 1, 1, 1, 1),      # large image: rows in place, im2col rows as A
    (1, 2, 64, 6, 6, 3, 1, 1, 1, 1),        # short patches, many outputs: grad_out rows as A
    (1, 128, 64, 6, 6, 3, 1, 1, 1, 1),      # long patches: several A blocks
    (1, 8, 300, 5, 5, 5, 1, 2, 1, 1),       # many outputs: several B blocks / output blocks
    (2, 16, 16, 32, 32, 3, 1, 1, 1, 1),     # 2048 pixels: reduction chunks
    (2, 16, 24, 17, 15, 3, 2, 1, 1, 2),     # groups, stride 2, odd sizes
    (2, 32, 40, 12, 12, 1, 1, 0, 1, 1),     # 1x1 stride 1: the input read in place
    (1, 12, 20, 11, 9, 3, 1, 2, 2, 1),      # dilation, channel runs of 12
    (2, 20, 36, 20, 20, 3, 1, 1, 1, 2),     # groups with in-place rows
    (1, 3, 32, 30, 30, 7, 2, 3, 1, 1),      # stem-like: 7x7 stride 2 on 3 channels
    (1, 20, 24, 9, 9, 1, 1, 0, 1, 1),       # 1x1, channels not a multiple of the tile width
    (1, 3, 16, 21, 21, 7, 2, 3, 1, 1),      # stem-like NHWC, short reduction: patches as A
    (1, 3, 16, 96, 96, 7, 2, 3, 1, 1),      # stem-like NHWC, 2304 pixels: the 21-value runs
                                            # gathered into a row, then split into A panels
    (1, 3, 20, 12, 12, 3, 1, 2, 2, 1),      # 3-value runs (dilation) into 6-wide A panels
    (1, 12, 20, 50, 50, 3, 1, 2, 2, 1),     # 12-value runs, 2500 pixels: grad_out as A, the
                                            # runs gathered, then split into B panels
]


def _ids(cases):
    return ["-".join(str(v) for v in c) for c in cases]


def _data(case, layout, dtype, integer):
    n, c, o, h, w, k, s, p, d, g = case
    rng = seeded_rng("weight-grad", case, layout, np.dtype(dtype).name, integer)
    make = int_data if integer else rand_data
    x = make(rng, x_shape(n, c, h, w, layout), dtype)
    ws = w_shape(o, c // g, k, k, layout)
    ho = (h + 2 * p - d * (k - 1) - 1) // s + 1
    wo = (w + 2 * p - d * (k - 1) - 1) // s + 1
    go = make(rng, x_shape(n, o, ho, wo, layout), dtype)
    kw = dict(stride=s, padding=p, dilation=d, groups=g, layout=layout)
    return x, ws, go, kw


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_weight_grad_matches_reference(case, layout, dtype, integer):
    x, ws, go, kw = _data(case, layout, dtype, integer)
    got = fastconv.conv2d_weight_grad(go, x, ws, **kw)
    _, ref, _ = R.conv2d_grads(go, x.shape, ws, x=x, **kw)
    assert got.dtype == dtype and got.shape == tuple(ws)
    if integer:  # every partial sum is an exact small integer
        assert_same(got, ref, "conv2d_weight_grad")
    else:
        _, scale, _ = R.conv2d_grads(np.abs(go), x.shape, ws, x=np.abs(x), **kw)
        assert_close(got, ref, scale, dtype, "conv2d_weight_grad")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[4], CASES[8], CASES[12], CASES[14]],
                         ids=_ids([CASES[0], CASES[3], CASES[4], CASES[8], CASES[12], CASES[14]]))
def test_weight_grad_thread_count_independent(case, layout, dtype):
    x, ws, go, kw = _data(case, layout, dtype, False)
    with fastconv.threads(1):
        one = fastconv.conv2d_weight_grad(go, x, ws, **kw)
    with fastconv.threads(2):
        two = fastconv.conv2d_weight_grad(go, x, ws, **kw)
    assert_bitwise(one, two, "conv2d_weight_grad: 1 vs 2 threads")


def _check_1_and_2_threads(x, ws, go, kw, dtype, integer):
    """The weight gradient at 1 and 2 threads: against the float64 reference (exact on integer
    data) and bitwise equal to each other."""
    outs = []
    for t in (1, 2):
        with fastconv.threads(t):
            outs.append(fastconv.conv2d_weight_grad(go, x, ws, **kw))
    _, ref, _ = R.conv2d_grads(go, x.shape, ws, x=x, **kw)
    if integer:
        assert_same(outs[0], ref, "conv2d_weight_grad")
    else:
        _, scale, _ = R.conv2d_grads(np.abs(go), x.shape, ws, x=np.abs(x), **kw)
        assert_close(outs[0], ref, scale, dtype, "conv2d_weight_grad")
    assert_bitwise(outs[0], outs[1], "conv2d_weight_grad: 1 vs 2 threads")


# NHWC weight gradients read in place (weight_grad_nhwc_in_place: spatial kernels, channels per
# group a multiple of the vector panel, pixel rows <= 512 bytes). 32 channels per group fill
# whole panels for every ISA and dtype that has the kernel. Cases: outputs not a multiple of the
# 6-row tile (a packed last A panel) and fewer than one block of 126; padding on every side,
# large enough that whole taps fall outside; stride 2, asymmetric padding; dilation; groups;
# depth blocks of 64 pixels that span images (4 x 4 and 1 x 7 outputs); several lane blocks
# (5 x 5 x 32 = 800 lanes > 256); many outputs (several output blocks); reduction chunks.
IN_PLACE = [
    (2, 32, 20, 9, 11, 3, 1, 1, 1, 1),
    (3, 32, 7, 6, 6, 3, 2, 3, 1, 1),
    (2, 64, 6, 7, 5, 3, 2, ((0, 2), (1, 0)), 1, 1),
    (1, 32, 13, 14, 13, 3, 1, 2, 2, 1),
    (2, 64, 14, 10, 9, 3, 1, 1, 1, 2),
    (5, 32, 9, 4, 4, 3, 1, 1, 1, 1),
    (3, 32, 11, 1, 7, 3, 1, (1, 0), 1, 1),
    (1, 32, 10, 12, 12, 5, 1, 2, 1, 1),
    (1, 32, 200, 8, 8, 3, 1, 1, 1, 1),
    (2, 64, 16, 40, 40, 3, 1, 1, 1, 1),
]


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", IN_PLACE, ids=_ids(IN_PLACE))
def test_nhwc_weight_grad_in_place(case, dtype, integer):
    """The GEMM path's in-place NHWC driver, forced (with <= 128 channels the selector may take
    smallc for these layers)."""
    import fastconv._testing as T
    with T.conv_algorithm("gemm"):
        _in_place_case(T, case, dtype, integer)


def _in_place_case(T, case, dtype, integer):
    n, c, o, h, w, k, s, p, d, g = case
    rng = seeded_rng("weight-grad-in-place", case, np.dtype(dtype).name, integer)
    make = int_data if integer else rand_data
    x = make(rng, x_shape(n, c, h, w, "NHWC"), dtype)
    ws = w_shape(o, c // g, k, k, "NHWC")
    kw = dict(stride=s, padding=p, dilation=d, groups=g, layout="NHWC")
    go = make(rng, R.conv2d(np.zeros(x.shape), np.zeros(ws), **kw).shape, dtype)
    reason = fastconv.explain_conv2d(x.shape, ws, op="weight_grad", dtype=np.dtype(dtype).name,
                                     **kw)[1]
    # the in-place kernel exists where the GEMM tile is 6 rows (AVX2, AVX-512), not on the
    # portable 4-row tile
    assert ("nothing packed" in reason) == (T.tile_sizes(np.dtype(dtype).name)[0] == 6), reason
    _check_1_and_2_threads(x, ws, go, kw, dtype, integer)


# NCHW stride-1 weight gradients over zero-padded input bands (weight_grad_band: rows of >= 48
# outputs, padding columns <= 1/8 of the band width, >= one panel of outputs). Cases: bands
# that do not divide the rows; channels and outputs that are not whole tiles or panels;
# asymmetric padding; dilation; groups; a 5x5 kernel; padding wider than the kernel reach;
# reduction chunks that start and end inside output rows; several channel and output blocks.
BAND = [
    (2, 8, 32, 7, 50, 3, 1, 1, 1),
    (1, 13, 40, 9, 60, 3, ((1, 0), (2, 1)), 1, 1),
    (2, 6, 33, 10, 56, 3, 2, 2, 1),
    (1, 16, 64, 6, 49, 3, 1, 1, 2),
    (1, 8, 32, 12, 64, 5, 2, 1, 1),
    (1, 8, 32, 5, 50, 3, 3, 1, 1),
    (4, 8, 32, 37, 51, 3, 1, 1, 1),
    (1, 70, 140, 4, 48, 3, 1, 1, 1),
]


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", BAND, ids=_ids(BAND))
def test_nchw_weight_grad_bands(case, dtype, integer):
    n, c, o, h, w, k, p, d, g = case
    rng = seeded_rng("weight-grad-band", case, np.dtype(dtype).name, integer)
    make = int_data if integer else rand_data
    x = make(rng, (n, c, h, w), dtype)
    ws = (o, c // g, k, k)
    kw = dict(padding=p, dilation=d, groups=g)
    go = make(rng, R.conv2d(np.zeros(x.shape), np.zeros(ws), **kw).shape, dtype)
    # (3x3 stride-1 layers take the Winograd weight gradient by default: GEMM forced here)
    with T.conv_algorithm("gemm"):
        reason = fastconv.explain_conv2d(x.shape, ws, op="weight_grad",
                                         dtype=np.dtype(dtype).name, **kw)[1]
        assert "zero-padded input bands" in reason, reason
        _check_1_and_2_threads(x, ws, go, kw, dtype, integer)
