"""GEMM paths that read one operand in place instead of packing it.

* NHWC 1x1 stride-1 layers (>= 8 channels per group on both sides): forward and input
  gradient as row-A GEMMs whose rows are the pixels' channel vectors (x or grad_out in place).
* The NCHW stride-phase forward with <= 64 outputs per group: the indirect-B microkernel reads
  the runs of the phase planes in place.
* The NHWC stride-phase forward with > 256 channels per group: pixel-major phase planes whose
  per-tap rows the row-A microkernel reads in place.
* The direct forward of strided layers with 16..256 channels per group: each tap's input
  pixels read in place at the stride by the segmented row-A microkernel (NCHW: from a
  transposed, zero-padded band of input rows).
* NCHW 1x1 stride-1 layers with depth >= 128: the image planes read in place (indirect B).
* The NHWC input gradient through column tiles (strided layers): grad_out rows read in place.
* The direct input gradient of strided layers (both layouts): grad_out rows read in place
  (NCHW: a transposed copy) by the segmented row-A microkernel, grad_x written once.

Each is checked against the float64 NumPy reference (tests/reference.py), in both dtypes, on
shapes with remainders everywhere (pixels not a multiple of the tile, channels not a multiple
of the vector width, depth longer than one block), and 1 vs 2 threads bitwise.
"""
import numpy as np
import pytest

import fastconv
import reference
from conftest import assert_close, seeded_rng

pytestmark = pytest.mark.usefixtures("isa")

DTYPES = ["float32", "float64"]


def _conv_check(x_shape, w_shape, layout, dtype, groups=1, bias=True, key=(), **kw):
    rng = seeded_rng("inplace", x_shape, w_shape, layout, dtype, groups, bias, *key)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0] if layout == "NCHW" else w_shape[3]).astype(dtype) \
        if bias else None
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b, groups=groups,
                           layout=layout, **kw)
    scale = reference.conv2d(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64),
                             None if b is None else np.abs(b), groups=groups, layout=layout, **kw)
    outs = []
    for t in (1, 2):
        with fastconv.threads(t):
            outs.append(fastconv.conv2d(x, w, b, groups=groups, layout=layout, **kw))
    assert_close(outs[0], ref, scale=scale, dtype=dtype, what="forward")
    np.testing.assert_array_equal(outs[1], outs[0])
    return x, w


def _input_grad_check(x_shape, w_shape, layout, dtype, groups=1, key=(), **kw):
    rng = seeded_rng("inplace-gx", x_shape, w_shape, layout, dtype, groups, *key)
    w = rng.standard_normal(w_shape).astype(dtype)
    y_shape = reference.conv2d(np.zeros(x_shape), np.zeros(w_shape), groups=groups,
                               layout=layout, **kw).shape
    gy = rng.standard_normal(y_shape).astype(dtype)
    ref = reference.conv2d_grads(gy.astype(np.float64), x_shape, w_shape,
                                 weight=w.astype(np.float64), groups=groups, layout=layout,
                                 **kw)[0]
    scale = reference.conv2d_grads(np.abs(gy).astype(np.float64), x_shape, w_shape,
                                   weight=np.abs(w).astype(np.float64), groups=groups,
                                   layout=layout, **kw)[0]
    outs = []
    for t in (1, 2):
        with fastconv.threads(t):
            outs.append(fastconv.conv2d_input_grad(gy, w, x_shape, groups=groups, layout=layout,
                                                   **kw))
    assert_close(outs[0], ref, scale=scale, dtype=dtype, what="input_grad")
    np.testing.assert_array_equal(outs[1], outs[0])


# (n, h, w, c, o, groups): pixels not a multiple of 6 or of a task's 96 rows, channels not a
# multiple of 8 / 16, depth 300 > one 256 block, 1-pixel images, groups.
NHWC_1X1 = [(2, 13, 11, 16, 20, 1), (40, 1, 1, 9, 8, 1), (3, 7, 9, 300, 17, 1),
            (5, 17, 19, 24, 300, 1), (2, 9, 10, 32, 48, 2), (1, 11, 5, 27, 33, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", NHWC_1X1, ids=[str(c) for c in NHWC_1X1])
def test_nhwc_1x1_rows(case, dtype):
    n, h, w, c, o, g = case
    x_shape, w_shape = (n, h, w, c), (1, 1, c // g, o)
    for op in ("forward", "input_grad"):
        reason = fastconv.explain_conv2d(x_shape, w_shape, groups=g, layout="NHWC", op=op,
                                         dtype=dtype)[1]
        assert "row-A GEMM" in reason, reason
    _conv_check(x_shape, w_shape, "NHWC", dtype, groups=g, bias=(n % 2 == 1))
    _input_grad_check(x_shape, w_shape, "NHWC", dtype, groups=g)


# NCHW strided layers with large outputs (phase planes), < 16 channels and <= 64 outputs per
# group (more channels take the direct forward): the stem shape scaled down, 5x5 s2 with depth
# 15*25 = 375 > one block, asymmetric padding, stride 3,
# dilation with stride, groups, and an output width whose last panel is partial.
PHASE = [
    dict(x=(2, 3, 45, 41), w=(16, 3, 7, 7), stride=2, padding=3),
    dict(x=(1, 15, 41, 39), w=(24, 15, 5, 5), stride=2, padding=2),
    dict(x=(1, 8, 44, 47), w=(64, 8, 3, 3), stride=2, padding=((0, 1), (2, 1))),
    dict(x=(1, 6, 61, 58), w=(7, 6, 5, 4), stride=(3, 2), padding=(2, 1)),
    dict(x=(1, 4, 50, 52), w=(10, 4, 3, 3), stride=2, padding=2, dilation=2),
    dict(x=(2, 8, 40, 40), w=(12, 4, 3, 3), stride=2, padding=1, groups=2),
]


# NHWC strided layers with large outputs and more channels per group than one depth block
# (300 > 256): pixel-major phase planes read in place per tap (forward); the input gradient
# reads grad_out rows in place.
NHWC_PHASE = [
    dict(x=(1, 44, 47, 300), w=(3, 3, 300, 17), stride=2, padding=((0, 1), (2, 1))),
]

# NHWC strided layers with 16..256 channels per group: the direct forward (each register tile
# of 6 output pixels summed over all taps in one call, taps read in place at the stride or
# copied at the padding and at output-row ends). Outputs per group not a multiple of the
# panel (24, 70, 9, 10, 18, 33), pixels not a multiple of 6, output rows shorter than a tile
# (width 2, 4), a single output row, stride 3 x 2, dilation, groups, asymmetric padding, and
# padding wide enough that some tiles see only zeros (their output is the bias).
NHWC_DIRECT = [
    dict(x=(1, 41, 39, 40), w=(3, 3, 40, 24), stride=2, padding=1),
    dict(x=(2, 45, 40, 16), w=(5, 5, 16, 70), stride=2, padding=2),
    dict(x=(1, 61, 58, 20), w=(2, 4, 20, 9), stride=(3, 2), padding=(1, 1)),
    dict(x=(1, 50, 52, 16), w=(3, 3, 16, 10), stride=2, padding=2, dilation=2),
    dict(x=(2, 40, 40, 64), w=(3, 3, 32, 18), stride=2, padding=1, groups=2),
    dict(x=(40, 9, 4, 24), w=(3, 3, 24, 33), stride=2, padding=((0, 2), (1, 0))),
    dict(x=(8, 3, 60, 256), w=(3, 3, 256, 16), stride=2, padding=0),
    dict(x=(2, 4, 4, 16), w=(3, 3, 16, 8), stride=2, padding=3),
]


def _nhwc_case(case, layout):
    """(x_shape, w_shape, groups, other kwargs) of a case written NHWC (x=(N,H,W,C),
    w=(KH,KW,Cg,O)), transposed for NCHW."""
    kw = dict(case)
    x_shape, w_shape = kw.pop("x"), kw.pop("w")
    groups = kw.pop("groups", 1)
    if layout == "NCHW":
        x_shape = (x_shape[0], x_shape[3], x_shape[1], x_shape[2])
        w_shape = (w_shape[3], w_shape[2], w_shape[0], w_shape[1])
    return x_shape, w_shape, groups, kw


# (layout, cases, what explain_conv2d must say)
PHASE_PATHS = {"NCHW": (PHASE, "reads their runs in place"),
               "NHWC": (NHWC_PHASE, "tap's rows in place")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", range(len(NHWC_DIRECT)))
def test_direct_strided_forward(case, layout, dtype):
    """The same cases in NCHW (with 64 more outputs per group where <= 64 would keep large
    outputs on the stride-phase path): the direct forward on a transposed, zero-padded band of input rows
    per task, tiles stored transposed into y (output widths 2 and 4: tiles that span several
    output rows)."""
    x_shape, w_shape, groups, kw = _nhwc_case(NHWC_DIRECT[case], layout)
    def reason():
        return fastconv.explain_conv2d(x_shape, w_shape, groups=groups, layout=layout,
                                       op="forward", dtype=dtype, **kw)[1]
    if layout == "NCHW" and "stride-phase" in reason():  # 64 more outputs per group,
        w_shape = (w_shape[0] + 64 * groups,) + w_shape[1:]  # same remainders
    reason = reason()
    if x_shape[3 if layout == "NHWC" else 1] // groups > fastconv._testing.rows_tile(dtype)[2]:
        # more channels than one depth block of this ISA's kernel (256 cases on AVX-512, where
        # the block is 128): the direct path declines and the implicit GEMM serves
        assert "direct" not in reason, reason
    else:
        assert f"direct {layout}" in reason, reason
    _conv_check(x_shape, w_shape, layout, dtype, groups=groups, key=(case,), **kw)
    _conv_check(x_shape, w_shape, layout, dtype, groups=groups, bias=False, key=(case,), **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout, case", [(lay, i) for lay in PHASE_PATHS
                                          for i in range(len(PHASE_PATHS[lay][0]))])
def test_phase_in_place(layout, case, dtype):
    cases, says = PHASE_PATHS[layout]
    kw = dict(cases[case])
    x_shape, w_shape = kw.pop("x"), kw.pop("w")
    groups = kw.pop("groups", 1)
    reason = fastconv.explain_conv2d(x_shape, w_shape, groups=groups, layout=layout,
                                     op="forward", dtype=dtype, **kw)[1]
    assert "phase" in reason and says in reason, reason
    _conv_check(x_shape, w_shape, layout, dtype, groups=groups, key=(case,), **kw)
    _input_grad_check(x_shape, w_shape, layout, dtype, groups=groups, key=(case,), **kw)


# NCHW strided input gradients through phase planes. With >= 16 channels per group each tap's
# GEMM is accumulated straight into its plane; with fewer (the stem's 3) column tiles are added
# into the planes. Cases: more outputs than one depth block (300 > 256), channel blocks that
# are not whole register tiles (13, 17, 50 channels), stride 3 x 2, groups on both paths.
PHASE_GRAD = [
    dict(x=(1, 8, 40, 40), w=(300, 8, 3, 3), stride=2, padding=1),
    dict(x=(3, 20, 50, 50), w=(300, 20, 3, 3), stride=2, padding=1),
    dict(x=(2, 13, 41, 43), w=(20, 13, 3, 3), stride=2, padding=1),
    dict(x=(2, 17, 41, 43), w=(20, 17, 3, 3), stride=2, padding=1),
    dict(x=(1, 50, 40, 41), w=(16, 50, 3, 3), stride=2, padding=((1, 0), (0, 2))),
    dict(x=(1, 6, 61, 58), w=(7, 6, 5, 4), stride=(3, 2), padding=(2, 1)),
    dict(x=(1, 24, 61, 58), w=(7, 24, 5, 4), stride=(3, 2), padding=(2, 1)),
    dict(x=(2, 16, 40, 40), w=(12, 8, 3, 3), stride=2, padding=1, groups=2),
    dict(x=(2, 40, 40, 40), w=(12, 20, 3, 3), stride=2, padding=1, groups=2),
    dict(x=(2, 3, 45, 41), w=(16, 3, 7, 7), stride=2, padding=3),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(PHASE_GRAD)))
def test_nchw_phase_input_grad(case, dtype):
    kw = dict(PHASE_GRAD[case])
    x_shape, w_shape = kw.pop("x"), kw.pop("w")
    groups = kw.pop("groups", 1)
    reason = fastconv.explain_conv2d(x_shape, w_shape, groups=groups, op="input_grad",
                                     dtype=dtype, **kw)[1]
    if "direct input gradient" not in reason:  # (the rows' tiles fill: test_direct_input_grad)
        assert "phase" in reason, reason
        direct = x_shape[1] // groups >= 16
        assert ("accumulated straight" in reason) == direct, reason
        assert ("column tiles" in reason) != direct, reason
    _input_grad_check(x_shape, w_shape, "NCHW", dtype, groups=groups, key=(case,), **kw)


# Strided input gradients in the direct (gather) form: 6 grad_x pixels of one row and column
# class per register tile, summed over every reaching tap. Written NHWC (x=(N,H,W,C),
# w=(KH,KW,Cg,O)); the NCHW run transposes them. Odd widths (a class one pixel short: a partial
# tile), lanes not a multiple of the panel (40 channels), stride 3 x 2, dilation, groups,
# asymmetric padding, stride above the kernel (columns and rows no tap reaches: zeros), and
# padding so wide that edge tiles read grad_out partly outside (copied with zeros).
DIRECT_GRAD = [
    dict(x=(2, 20, 23, 16), w=(3, 3, 16, 24), stride=2, padding=1),
    dict(x=(2, 17, 48, 40), w=(5, 5, 40, 70), stride=2, padding=2),
    dict(x=(1, 31, 24, 20), w=(2, 4, 20, 9), stride=(3, 2), padding=(1, 1)),
    dict(x=(1, 30, 24, 16), w=(3, 3, 16, 10), stride=2, padding=2, dilation=2),
    dict(x=(2, 24, 24, 64), w=(3, 3, 32, 18), stride=2, padding=1, groups=2),
    dict(x=(3, 9, 24, 24), w=(3, 3, 24, 33), stride=2, padding=((0, 2), (1, 0))),
    dict(x=(1, 13, 36, 16), w=(2, 2, 16, 8), stride=3, padding=0),
    dict(x=(2, 12, 12, 16), w=(3, 3, 16, 8), stride=2, padding=3),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", range(len(DIRECT_GRAD)))
def test_direct_input_grad(case, layout, dtype):
    x_shape, w_shape, groups, kw = _nhwc_case(DIRECT_GRAD[case], layout)
    reason = fastconv.explain_conv2d(x_shape, w_shape, groups=groups, layout=layout,
                                     op="input_grad", dtype=dtype, **kw)[1]
    assert "direct input gradient" in reason, reason
    _input_grad_check(x_shape, w_shape, layout, dtype, groups=groups, key=(case,), **kw)


# NCHW 1x1 stride-1 layers with depth >= 128 (input channels per group for the forward, output
# channels per group for the input gradient) read their image planes in place. Planes whose
# pixels are not a multiple of the 16-lane panel, outputs not a multiple of the 6-row tile,
# depth past one 256 block, groups, and arrays starting 4..60 bytes past a cache line (the
# kernel starts its panels on lines, so the first panel is partial).
NCHW_1X1 = [(2, 128, 20, 9, 10, 1), (1, 300, 7, 11, 13, 1), (2, 256, 70, 8, 9, 2),
            (3, 130, 131, 24, 23, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [0, 1, 3])
@pytest.mark.parametrize("case", NCHW_1X1, ids=[str(c) for c in NCHW_1X1])
def test_nchw_1x1_in_place(case, offset, dtype):
    n, c, o, h, w, g = case
    x_shape, w_shape = (n, c, h, w), (o, c // g, 1, 1)
    for op, depth in (("forward", c // g), ("input_grad", o // g)):
        reason = fastconv.explain_conv2d(x_shape, w_shape, groups=g, op=op, dtype=dtype)[1]
        # (planes of fewer than 4 register-tile widths go through the packed GEMM)
        nr = fastconv._testing.rows_tile(dtype)[1]
        assert ("read in place" in reason) == (depth >= 128 and h * w >= 4 * nr), reason
    rng = seeded_rng("nchw-1x1", case, offset, dtype)
    itemsize = np.dtype(dtype).itemsize

    def shifted(shape):
        # an array `offset` elements past a 64-byte boundary
        size = int(np.prod(shape))
        raw = np.empty(size + 64 // itemsize + offset, dtype)
        start = (-raw.ctypes.data % 64) // itemsize + offset
        a = raw[start:start + size].reshape(shape)
        a[...] = rng.standard_normal(shape)
        assert a.ctypes.data % 64 == offset * itemsize
        return a

    x, wt, gy = shifted(x_shape), shifted(w_shape), shifted((n, o, h, w))
    b = rng.standard_normal(o).astype(dtype)
    ref = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), b, groups=g)
    scale = reference.conv2d(np.abs(x).astype(np.float64), np.abs(wt).astype(np.float64),
                             np.abs(b), groups=g)
    gref = reference.conv2d_grads(gy.astype(np.float64), x_shape, w_shape,
                                  weight=wt.astype(np.float64), groups=g)[0]
    gscale = reference.conv2d_grads(np.abs(gy).astype(np.float64), x_shape, w_shape,
                                    weight=np.abs(wt).astype(np.float64), groups=g)[0]
    ys, gxs = [], []
    for t in (1, 2):
        with fastconv.threads(t):
            ys.append(fastconv.conv2d(x, wt, b, groups=g))
            gxs.append(fastconv.conv2d_input_grad(gy, wt, x_shape, groups=g))
    assert_close(ys[0], ref, scale=scale, dtype=dtype, what="forward")
    assert_close(gxs[0], gref, scale=gscale, dtype=dtype, what="input_grad")
    np.testing.assert_array_equal(ys[1], ys[0])
    np.testing.assert_array_equal(gxs[1], gxs[0])
