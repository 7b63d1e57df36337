"""Depthwise conv2d (one input channel per group) vs the float64 NumPy reference, under every ISA.

The "depthwise" algorithm is forced (it is also the automatic choice for multipliers <= 4), and
forward, input gradient, weight gradient and bias gradient are checked for kernel sizes 1..7
and rectangular, strides 1..3, dilation 1..2, per-side padding, odd widths and channel counts,
multipliers 1..3 (and 5, forced), batch 1 and several, both layouts and dtypes.

Integer-valued data must match exactly (every sum is exact in float32); random data within
rtol * max(1, sum |terms|).
"""
import numpy as np
import pytest

import fastconv
import fastconv._testing as FT
import reference as R
from conftest import (DTYPES, LAYOUTS, assert_bitwise, assert_same, check_conv_ops,
                      check_result, conv_case, int_data, rand_data, seeded_rng, w_shape,
                      x_shape)

pytestmark = pytest.mark.usefixtures("isa")

# (N, C, M, H, W, KH, KW, stride, padding, dilation)
CASES = [
    (2, 3, 1, 7, 9, 3, 3, 1, 1, 1),
    (1, 5, 2, 6, 11, 3, 3, 2, 1, 1),
    (3, 7, 1, 9, 10, 1, 1, 1, 0, 1),                        # 1x1
    (1, 9, 3, 8, 13, 2, 2, 1, ((0, 1), (1, 0)), 1),         # even kernel, per-side pads
    (2, 4, 1, 11, 12, 5, 5, 2, 2, 1),
    (1, 3, 2, 12, 17, 7, 7, 1, 3, 1),
    (2, 6, 1, 13, 19, 7, 7, 3, 3, 2),                       # stride 3, dilation 2
    (1, 10, 1, 9, 21, 3, 3, 1, 2, 2),                       # dilation 2
    (2, 5, 3, 10, 15, 3, 5, (2, 1), ((1, 2), (0, 3)), (1, 2)),  # rectangular everything
    (1, 11, 1, 7, 33, 5, 3, (1, 3), ((2, 0), (3, 1)), (2, 1)),
    (1, 17, 2, 5, 24, 3, 3, 2, 1, 1),                       # 17 channels, 34 outputs
    (3, 2, 1, 4, 1, 3, 3, 1, 1, 1),                         # width 1
    (1, 3, 1, 3, 3, 5, 5, 1, 2, 1),                         # kernel wider than the image
    (2, 4, 2, 6, 40, 2, 4, 3, ((1, 1), (2, 2)), 2),
    (1, 33, 1, 6, 7, 3, 3, 1, 1, 1),                        # channels past two AVX2 blocks
    (1, 3, 5, 6, 9, 3, 3, 1, 1, 1),                         # multiplier 5 (forced only)
]


def _ids(cases):
    return ["-".join(str(v).replace(" ", "") for v in c) for c in cases]


def _kw(case, layout):
    n, c, m, h, w, kh, kw, s, p, d = case
    return dict(stride=s, padding=p, dilation=d, groups=c, layout=layout)


_cache = {}


def _setup(case, layout, dtype, integer):
    """Inputs, reference results and error scales for one case (cached across ISAs)."""
    key = (case, layout, np.dtype(dtype).name, integer)
    if key not in _cache:
        n, c, m, h, w, kh, kw, s, p, d = case
        _cache[key] = conv_case(seeded_rng("depthwise", key), x_shape(n, c, h, w, layout),
                                w_shape(c * m, 1, kh, kw, layout), dtype, integer,
                                **_kw(case, layout))
    return _cache[key]


_check = check_result


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_depthwise_vs_reference(case, layout, dtype, integer):
    d = _setup(case, layout, dtype, integer)
    kw = _kw(case, layout)
    check_conv_ops(d, kw, dtype, integer, "depthwise")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_depthwise_is_automatic_choice(layout):
    """Multipliers <= 4 select the depthwise kernels: bitwise equal to the forced run."""
    case = (2, 5, 2, 9, 14, 3, 3, 1, 1, 1)
    d = _setup(case, layout, np.float32, False)
    kw = _kw(case, layout)
    auto = (fastconv.conv2d(d["x"], d["w"], d["b"], **kw),
            *fastconv.conv2d_backward(d["go"], d["x"], d["w"], **kw))
    with FT.conv_algorithm("depthwise"):
        forced = (fastconv.conv2d(d["x"], d["w"], d["b"], **kw),
                  *fastconv.conv2d_backward(d["go"], d["x"], d["w"], **kw))
    for a, f, what in zip(auto, forced, ("forward", "input grad", "weight grad", "bias grad")):
        assert_bitwise(a, f, what)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_forced_depthwise_falls_back(layout):
    """Forcing "depthwise" on a layer it cannot run (2 input channels per group) still works."""
    rng = seeded_rng("depthwise-fallback", layout)
    x = int_data(rng, x_shape(2, 4, 6, 7, layout), np.float32)
    w = int_data(rng, w_shape(6, 2, 3, 3, layout), np.float32)
    kw = dict(padding=1, groups=2, layout=layout)
    with FT.conv_algorithm("depthwise"):
        y = fastconv.conv2d(x, w, **kw)
    assert_same(y, R.conv2d(x, w, **kw), "fallback forward")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("geom", [(3, 1, 1, 1), (3, 2, 1, 1), (5, 3, 4, 2), (2, 1, 0, 1)],
                         ids=["3x3s1", "3x3s2", "5x5s3d2", "2x2"])
def test_depthwise_widths(geom, layout, dtype):
    """Every width 1..40 (vector bodies, partial vectors, rows shorter than a vector)."""
    k, s, p, dil = geom
    for width in range(1, 41):
        if (width + 2 * p - dil * (k - 1) - 1) < 0:
            continue
        case = (2, 3, 2, 5, width, k, k, s, p, dil)
        d = _setup(case, layout, dtype, True)
        kw = _kw(case, layout)
        with FT.conv_algorithm("depthwise"):
            y = fastconv.conv2d(d["x"], d["w"], d["b"], **kw)
            gx, gw, _ = fastconv.conv2d_backward(d["go"], d["x"], d["w"], bias=False, **kw)
        assert_same(y, d["y"], f"forward width {width}")
        assert_same(gx, d["gx"], f"input grad width {width}")
        assert_same(gw, d["gw"], f"weight grad width {width}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("channels", list(range(1, 20)) + [31, 33, 47])
def test_depthwise_channel_counts(channels, layout, dtype):
    """Channel counts around every vector width (NHWC vectorises across channels)."""
    case = (2, channels, 1, 5, 6, 3, 3, 1, 1, 1)
    d = _setup(case, layout, dtype, True)
    kw = _kw(case, layout)
    with FT.conv_algorithm("depthwise"):
        y = fastconv.conv2d(d["x"], d["w"], d["b"], **kw)
        gx, gw, _ = fastconv.conv2d_backward(d["go"], d["x"], d["w"], bias=False, **kw)
    assert_same(y, d["y"], "forward")
    assert_same(gx, d["gx"], "input grad")
    assert_same(gw, d["gw"], "weight grad")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("conf", [(4, 40, 2, 32, 32, 3, 1, 1), (4, 40, 1, 64, 62, 5, 2, 2),
                                  (4, 32, 3, 90, 90, 3, 3, 1)],
                         ids=["3x3m2", "5x5s2", "3x3s3m3"])
def test_depthwise_threads_bitwise(conf, layout, dtype):
    """1 vs 2 threads: bitwise identical forward, input gradient and weight gradient (the shapes
    are large enough that the work is split)."""
    n, c, m, h, w, k, s, p = conf
    rng = seeded_rng("depthwise-threads", conf, layout)
    x = rand_data(rng, x_shape(n, c, h, w, layout), dtype)
    wt = rand_data(rng, w_shape(c * m, 1, k, k, layout), dtype)
    b = rand_data(rng, (c * m,), dtype)
    kw = dict(stride=s, padding=p, groups=c, layout=layout)
    res = []
    with FT.conv_algorithm("depthwise"):
        y = fastconv.conv2d(x, wt, b, **kw)
        go = rand_data(rng, y.shape, dtype)
        for threads in (1, 2):
            with fastconv.threads(threads):
                res.append((fastconv.conv2d(x, wt, b, **kw),
                            fastconv.conv2d_input_grad(go, wt, x.shape, **kw),
                            fastconv.conv2d_weight_grad(go, x, wt.shape, **kw)))
    for a, b2, what in zip(res[0], res[1], ("forward", "input grad", "weight grad")):
        assert_bitwise(a, b2, f"{what}: 1 vs 2 threads")


# 3x3, stride 1, one padding column each side: the kernels that read the source in place
# (NCHW rows3x3_pad1; NHWC nhwc_row3x3, output rows in pairs when all four source rows exist).
PAD1_CASES = [
    (1, 9, 1, 1, 1, 3, 3, 1, 1, 1),                         # one pixel
    (2, 8, 1, 3, 5, 3, 3, 1, ((0, 0), (1, 1)), 1),          # one output row (no top/bottom pad)
    (1, 8, 1, 9, 5, 3, 3, 1, 1, 1),                         # odd height: a single last row
    (2, 16, 1, 8, 9, 3, 3, 1, ((3, 1), (1, 1)), 1),         # output rows over padding only
    (1, 17, 1, 7, 17, 3, 3, 1, ((0, 2), (1, 1)), 1),        # partial vectors of channels
    (2, 33, 1, 10, 33, 3, 3, 1, ((2, 0), (1, 1)), 1),
    (1, 24, 1, 11, 16, 3, 3, 1, 1, 1),                      # widths at vector multiples
    (1, 5, 2, 6, 18, 3, 3, 1, 1, 1),                        # multiplier 2 (NCHW in place)
]


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", PAD1_CASES, ids=_ids(PAD1_CASES))
def test_depthwise_3x3_pad1_in_place(case, layout, dtype, integer):
    d = _setup(case, layout, dtype, integer)
    check_conv_ops(d, _kw(case, layout), dtype, integer, "depthwise")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_depthwise_3x3_pad1_widths_heights(layout, dtype):
    """Every width 1..20 and height 1..7 of the in-place 3x3 kernels (edge vectors and pixel
    blocks, overlapping last vectors, rows in pairs and single rows)."""
    for height in range(1, 8):
        for width in range(1, 21):
            case = (1, 9, 1, height, width, 3, 3, 1, ((height % 3, 1), (1, 1)), 1)
            d = _setup(case, layout, dtype, True)
            kw = _kw(case, layout)
            with FT.conv_algorithm("depthwise"):
                y = fastconv.conv2d(d["x"], d["w"], d["b"], **kw)
                gx = fastconv.conv2d_input_grad(d["go"], d["w"], d["x"].shape, **kw)
            assert_same(y, d["y"], f"forward {height}x{width}")
            assert_same(gx, d["gx"], f"input grad {height}x{width}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_depthwise_3x3_pad1_threads_bitwise(layout, dtype):
    """1 vs 2 threads, in-place 3x3 kernels (odd output height: a pair and a single row)."""
    n, c, h, w = 3, 24, 23, 29
    rng = seeded_rng("depthwise-pad1-threads", layout)
    x = rand_data(rng, x_shape(n, c, h, w, layout), dtype)
    wt = rand_data(rng, w_shape(c, 1, 3, 3, layout), dtype)
    b = rand_data(rng, (c,), dtype)
    kw = dict(padding=1, groups=c, layout=layout)
    res = []
    with FT.conv_algorithm("depthwise"):
        go = rand_data(rng, fastconv.conv2d(x, wt, b, **kw).shape, dtype)
        for threads in (1, 2):
            with fastconv.threads(threads):
                res.append((fastconv.conv2d(x, wt, b, **kw),
                            fastconv.conv2d_input_grad(go, wt, x.shape, **kw)))
    for a, b2, what in zip(res[0], res[1], ("forward", "input grad")):
        assert_bitwise(a, b2, f"{what}: 1 vs 2 threads")


# NHWC 3x3 outputs of >= 8 MiB: each pair of rows goes through per-thread scratch and is
# streamed out (non-temporal copy). Odd heights (a single last row), channel counts that leave
# rows unaligned to 16 bytes, top or bottom padding rows, both dtypes.
# (N, C, H, W, padding, dtype)
STREAM_CASES = [
    (2, 256, 64, 64, 1, "float32"),                        # exactly 8 MiB
    (10, 67, 57, 61, ((0, 2), (1, 1)), "float32"),         # C % 4 != 0, bottom padding rows
    (5, 67, 57, 61, ((2, 0), (1, 1)), "float64"),          # top padding rows
    (3, 128, 53, 59, 1, "float64"),                        # odd height
]


def _dw3x3_nhwc_ref(x, w, b, padding):
    """float64 NHWC 3x3 depthwise forward, stride 1, one padding column each side."""
    (top, bottom), _ = ((padding, padding), 1) if isinstance(padding, int) else padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (1, 1), (0, 0)))
    ho, wo = xp.shape[1] - 2, xp.shape[2] - 2
    y = np.broadcast_to(b.astype(np.float64), (x.shape[0], ho, wo, x.shape[3])).copy()
    for a in range(3):
        for c in range(3):
            y += w[a, c, 0].astype(np.float64) * xp[:, a:a + ho, c:c + wo]
    return y


@pytest.mark.parametrize("case", STREAM_CASES, ids=_ids(STREAM_CASES))
def test_depthwise_3x3_nhwc_streamed_output(case):
    n, c, h, w, p, dtype = case
    rng = seeded_rng("depthwise-stream", case)
    x = int_data(rng, (n, h, w, c), dtype)
    wt = int_data(rng, (3, 3, 1, c), dtype)
    b = int_data(rng, (c,), dtype)
    kw = dict(padding=p, groups=c, layout="NHWC")
    with FT.conv_algorithm("depthwise"):
        res = []
        for threads in (1, 2):
            with fastconv.threads(threads):
                res.append(fastconv.conv2d(x, wt, b, **kw))
        assert res[0].nbytes >= 8 << 20
        # one image at a time: outputs below the streaming threshold (direct stores)
        single = np.concatenate([fastconv.conv2d(x[i:i + 1], wt, b, **kw) for i in range(n)])
    assert_same(res[0], _dw3x3_nhwc_ref(x, wt, b, p), "forward")
    assert_bitwise(res[0], res[1], "forward: 1 vs 2 threads")
    assert_bitwise(res[0], single, "forward: streamed vs per image")


@pytest.mark.parametrize("integer", [True, False], ids=["int", "rand"])
@pytest.mark.parametrize("case", CASES + PAD1_CASES, ids=_ids(CASES) + _ids(PAD1_CASES))
def test_depthwise_untuned_tables(case, integer):
    """Where the CPU splits 512-bit operations (AMD Zen 4), the AVX-512 table runs AVX2's NCHW
    float32 row kernels (dispatch.cpp); with the tuning off the AVX-512 row kernels themselves
    run, so they stay tested on such machines. Elsewhere this repeats the default tables."""
    with FT.uarch_tuning(False):
        d = _setup(case, "NCHW", np.float32, integer)
        check_conv_ops(d, _kw(case, "NCHW"), np.float32, integer, "depthwise")
