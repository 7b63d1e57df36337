"""fastconv.explain_conv2d: the selector's choice and its one-line reason.

The reason must describe the path that actually runs: for each layer the automatic result is
bitwise equal to the result with the explained algorithm forced, and (so the check can fail)
differs from at least one other algorithm's result somewhere in the set.
"""
import numpy as np
import pytest

import fastconv
import fastconv._testing as T
from fastconv import functional as F

LAYERS = [  # (x NCHW, weight OIHW, kwargs)
    ((2, 16, 12, 12), (8, 16, 3, 3), dict(padding=1)),
    ((2, 32, 9, 9), (16, 32, 1, 1), {}),
    ((2, 8, 10, 10), (8, 1, 3, 3), dict(padding=1, groups=8)),
    ((2, 8, 10, 10), (16, 1, 3, 3), dict(padding=1, groups=8)),
    ((1, 3, 20, 20), (6, 3, 5, 5), dict(stride=2, padding=2)),
    ((2, 12, 11, 11), (12, 4, 3, 3), dict(padding=2, dilation=2, groups=3)),
    ((64, 6, 14, 14), (16, 6, 5, 5), {}),                  # LeNet conv2: smallc
]
OPS = ["forward", "input_grad", "weight_grad"]


def _nhwc_shapes(xs, ws):
    return (xs[0], xs[2], xs[3], xs[1]), (ws[2], ws[3], ws[1], ws[0])


def _run(op, x, w, kw, layout):
    if op == "forward":
        return F.conv2d(x, w, layout=layout, **kw)
    y = F.conv2d(x, w, layout=layout, **kw)
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    if op == "input_grad":
        return F.conv2d_input_grad(gy, w, x.shape, layout=layout, **kw)
    return F.conv2d_weight_grad(gy, x, w.shape, layout=layout, **kw)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_reason_names_the_path_that_runs(layout):
    rng = np.random.default_rng(0)
    names = T.conv_algorithms()
    distinguished = 0
    for xs, ws, kw in LAYERS:
        if layout == "NHWC":
            xs, ws = _nhwc_shapes(xs, ws)
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        for op in OPS:
            name, reason = fastconv.explain_conv2d(xs, ws, layout=layout, op=op, **kw)
            assert name in names, (name, names)
            assert reason and "\n" not in reason
            auto = _run(op, x, w, kw, layout)
            with T.conv_algorithm(name):
                forced = _run(op, x, w, kw, layout)
                assert fastconv.explain_conv2d(xs, ws, layout=layout, op=op, **kw)[1].startswith(
                    "forced") or name not in ("gemm", "direct")
            np.testing.assert_array_equal(auto, forced, err_msg=f"{xs} {ws} {kw} {op}: {name}")
            for other in names:
                if other == name:
                    continue
                with T.conv_algorithm(other):
                    if fastconv.explain_conv2d(xs, ws, layout=layout, op=op, **kw)[0] == name:
                        continue  # not applicable: falls back to the same path
                    if not np.array_equal(_run(op, x, w, kw, layout), auto):
                        distinguished += 1
    assert distinguished > 0, "every algorithm agreed bitwise: the check above cannot fail"


def test_known_choices():
    for op in OPS:
        assert fastconv.explain_conv2d((64, 6, 14, 14), (16, 6, 5, 5), op=op)[0] == "smallc"
    assert fastconv.explain_conv2d((64, 1, 28, 28), (6, 1, 5, 5), padding=2)[0] == "smallc"
    assert fastconv.explain_conv2d((8, 128, 56, 56), (128, 1, 3, 3), padding=1, groups=128)[0] \
        != "gemm"
    name, reason = fastconv.explain_conv2d((8, 256, 56, 56), (64, 256, 1, 1))
    assert name == "gemm" and "plain GEMM" in reason
    assert "calling thread" in fastconv.explain_conv2d((1, 1, 8, 8), (1, 1, 3, 3))[1]
    assert "calling thread" not in fastconv.explain_conv2d((8, 64, 56, 56), (64, 64, 3, 3),
                                                           padding=1)[1]
    with T.conv_algorithm("gemm"):
        name, reason = fastconv.explain_conv2d((8, 128, 56, 56), (128, 1, 3, 3), padding=1,
                                               groups=128, op="weight_grad")
        assert name == "gemm" and reason.startswith("forced")
    # 3-D (unbatched) x and float64 are accepted
    assert fastconv.explain_conv2d((64, 56, 56), (64, 64, 3, 3), padding=1, dtype="float64")[0]


@pytest.mark.parametrize("bad, exc, words", [
    (dict(op="backward"), ValueError, ["explain_conv2d", "op"]),
    (dict(dtype="int32"), TypeError, ["explain_conv2d", "dtype"]),
    (dict(layout="CHWN"), ValueError, ["explain_conv2d", "layout"]),
    (dict(x_shape=(2, 5, 8, 8)), ValueError, ["explain_conv2d", "x_shape"]),
    (dict(weight_shape=(4, 3, 3)), ValueError, ["explain_conv2d", "weight_shape"]),
])
def test_errors(bad, exc, words):
    kw = dict(x_shape=(2, 4, 8, 8), weight_shape=(4, 4, 3, 3))
    kw.update(bad)
    xs, ws = kw.pop("x_shape"), kw.pop("weight_shape")
    with pytest.raises(exc) as e:
        fastconv.explain_conv2d(xs, ws, **kw)
    for w in words:
        assert w in str(e.value)
