"""The Stanford CS231n assignment interface, backed by fastconv.

CS231n's ``fast_layers.py`` needs a Cython extension built by the student; its ``*_naive`` layers
are loops. This module offers the same functions (``fast_layers``, ``layer_utils`` and the
``layers`` companions that CS231n nets import alongside them), backed by fastconv's SIMD/OpenMP
kernels, so a net written against that interface switches backend by changing one import::

    # from cs231n.fast_layers import *          # before
    # from cs231n.layer_utils import *
    from fastconv.compat.cs231n import *         # after: no Cython, no build step

Conventions (as in CS231n):

* NCHW: ``x`` (N, C, H, W), ``w`` (F, C, HH, WW), ``b`` (F,).
  ``conv_param = {'stride': s, 'pad': p}``: zero padding of ``p`` on every side; the output is
  (N, F, 1 + (H + 2p - HH) // s, 1 + (W + 2p - WW) // s).
* ``pool_param = {'pool_height': ph, 'pool_width': pw, 'stride': s}``: max pooling without
  padding; the output is (N, C, 1 + (H - ph) // s, 1 + (W - pw) // s).
* Every ``*_forward`` returns ``(out, cache)``; the matching ``*_backward(dout, cache)`` returns
  the gradients. Caches follow CS231n's naive layers: conv ``(x, w, b, conv_param)``, max pool
  ``(x, pool_param, indices)`` (the argmax of each window, so backward need not search again; a
  naive-style ``(x, pool_param)`` cache is accepted too), affine ``(x, w, b)``, relu ``x``, and
  the sandwich layers nest them: ``conv_relu`` ``(conv_cache, relu_cache)``, ``conv_relu_pool``
  ``(conv_cache, relu_cache, pool_cache)``, ``affine_relu`` ``(fc_cache, relu_cache)``.
* Max-pool backward routes each gradient to the argmax of its window; ties go to the first
  maximum in row-major window order, exactly as CS231n's ``max_pool_backward_naive`` (which uses
  ``np.argmax``).

Dtypes: float32 and float64 are kept (CS231n nets default to float64). Unlike the rest of
fastconv, which refuses mixed dtypes, the conv and pool functions here cast for you, because
student code often mixes them (float64 data with float32 weights): ``w`` and ``b`` are cast to
``x``'s dtype, ``dout`` is cast to the dtype of the cached ``x``, and the results and gradients
are in ``x``'s dtype. An ``x`` that is neither float32 nor float64 (integers, float16, lists) is
converted to float64. The pure-NumPy companions (``affine_*``, ``relu_*``, ``softmax_loss``,
``svm_loss``) follow ordinary NumPy type promotion, exactly as CS231n's own ``layers.py``.

Differences from CS231n's Cython ``*_fast`` functions: sizes that do not divide evenly are
floored (as the naive layers do) instead of failing an assertion, and fastconv's kernels are
multithreaded (``fastconv.set_num_threads``).
"""
from __future__ import annotations

import numpy as np

from .. import functional as _F

__all__ = [
    # fast_layers
    "conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast", "max_pool_backward_fast",
    "conv_forward_naive", "conv_backward_naive", "conv_forward_im2col", "conv_backward_im2col",
    "conv_forward_strides", "conv_backward_strides",
    "max_pool_forward_naive", "max_pool_backward_naive", "max_pool_forward_im2col",
    "max_pool_backward_im2col", "max_pool_forward_reshape", "max_pool_backward_reshape",
    # layer_utils
    "conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward",
    "affine_relu_forward", "affine_relu_backward",
    # layers
    "affine_forward", "affine_backward", "relu_forward", "relu_backward",
    "softmax_loss", "svm_loss",
]

_FLOATS = (np.float32, np.float64)


# --- helpers -----------------------------------------------------------------------------------
def _x_array(fn, x, name="x", dims="(N, C, H, W)"):
    """x as a 4-D float32/float64 ndarray (other dtypes -> float64)."""
    x = np.asarray(x)
    if x.dtype.type not in _FLOATS:
        x = x.astype(np.float64)
    if x.ndim != 4:
        raise ValueError(f"{fn}: {name} must be 4-D {dims}, got shape {x.shape}")
    return x


def _cast(a, dtype):
    """a as an ndarray of exactly `dtype` (no copy when it already is)."""
    a = np.asarray(a)
    return a if a.dtype.type is np.dtype(dtype).type else a.astype(dtype)


def _param(fn, params, pname, key):
    if not hasattr(params, "__getitem__"):
        raise TypeError(f"{fn}: {pname} must be a dict, got {type(params).__name__}")
    try:
        return params[key]
    except KeyError:
        raise KeyError(f"{fn}: {pname} has no {key!r} entry (got keys {list(params)!r})") from None


def _conv_geometry(fn, conv_param):
    """conv_param -> (stride, pad)."""
    return (_param(fn, conv_param, "conv_param", "stride"),
            _param(fn, conv_param, "conv_param", "pad"))


def _pool_geometry(fn, pool_param):
    """pool_param -> ((pool_height, pool_width), stride)."""
    return ((_param(fn, pool_param, "pool_param", "pool_height"),
             _param(fn, pool_param, "pool_param", "pool_width")),
            _param(fn, pool_param, "pool_param", "stride"))


def _cache(fn, cache, n, what):
    if not isinstance(cache, (tuple, list)) or len(cache) < n:
        raise ValueError(f"{fn}: cache must be the {what} tuple the matching forward returned, "
                         f"got {type(cache).__name__}"
                         + (f" of length {len(cache)}" if isinstance(cache, (tuple, list)) else ""))
    return cache


# --- fast_layers: convolution ------------------------------------------------------------------
def conv_forward_fast(x, w, b, conv_param):
    """Convolution (cross-correlation, as CS231n) with bias.

    x (N, C, H, W), w (F, C, HH, WW), b (F,) or None, conv_param {'stride', 'pad'}.
    Returns out (N, F, H', W') with H' = 1 + (H + 2*pad - HH) // stride (same for W'), and
    cache (x, w, b, conv_param) with w and b cast to x's dtype.
    """
    fn = "conv_forward_fast"
    x = _x_array(fn, x)
    w = _x_array(fn, _cast(w, x.dtype), "w", "(F, C, HH, WW)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"{fn}: w {w.shape} has {w.shape[1]} input channels but x {x.shape} has "
                         f"{x.shape[1]}")
    b = np.zeros(w.shape[0], x.dtype) if b is None else _cast(b, x.dtype)
    if b.shape != (w.shape[0],):
        raise ValueError(f"{fn}: b must have shape ({w.shape[0]},) for w {w.shape}, got {b.shape}")
    stride, pad = _conv_geometry(fn, conv_param)
    out = _F.conv2d(x, w, b, stride=stride, padding=pad)
    return out, (x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Gradients of conv_forward_fast: returns (dx, dw, db), in the cached x's dtype.

    dout has the shape of the forward output; cache is what the forward returned (any
    CS231n-style (x, w, b, conv_param, ...) tuple works).
    """
    fn = "conv_backward_fast"
    x, w, _, conv_param = _cache(fn, cache, 4, "(x, w, b, conv_param)")[:4]
    x = _x_array(fn, x)
    w = _cast(w, x.dtype)
    stride, pad = _conv_geometry(fn, conv_param)
    dx, dw, db = _F.conv2d_backward(_cast(dout, x.dtype), x, w, stride=stride, padding=pad,
                                    bias=True)
    return dx, dw, db


# --- fast_layers: max pooling ------------------------------------------------------------------
def max_pool_forward_fast(x, pool_param):
    """Max pooling. x (N, C, H, W), pool_param {'pool_height', 'pool_width', 'stride'}.

    Returns out (N, C, H', W') with H' = 1 + (H - pool_height) // stride, W' likewise, and cache
    (x, pool_param, indices): indices (int64, out's shape) is the flat position in the H*W plane
    of each window's first maximum.
    """
    fn = "max_pool_forward_fast"
    x = _x_array(fn, x)
    kernel, stride = _pool_geometry(fn, pool_param)
    out, idx = _F.max_pool2d(x, kernel, stride=stride, return_indices=True)
    return out, (x, pool_param, idx)


def max_pool_backward_fast(dout, cache):
    """Gradient of max_pool_forward_fast: dx (x's shape and dtype), each dout element added to
    the first maximum of its window (as CS231n's max_pool_backward_naive)."""
    fn = "max_pool_backward_fast"
    cache = _cache(fn, cache, 2, "(x, pool_param, indices)")
    x, pool_param = cache[0], cache[1]
    x = _x_array(fn, x)
    kernel, stride = _pool_geometry(fn, pool_param)
    idx = cache[2] if len(cache) >= 3 else None
    if not (isinstance(idx, np.ndarray) and idx.dtype == np.int64):  # naive-style (x, pool_param)
        _, idx = _F.max_pool2d(x, kernel, stride=stride, return_indices=True)
    return _F.max_pool2d_backward(_cast(dout, x.dtype), idx, x.shape, kernel, stride=stride)


# CS231n's other implementations of the same layers: all backed by fastconv.
conv_forward_naive = conv_forward_im2col = conv_forward_strides = conv_forward_fast
conv_backward_naive = conv_backward_im2col = conv_backward_strides = conv_backward_fast
max_pool_forward_naive = max_pool_forward_im2col = max_pool_forward_reshape = max_pool_forward_fast
max_pool_backward_naive = max_pool_backward_im2col = max_pool_backward_reshape = \
    max_pool_backward_fast


# --- layers: the pure-NumPy companions ---------------------------------------------------------
def affine_forward(x, w, b):
    """Fully connected layer: x (N, d_1, ..., d_k) is flattened to (N, D); w (D, M), b (M,).
    Returns out (N, M) and cache (x, w, b)."""
    out = np.reshape(x, (x.shape[0], -1)) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Gradients of affine_forward: (dx of x's shape, dw (D, M), db (M,))."""
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = np.reshape(x, (x.shape[0], -1)).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """max(0, x); cache x."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dout where the cached x > 0, else 0."""
    dx = np.array(dout, copy=True)
    dx[cache <= 0] = 0
    return dx


def softmax_loss(x, y):
    """Softmax cross-entropy. x (N, C) scores, y (N,) labels in [0, C).
    Returns (loss averaged over N, dx (N, C))."""
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    n = x.shape[0]
    rows = np.arange(n)
    loss = -np.sum(log_probs[rows, y]) / n
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    dx /= n
    return loss, dx


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss with margin 1. x (N, C) scores, y (N,) labels.
    Returns (loss averaged over N, dx (N, C))."""
    n = x.shape[0]
    rows = np.arange(n)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1.0)
    margins[rows, y] = 0
    loss = np.sum(margins) / n
    positive = (margins > 0).astype(margins.dtype)
    dx = positive
    dx[rows, y] -= positive.sum(axis=1)
    dx /= n
    return loss, dx


# --- layer_utils: sandwich layers --------------------------------------------------------------
def affine_relu_forward(x, w, b):
    """affine -> ReLU. Returns out and cache (fc_cache, relu_cache)."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Gradients of affine_relu_forward: (dx, dw, db)."""
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def conv_relu_forward(x, w, b, conv_param):
    """conv -> ReLU. Returns out and cache (conv_cache, relu_cache)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Gradients of conv_relu_forward: (dx, dw, db)."""
    conv_cache, relu_cache = cache
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """conv -> ReLU -> max pool. Returns out and cache (conv_cache, relu_cache, pool_cache)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Gradients of conv_relu_pool_forward: (dx, dw, db)."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache)
