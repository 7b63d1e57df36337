"""Hypothesis property tests: random shapes / strides / paddings / dilations / groups / layouts vs
the NumPy reference, under every ISA.  Integer-valued data must match exactly; random data within
the scaled tolerance."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastconv
import reference as R
from conftest import (assert_close, assert_same, int_data, rand_data, w_shape, wt_shape,
                      x_shape)

pytestmark = pytest.mark.usefixtures("isa")

EXAMPLES = 40

layouts = st.sampled_from(["NCHW", "NHWC"])
dtypes = st.sampled_from([np.float32, np.float64])
small = st.integers(1, 3)
int_or_pair = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi),
                                                                      st.integers(lo, hi)))


def _rng(seed):
    return np.random.default_rng(seed)


def _data(rng, shape, dtype, integer):
    return (int_data if integer else rand_data)(rng, shape, dtype)


def _check(got, ref, scale, dtype, integer, what=""):
    assert got.dtype == np.dtype(dtype), what
    if integer:
        assert_same(got, ref, what)
    else:
        assert_close(got, ref, scale, dtype, what)


@st.composite
def conv_padding(draw):
    return draw(st.one_of(
        st.integers(0, 3),
        st.tuples(st.integers(0, 2), st.integers(0, 3)),
        st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                  st.tuples(st.integers(0, 3), st.integers(0, 3))),
        st.sampled_from(["valid", "same", "full"])))


@st.composite
def conv_case(draw):
    layout = draw(layouts)
    dtype = draw(dtypes)
    groups = draw(st.integers(1, 4))
    cg = draw(st.integers(1, 4))
    og = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(int_or_pair(1, 3))
    dil = draw(int_or_pair(1, 3))
    padding = draw(conv_padding())
    n = draw(st.integers(0, 2))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    dh, dw = R.pair(dil)
    pt, pb, pl, pr = R.conv_pads(padding, (h, w), (kh, kw), stride, dil)
    assume(h + pt + pb >= dh * (kh - 1) + 1 and w + pl + pr >= dw * (kw - 1) + 1)
    return dict(layout=layout, dtype=dtype, n=n, c=cg * groups, o=og * groups, groups=groups,
                h=h, w=w, kh=kh, kw=kw, stride=stride, padding=padding, dilation=dil,
                bias=draw(st.booleans()), integer=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


def _conv_arrays(c, transposed=False):
    rng = _rng(c["seed"])
    lay = c["layout"]
    x = _data(rng, x_shape(c["n"], c["c"], c["h"], c["w"], lay), c["dtype"], c["integer"])
    if transposed:
        ws = wt_shape(c["c"], c["o"] // c["groups"], c["kh"], c["kw"], lay)
    else:
        ws = w_shape(c["o"], c["c"] // c["groups"], c["kh"], c["kw"], lay)
    w = _data(rng, ws, c["dtype"], c["integer"])
    b = _data(rng, (c["o"],), c["dtype"], c["integer"]) if c["bias"] else None
    return rng, x, w, b


@settings(max_examples=EXAMPLES, deadline=None)
@given(conv_case())
def test_conv2d_forward(c):
    rng, x, w, b = _conv_arrays(c)
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
              groups=c["groups"], layout=c["layout"])
    ref = R.conv2d(x, w, b, **kw)
    scale = R.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), **kw)
    _check(fastconv.conv2d(x, w, b, **kw), ref, scale, c["dtype"], c["integer"])


@settings(max_examples=EXAMPLES, deadline=None)
@given(conv_case())
def test_conv2d_backward(c):
    rng, x, w, _ = _conv_arrays(c)
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
              groups=c["groups"], layout=c["layout"])
    y_shape = R.conv2d(x[:1] if x.shape[0] else x, w, **kw).shape
    y_shape = (x.shape[0],) + y_shape[1:]
    go = _data(rng, y_shape, c["dtype"], c["integer"])
    rx, rw, rb = R.conv2d_grads(go, x.shape, w.shape, x=x, weight=w, **kw)
    sx, sw, sb = R.conv2d_grads(np.abs(go), x.shape, w.shape, x=np.abs(x), weight=np.abs(w),
                                **kw)
    gx, gw, gb = fastconv.conv2d_backward(go, x, w, bias=True, **kw)
    _check(gx, rx, sx, c["dtype"], c["integer"], "grad_x")
    _check(gw, rw, sw, c["dtype"], c["integer"], "grad_w")
    _check(gb, rb, sb, c["dtype"], c["integer"], "grad_b")


@st.composite
def convt_case(draw):
    layout = draw(layouts)
    dtype = draw(dtypes)
    groups = draw(st.integers(1, 3))
    cig, cog = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oph = draw(st.integers(0, max(sh, dh) - 1))
    opw = draw(st.integers(0, max(sw, dw) - 1))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    assume(R.conv_transpose2d_out_size(h, kh, sh, ph, oph, dh) >= 1)
    assume(R.conv_transpose2d_out_size(w, kw, sw, pw, opw, dw) >= 1)
    return dict(layout=layout, dtype=dtype, n=draw(st.integers(0, 2)), c=cig * groups,
                o=cog * groups, groups=groups, h=h, w=w, kh=kh, kw=kw, stride=(sh, sw),
                padding=(ph, pw), output_padding=(oph, opw), dilation=(dh, dw),
                bias=draw(st.booleans()), integer=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=EXAMPLES, deadline=None)
@given(convt_case())
def test_conv_transpose2d(c):
    rng, x, w, b = _conv_arrays(c, transposed=True)
    kw = dict(stride=c["stride"], padding=c["padding"], output_padding=c["output_padding"],
              dilation=c["dilation"], groups=c["groups"], layout=c["layout"])
    ref = R.conv_transpose2d(x, w, b, **kw)
    scale = R.conv_transpose2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), **kw)
    _check(fastconv.conv_transpose2d(x, w, b, **kw), ref, scale, c["dtype"], c["integer"])
    go = _data(rng, ref.shape, c["dtype"], c["integer"])
    rx, rw, rb = R.conv_transpose2d_grads(go, x, w, **kw)
    sx, sw, sb = R.conv_transpose2d_grads(np.abs(go), np.abs(x), np.abs(w), **kw)
    gx, gw, gb = fastconv.conv_transpose2d_backward(go, x, w, bias=True, **kw)
    _check(gx, rx, sx, c["dtype"], c["integer"], "grad_x")
    _check(gw, rw, sw, c["dtype"], c["integer"], "grad_w")
    _check(gb, rb, sb, c["dtype"], c["integer"], "grad_b")


@st.composite
def pool_case(draw, op):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), int_or_pair(1, 3)))
    padding = draw(st.one_of(
        st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2)),
        st.sampled_from(["valid", "same"])))
    dil = draw(int_or_pair(1, 2)) if op == "max" else 1
    ceil_mode = draw(st.booleans()) if not isinstance(padding, str) else False
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    sh, sw = R.pair(stride if stride is not None else (kh, kw))
    dh, dw = R.pair(dil)
    pt, pb, pl, pr, _ = R.pool_pads(padding, (h, w), (kh, kw), (sh, sw), (dh, dw))
    ho = R.pool_out_size(h, kh, sh, pt, pb, dh, ceil_mode)
    wo = R.pool_out_size(w, kw, sw, pl, pr, dw, ceil_mode)
    assume(ho >= 1 and wo >= 1)
    # every window must hold at least one input element (else PyTorch's answer is undefined)
    assume(all(any(0 <= i * sh - pt + p * dh < h for p in range(kh)) for i in range(ho)))
    assume(all(any(0 <= j * sw - pl + q * dw < w for q in range(kw)) for j in range(wo)))
    c = dict(layout=draw(layouts), dtype=draw(dtypes), n=draw(st.integers(0, 2)),
             c=draw(st.integers(1, 10)), h=h, w=w, k=(kh, kw), stride=stride, padding=padding,
             ceil_mode=ceil_mode, seed=draw(st.integers(0, 2**32 - 1)))
    if op == "max":
        c["dilation"] = dil
        c["data"] = draw(st.sampled_from(["rand", "ties", "nan"]))
    else:
        c["count_include_pad"] = draw(st.booleans())
        c["divisor_override"] = (draw(st.one_of(st.none(), st.integers(1, 9)))
                                 if not isinstance(padding, str) else None)
    return c


@settings(max_examples=EXAMPLES, deadline=None)
@given(pool_case("max"))
def test_max_pool2d(c):
    rng = _rng(c["seed"])
    shape = x_shape(c["n"], c["c"], c["h"], c["w"], c["layout"])
    if c["data"] == "rand":
        x = rand_data(rng, shape, c["dtype"])
    else:
        x = int_data(rng, shape, c["dtype"], -1, 1)
        if c["data"] == "nan" and x.size:
            x.reshape(-1)[rng.choice(x.size, max(1, x.size // 6), replace=False)] = np.nan
            x.reshape(-1)[rng.choice(x.size, max(1, x.size // 6), replace=False)] = -np.inf
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
              ceil_mode=c["ceil_mode"], layout=c["layout"])
    ry, ridx = R.max_pool2d(x, c["k"], **kw)
    y, idx = fastconv.max_pool2d(x, c["k"], return_indices=True, **kw)
    assert_same(y, ry, "values")
    assert_same(idx, ridx, "indices")
    go = int_data(rng, ry.shape, c["dtype"])
    assert_same(fastconv.max_pool2d_backward(go, idx, x.shape, c["k"], **kw),
                R.max_pool2d_backward(go, ridx, x.shape, c["layout"]), "backward")


@settings(max_examples=EXAMPLES, deadline=None)
@given(pool_case("avg"))
def test_avg_pool2d(c):
    rng = _rng(c["seed"])
    x = rand_data(rng, x_shape(c["n"], c["c"], c["h"], c["w"], c["layout"]), c["dtype"])
    kw = dict(stride=c["stride"], padding=c["padding"], ceil_mode=c["ceil_mode"],
              count_include_pad=c["count_include_pad"], divisor_override=c["divisor_override"],
              layout=c["layout"])
    ref = R.avg_pool2d(x, c["k"], **kw)
    assert_close(fastconv.avg_pool2d(x, c["k"], **kw), ref, R.avg_pool2d(np.abs(x), c["k"], **kw),
                 c["dtype"], "forward")
    go = rand_data(rng, ref.shape, c["dtype"])
    assert_close(fastconv.avg_pool2d_backward(go, x.shape, c["k"], **kw),
                 R.avg_pool2d_backward(go, x.shape, c["k"], **kw),
                 R.avg_pool2d_backward(np.abs(go), x.shape, c["k"], **kw), c["dtype"], "backward")


@settings(max_examples=EXAMPLES, deadline=None)
@given(layout=layouts, dtype=dtypes, n=st.integers(0, 2), ch=st.integers(1, 9),
       h=st.integers(1, 9), w=st.integers(1, 9), oh=st.integers(1, 10), ow=st.integers(1, 10),
       seed=st.integers(0, 2**32 - 1))
def test_adaptive_pools(layout, dtype, n, ch, h, w, oh, ow, seed):
    rng = _rng(seed)
    x = int_data(rng, x_shape(n, ch, h, w, layout), dtype, -2, 2)
    ra = R.adaptive_avg_pool2d(x, (oh, ow), layout)
    assert_close(fastconv.adaptive_avg_pool2d(x, (oh, ow), layout=layout), ra, None, dtype)
    go = int_data(rng, ra.shape, dtype)
    assert_close(fastconv.adaptive_avg_pool2d_backward(go, x.shape, layout=layout),
                 R.adaptive_avg_pool2d_backward(go, x.shape, layout),
                 R.adaptive_avg_pool2d_backward(np.abs(go), x.shape, layout), dtype)
    rm, ri = R.adaptive_max_pool2d(x, (oh, ow), layout)
    m, i = fastconv.adaptive_max_pool2d(x, (oh, ow), return_indices=True, layout=layout)
    assert_same(m, rm)
    assert_same(i, ri)
    assert_same(fastconv.adaptive_max_pool2d_backward(go, i, x.shape, layout=layout),
                R.adaptive_max_pool2d_backward(go, ri, x.shape, layout))
