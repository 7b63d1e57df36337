"""fastconv.compat.cs231n: the Stanford CS231n fast_layers / layer_utils / layers interface.

Everything the adapter returns is checked against references written here from the CS231n
definitions (plain loops), and every backward against centered-difference numeric gradients
(CS231n's eval_numerical_gradient_array / eval_numerical_gradient, rewritten here) with CS231n's
rel_error < 1e-8 in float64. Inputs are drawn so that no ReLU input and no max-pool runner-up is
within a safety margin of a kink: a numeric derivative across a kink is meaningless.
"""
import types

import numpy as np
import pytest

import fastconv
import fastconv.compat.cs231n as L

H_STEP = 1e-5
MARGIN = 1e-3  # no ReLU input within MARGIN of 0, no pool-window runner-up within MARGIN of the max
TOL = 1e-8


# --- CS231n's gradient-check utilities (rewritten from their definitions) -----------------------
def rel_error(x, y):
    """max |x - y| / max(1e-8, |x| + |y|), elementwise (CS231n)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


# The numeric gradients make thousands of tiny kernel calls; they run on one thread (results are
# bitwise identical for every thread count) because on a loaded 2-core machine each tiny OpenMP
# fork-join can wait milliseconds for a descheduled worker. The analytic gradients under test
# use the default thread count.
def eval_numerical_gradient_array(f, x, df, h=H_STEP):
    """Numeric gradient of sum(f(x) * df) with respect to x (x is perturbed in place, restored)."""
    with fastconv.threads(1):
        return _numerical_gradient_array(f, x, df, h)


def eval_numerical_gradient(f, x, h=H_STEP):
    """Numeric gradient of the scalar f(x) with respect to x (perturbed in place, restored)."""
    with fastconv.threads(1):
        return _numerical_gradient(f, x, h)


def _numerical_gradient_array(f, x, df, h):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def _numerical_gradient(f, x, h):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = f(x)
        x[ix] = old - h
        neg = f(x)
        x[ix] = old
        grad[ix] = (pos - neg) / (2 * h)
        it.iternext()
    return grad


# --- naive references (loops, from the CS231n definitions) ---------------------------------------
def naive_conv_forward(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    n, c, hgt, wid = x.shape
    f, _, hh, ww = w.shape
    ho, wo = 1 + (hgt + 2 * p - hh) // s, 1 + (wid + 2 * p - ww) // s
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((n, f, ho, wo), np.result_type(x, w))
    for i in range(n):
        for k in range(f):
            for r in range(ho):
                for q in range(wo):
                    out[i, k, r, q] = np.sum(xp[i, :, r * s:r * s + hh, q * s:q * s + ww] * w[k]) + b[k]
    return out, (x, w, b, conv_param)


def naive_conv_backward(dout, cache):
    x, w, b, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    n, f, ho, wo = dout.shape
    for i in range(n):
        for k in range(f):
            for r in range(ho):
                for q in range(wo):
                    win = (i, slice(None), slice(r * s, r * s + hh), slice(q * s, q * s + ww))
                    dw[k] += xp[win] * dout[i, k, r, q]
                    dxp[win] += w[k] * dout[i, k, r, q]
    return dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]], dw, db


def naive_pool_forward(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, hgt, wid = x.shape
    ho, wo = 1 + (hgt - ph) // s, 1 + (wid - pw) // s
    out = np.zeros((n, c, ho, wo), x.dtype)
    for i in range(n):
        for k in range(c):
            for r in range(ho):
                for q in range(wo):
                    out[i, k, r, q] = np.max(x[i, k, r * s:r * s + ph, q * s:q * s + pw])
    return out, (x, pool_param)


def naive_pool_backward(dout, cache):
    """Each dout element goes to np.argmax of its window (the first maximum), as CS231n."""
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    n, c, ho, wo = dout.shape
    for i in range(n):
        for k in range(c):
            for r in range(ho):
                for q in range(wo):
                    a = np.argmax(x[i, k, r * s:r * s + ph, q * s:q * s + pw])
                    dx[i, k, r * s + a // pw, q * s + a % pw] += dout[i, k, r, q]
    return dx


# A complete naive backend with the adapter's names: the "before" side of the one-import switch.
NAIVE = types.SimpleNamespace(
    conv_forward_fast=naive_conv_forward, conv_backward_fast=naive_conv_backward,
    max_pool_forward_fast=naive_pool_forward, max_pool_backward_fast=naive_pool_backward,
    affine_forward=L.affine_forward, affine_backward=L.affine_backward,
    relu_forward=L.relu_forward, relu_backward=L.relu_backward, softmax_loss=L.softmax_loss)


# --- data with kinks kept at a distance ---------------------------------------------------------
def pool_gaps_ok(s, pool_param):
    """Every window's maximum beats its runner-up by > MARGIN, unless the window is all zeros
    (ReLU output that stays 0 under the perturbations)."""
    ph, pw, st = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, hgt, wid = s.shape
    for r in range(1 + (hgt - ph) // st):
        for q in range(1 + (wid - pw) // st):
            win = np.sort(s[:, :, r * st:r * st + ph, q * st:q * st + pw].reshape(n, c, -1), axis=2)
            top, second = win[:, :, -1], win[:, :, -2]
            if np.any((top - second <= MARGIN) & (top != 0)):
                return False
    return True


def draw(make, ok, tries=200):
    """make(rng) -> data; the first draw (seeds 0, 1, ...) for which ok(data) holds."""
    for seed in range(tries):
        data = make(np.random.default_rng(seed))
        if ok(data):
            return data
    raise AssertionError("no draw kept its distance from the kinks")  # pragma: no cover


CONV_CASES = [  # (x shape, w shape, stride, pad)
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
    ((2, 3, 8, 9), (3, 3, 3, 3), 2, 1),   # (W + 2p - WW) not divisible by the stride: floored
    ((1, 2, 6, 5), (2, 2, 2, 3), 1, 0),
    ((3, 1, 9, 9), (2, 1, 5, 5), 3, 2),
]
POOL_CASES = [  # (x shape, pool_param)
    ((2, 3, 8, 8), dict(pool_height=2, pool_width=2, stride=2)),
    ((2, 2, 7, 9), dict(pool_height=3, pool_width=2, stride=2)),
    ((1, 3, 7, 7), dict(pool_height=3, pool_width=3, stride=1)),  # overlapping windows
    ((2, 1, 9, 6), dict(pool_height=2, pool_width=3, stride=3)),
]


# --- forward against the naive references --------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES)
def test_conv_forward_matches_naive(xs, ws, stride, pad, dtype):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    cp = {"stride": stride, "pad": pad}
    out, cache = L.conv_forward_fast(x, w, b, cp)
    ref, _ = naive_conv_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), cp)
    assert out.dtype == dtype and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-4)
    cx, cw, cb, ccp = cache  # CS231n's conv cache: (x, w, b, conv_param)
    assert cx is x and cw is w and cb is b and ccp is cp


@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES)
def test_conv_backward_matches_naive(xs, ws, stride, pad):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    cp = {"stride": stride, "pad": pad}
    out, cache = L.conv_forward_fast(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    got = L.conv_backward_fast(dout, cache)
    want = naive_conv_backward(dout, (x, w, b, cp))
    for g, r in zip(got, want):
        assert g.shape == r.shape and g.dtype == np.float64
        np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, pp", POOL_CASES)
def test_pool_forward_backward_match_naive(xs, pp, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(xs).astype(dtype)
    out, cache = L.max_pool_forward_fast(x, pp)
    ref, _ = naive_pool_forward(x, pp)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref)  # max is exact
    assert cache[0] is x and cache[1] is pp
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = L.max_pool_backward_fast(dout, cache)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, naive_pool_backward(dout, (x, pp)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("xs, pp", POOL_CASES)
def test_pool_backward_ties_go_to_first_max(xs, pp):
    """Integer-valued inputs with many ties (whole windows of equal values): the gradient goes to
    np.argmax of each window, exactly like CS231n's max_pool_backward_naive."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, size=xs).astype(np.float64)
    x[0, 0] = 1.0  # an all-equal plane
    out, cache = L.max_pool_forward_fast(x, pp)
    dout = rng.integers(1, 50, size=out.shape).astype(np.float64)
    dx = L.max_pool_backward_fast(dout, cache)
    np.testing.assert_array_equal(dx, naive_pool_backward(dout, (x, pp)))
    # a naive-style (x, pool_param) cache is accepted too and routes identically
    np.testing.assert_array_equal(L.max_pool_backward_naive(dout, (x, pp)), dx)


def test_conv_relu_pool_forward_matches_naive():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((3, 3, 3, 3)), rng.standard_normal(3)
    cp, pp = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = L.conv_relu_pool_forward(x, w, b, cp, pp)
    a, _ = naive_conv_forward(x, w, b, cp)
    ref, _ = naive_pool_forward(np.maximum(a, 0), pp)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    conv_cache, relu_cache, pool_cache = cache
    assert len(conv_cache) == 4 and relu_cache.shape == a.shape and pool_cache[1] is pp
    out2, (cc, rc) = L.conv_relu_forward(x, w, b, cp)
    np.testing.assert_allclose(out2, np.maximum(a, 0), rtol=1e-12, atol=1e-12)


# --- numeric gradient checks (float64, rel_error < 1e-8) -----------------------------------------
@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES[:3])
def test_conv_numeric_gradient(xs, ws, stride, pad):
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    cp = {"stride": stride, "pad": pad}
    out, cache = L.conv_forward_fast(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.conv_backward_fast(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: L.conv_forward_fast(v, w, b, cp)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda v: L.conv_forward_fast(x, v, b, cp)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda v: L.conv_forward_fast(x, w, v, cp)[0], b, dout)
    assert rel_error(dx, dx_num) < TOL
    assert rel_error(dw, dw_num) < TOL
    assert rel_error(db, db_num) < TOL


@pytest.mark.parametrize("xs, pp", POOL_CASES)
def test_max_pool_numeric_gradient(xs, pp):
    x = draw(lambda rng: rng.standard_normal(xs), lambda v: pool_gaps_ok(v, pp))
    out, cache = L.max_pool_forward_fast(x, pp)
    dout = np.random.default_rng(7).standard_normal(out.shape)
    dx = L.max_pool_backward_fast(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: L.max_pool_forward_fast(v, pp)[0], x, dout)
    assert rel_error(dx, dx_num) < TOL


def _conv_data(rng, xs=(2, 3, 6, 6), ws=(3, 3, 3, 3)):
    return rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])


def test_conv_relu_numeric_gradient():
    cp = {"stride": 1, "pad": 1}
    x, w, b = draw(_conv_data,
                   lambda d: np.min(np.abs(naive_conv_forward(*d, cp)[0])) > MARGIN)
    out, cache = L.conv_relu_forward(x, w, b, cp)
    dout = np.random.default_rng(8).standard_normal(out.shape)
    dx, dw, db = L.conv_relu_backward(dout, cache)
    f = L.conv_relu_forward
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: f(v, w, b, cp)[0], x, dout)) < TOL
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: f(x, v, b, cp)[0], w, dout)) < TOL
    assert rel_error(db, eval_numerical_gradient_array(lambda v: f(x, w, v, cp)[0], b, dout)) < TOL


def test_conv_relu_pool_numeric_gradient():
    cp, pp = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}

    def ok(d):
        a = naive_conv_forward(*d, cp)[0]
        return np.min(np.abs(a)) > MARGIN and pool_gaps_ok(np.maximum(a, 0), pp)

    x, w, b = draw(lambda rng: _conv_data(rng, (2, 3, 8, 8)), ok)
    out, cache = L.conv_relu_pool_forward(x, w, b, cp, pp)
    dout = np.random.default_rng(9).standard_normal(out.shape)
    dx, dw, db = L.conv_relu_pool_backward(dout, cache)
    f = L.conv_relu_pool_forward
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: f(v, w, b, cp, pp)[0], x, dout)) < TOL
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: f(x, v, b, cp, pp)[0], w, dout)) < TOL
    assert rel_error(db, eval_numerical_gradient_array(lambda v: f(x, w, v, cp, pp)[0], b, dout)) < TOL


def test_affine_and_affine_relu_numeric_gradient():
    rng = np.random.default_rng(10)
    x, w, b = rng.standard_normal((4, 2, 3, 2)), rng.standard_normal((12, 5)), rng.standard_normal(5)
    out, cache = L.affine_forward(x, w, b)
    np.testing.assert_allclose(out, x.reshape(4, -1) @ w + b, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.affine_backward(dout, cache)
    assert dx.shape == x.shape
    f = L.affine_forward
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: f(v, w, b)[0], x, dout)) < TOL
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: f(x, v, b)[0], w, dout)) < TOL
    assert rel_error(db, eval_numerical_gradient_array(lambda v: f(x, w, v)[0], b, dout)) < TOL

    x, w, b = draw(lambda r: (r.standard_normal((4, 6)), r.standard_normal((6, 5)), r.standard_normal(5)),
                   lambda d: np.min(np.abs(d[0] @ d[1] + d[2])) > MARGIN)
    out, cache = L.affine_relu_forward(x, w, b)
    dx, dw, db = L.affine_relu_backward(dout, cache)
    f = L.affine_relu_forward
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: f(v, w, b)[0], x, dout)) < TOL
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: f(x, v, b)[0], w, dout)) < TOL
    assert rel_error(db, eval_numerical_gradient_array(lambda v: f(x, w, v)[0], b, dout)) < TOL


def test_relu_numeric_gradient():
    x = draw(lambda r: r.standard_normal((3, 4, 5)), lambda v: np.min(np.abs(v)) > MARGIN)
    out, cache = L.relu_forward(x)
    np.testing.assert_array_equal(out, np.where(x > 0, x, 0))
    dout = np.random.default_rng(11).standard_normal(x.shape)
    dx = L.relu_backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: L.relu_forward(v)[0], x, dout)) < TOL


def test_softmax_and_svm_loss_numeric_gradient():
    rng = np.random.default_rng(12)
    n, c = 50, 10
    x, y = 0.001 * rng.standard_normal((n, c)), rng.integers(c, size=n)
    loss, dx = L.softmax_loss(x, y)
    assert abs(loss - np.log(c)) < 1e-2  # near-uniform scores: loss ~ log(C)
    dx_num = eval_numerical_gradient(lambda v: L.softmax_loss(v, y)[0], x)
    assert rel_error(dx, dx_num) < TOL
    # reference value from the definition
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    assert abs(loss - np.mean(-np.log(p[np.arange(n), y]))) < 1e-12

    def svm_ok(v):
        m = v - v[np.arange(n), y][:, None] + 1
        m[np.arange(n), y] = 10
        return np.min(np.abs(m)) > MARGIN

    x = draw(lambda r: r.standard_normal((n, c)), svm_ok)
    loss, dx = L.svm_loss(x, y)
    m = np.maximum(0, x - x[np.arange(n), y][:, None] + 1)
    m[np.arange(n), y] = 0
    assert abs(loss - m.sum() / n) < 1e-12
    assert rel_error(dx, eval_numerical_gradient(lambda v: L.svm_loss(v, y)[0], x)) < TOL


# --- a CS231n-style three-layer ConvNet --------------------------------------------------------
class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax (CS231n's cnn.py), written
    against the layer module `layers` so the backend is one name."""

    def __init__(self, layers, input_dim=(3, 8, 8), num_filters=3, filter_size=3, hidden_dim=7,
                 num_classes=10, weight_scale=1e-1, reg=0.1, seed=0):
        self.L, self.reg = layers, reg
        c, h, w = input_dim
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": weight_scale * rng.standard_normal((num_filters, c, filter_size, filter_size)),
            "b1": 0.1 * rng.standard_normal(num_filters),
            "W2": weight_scale * rng.standard_normal((num_filters * (h // 2) * (w // 2), hidden_dim)),
            "b2": 0.1 * rng.standard_normal(hidden_dim),
            "W3": weight_scale * rng.standard_normal((hidden_dim, num_classes)),
            "b3": 0.1 * rng.standard_normal(num_classes),
        }
        self.conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

    def activations(self, X):
        """(conv output, hidden pre-activation) for the kink-distance check."""
        p, L = self.params, self.L
        a, _ = L.conv_forward_fast(X, p["W1"], p["b1"], self.conv_param)
        s, _ = L.max_pool_forward_fast(np.maximum(a, 0), self.pool_param)
        return a, s, s.reshape(len(X), -1) @ p["W2"] + p["b2"]

    def loss(self, X, y=None):
        p, L = self.params, self.L
        a, c1 = L.conv_forward_fast(X, p["W1"], p["b1"], self.conv_param)
        r, c2 = L.relu_forward(a)
        s, c3 = L.max_pool_forward_fast(r, self.pool_param)
        h, c4 = L.affine_forward(s, p["W2"], p["b2"])
        hr, c5 = L.relu_forward(h)
        scores, c6 = L.affine_forward(hr, p["W3"], p["b3"])
        if y is None:
            return scores
        loss, d = L.softmax_loss(scores, y)
        loss += 0.5 * self.reg * sum(np.sum(p[k] ** 2) for k in ("W1", "W2", "W3"))
        grads = {}
        d, grads["W3"], grads["b3"] = L.affine_backward(d, c6)
        d = L.relu_backward(d, c5)
        d, grads["W2"], grads["b2"] = L.affine_backward(d, c4)
        d = L.max_pool_backward_fast(d, c3)
        d = L.relu_backward(d, c2)
        _, grads["W1"], grads["b1"] = L.conv_backward_fast(d, c1)
        for k in ("W1", "W2", "W3"):
            grads[k] += self.reg * p[k]
        return loss, grads


def _net_data(rng):
    X, y = rng.standard_normal((2, 3, 8, 8)), rng.integers(10, size=2)
    return ThreeLayerConvNet(L, seed=int(rng.integers(1 << 30))), X, y


def _net_ok(d):
    net, X, _ = d
    a, s, h = net.activations(X)
    return (np.min(np.abs(a)) > MARGIN and pool_gaps_ok(np.maximum(a, 0), net.pool_param)
            and np.min(np.abs(h)) > MARGIN)


# A centered difference of the scalar loss (~2.3) carries ~1e-11 absolute rounding noise
# (a few ulps of the loss / 2h), so an entry of size g can be checked to ~1e-11/g relative at best.
# The net's gradient has entries of every size (reg * W plus data terms that may cancel), so the
# draw keeps every nonzero entry >= GRAD_FLOOR, the elementwise CS231n rel_error bound is 1e-6,
# and the 1e-8 bound is normwise: max |analytic - numeric| <= 1e-8 * max |analytic|.
GRAD_FLOOR = 1e-4


def _net_grads_ok(d):
    net, X, y = d
    if not _net_ok(d):
        return False
    g = np.concatenate([v.ravel() for v in net.loss(X, y)[1].values()])
    return np.min(np.abs(g[g != 0])) >= GRAD_FLOOR


def test_three_layer_convnet_numeric_gradients():
    net, X, y = draw(_net_data, _net_grads_ok)
    loss, grads = net.loss(X, y)
    assert np.isfinite(loss) and set(grads) == set(net.params)
    scores = net.loss(X)
    assert scores.shape == (2, 10)
    for name, param in net.params.items():
        num = eval_numerical_gradient(lambda _: net.loss(X, y)[0], param)
        g = grads[name]
        assert g.shape == param.shape and g.dtype == np.float64
        err = rel_error(g, num)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"
        normwise = np.max(np.abs(g - num)) / np.max(np.abs(g))
        assert normwise < TOL, f"{name}: normwise relative error {normwise:.2e}"


def test_three_layer_convnet_one_import_switch():
    """The same net on the naive loop backend and on fastconv: same scores, loss and gradients."""
    net, X, y = draw(_net_data, _net_ok)
    naive = ThreeLayerConvNet(NAIVE)
    naive.params = {k: v.copy() for k, v in net.params.items()}
    np.testing.assert_allclose(net.loss(X), naive.loss(X), rtol=1e-12, atol=1e-12)
    (l1, g1), (l2, g2) = net.loss(X, y), naive.loss(X, y)
    assert abs(l1 - l2) < 1e-12
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-10, atol=1e-12)


# --- interface details ---------------------------------------------------------------------------
def test_aliases_and_star_import():
    assert L.conv_forward_naive is L.conv_forward_im2col is L.conv_forward_strides is L.conv_forward_fast
    assert L.conv_backward_naive is L.conv_backward_im2col is L.conv_backward_strides is L.conv_backward_fast
    assert (L.max_pool_forward_naive is L.max_pool_forward_im2col is L.max_pool_forward_reshape
            is L.max_pool_forward_fast)
    assert (L.max_pool_backward_naive is L.max_pool_backward_im2col is L.max_pool_backward_reshape
            is L.max_pool_backward_fast)
    ns = {}
    exec("from fastconv.compat.cs231n import *", ns)
    for name in ("conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast",
                 "max_pool_backward_fast", "conv_relu_forward", "conv_relu_backward",
                 "conv_relu_pool_forward", "conv_relu_pool_backward", "affine_forward",
                 "affine_backward", "relu_forward", "relu_backward", "affine_relu_forward",
                 "affine_relu_backward", "softmax_loss", "svm_loss", "conv_forward_naive",
                 "max_pool_backward_reshape"):
        assert callable(ns[name]), name
    import fastconv.compat
    assert fastconv.compat.cs231n is L


def test_dtypes_kept_and_mixed_dtypes_cast_to_x():
    rng = np.random.default_rng(13)
    x64, w64, b64 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    cp, pp = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    ref, _ = L.conv_forward_fast(x64, w64.astype(np.float32).astype(np.float64),
                                 b64.astype(np.float32).astype(np.float64), cp)
    # float64 data with float32 weights (common in student code): computed in float64
    out, cache = L.conv_forward_fast(x64, w64.astype(np.float32), b64.astype(np.float32), cp)
    assert out.dtype == np.float64 and cache[1].dtype == np.float64 and cache[2].dtype == np.float64
    np.testing.assert_array_equal(out, ref)
    dx, dw, db = L.conv_backward_fast(np.ones(out.shape, np.float32), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float64
    # float32 data: everything float32, whatever the weights' dtype
    x32 = x64.astype(np.float32)
    out32, cache32 = L.conv_forward_fast(x32, w64, b64, cp)
    assert out32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in L.conv_backward_fast(out32.astype(np.float64), cache32))
    p32, pc = L.conv_relu_pool_forward(x32, w64, b64, cp, pp)
    assert p32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in L.conv_relu_pool_backward(np.ones_like(p32), pc))
    # integer data becomes float64
    xi = rng.integers(-3, 3, size=(1, 3, 6, 6))
    outi, _ = L.conv_forward_fast(xi, w64, b64, cp)
    assert outi.dtype == np.float64
    np.testing.assert_allclose(outi, naive_conv_forward(xi.astype(np.float64), w64, b64, cp)[0],
                               rtol=1e-12, atol=1e-12)
    mp, _ = L.max_pool_forward_fast(xi, pp)
    assert mp.dtype == np.float64


def test_non_contiguous_inputs():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((6, 3, 8, 8))[::2, :, ::-1]  # strided and reversed view
    w = rng.standard_normal((3, 3, 3, 3)).transpose(0, 1, 3, 2)
    b = rng.standard_normal(3)
    cp = {"stride": 2, "pad": 1}
    out, cache = L.conv_forward_fast(x, w, b, cp)
    np.testing.assert_allclose(out, naive_conv_forward(x, w, b, cp)[0], rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)[..., ::1]
    for g, r in zip(L.conv_backward_fast(dout, cache), naive_conv_backward(dout, (x, w, b, cp))):
        np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-11)


def test_clear_errors():
    x, w, b = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    with pytest.raises(KeyError, match="pad"):
        L.conv_forward_fast(x, w, b, {"stride": 1})
    with pytest.raises(KeyError, match="pool_width"):
        L.max_pool_forward_fast(x, {"pool_height": 2, "stride": 2})
    with pytest.raises(ValueError, match="input channels"):
        L.conv_forward_fast(x, np.zeros((2, 4, 3, 3)), b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="4-D"):
        L.conv_forward_fast(x[0], w, b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="b must have shape"):
        L.conv_forward_fast(x, w, np.zeros(3), {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="cache"):
        L.conv_backward_fast(np.zeros((1, 2, 3, 3)), (x, w))
    _, cache = L.conv_forward_fast(x, w, b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError):  # dout of the wrong shape
        L.conv_backward_fast(np.zeros((1, 2, 4, 4)), cache)
