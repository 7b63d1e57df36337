"""The NumPy baseline: conv and pooling the way CS231n-style NumPy nets do them.

All arrays are NCHW (weights OIHW), any float dtype (the benchmark uses float32); no float64
upcasting, so what is timed is what such a net runs.

Convolution
  forward     im2col — a loop over the KH*KW kernel offsets, each copying one strided window of
              the zero-padded input into the (C*KH*KW, N*Ho*Wo) matrix (row order c, kh, kw;
              column order n, ho, wo) — then one OpenBLAS matmul with the (K, C/g*KH*KW) weight
              matrix (+ bias), and a copy to C-contiguous NCHW.
  input grad  matmul W^T @ dY, then col2im by the same loop over kernel offsets, each adding one
              strided window back (``+=`` on a strided view; never ``np.add.at``, which is ~20x
              slower), then the padding is cropped off.
  weight grad dY @ im2col(x)^T. The im2col matrix is rebuilt from x (the benchmark gives every
              candidate x, not a cached im2col buffer, which would cost C*KH*KW*N*Ho*Wo floats
              of memory between forward and backward).
  groups      the im2col matrix is built once for all channels; the G groups are the batch
              dimension of one stacked ``np.matmul`` (G GEMMs of (K/G, C/G*KH*KW) x (.., N*Ho*Wo)).

Pooling
  max         forward loops over the k*k window offsets with a running maximum on strided views
              of the (-inf)-padded input, recording the first maximum's offset (first maximum in
              row-major window order wins, as PyTorch); the cache holds that uint8 offset. Backward
              loops over the offsets again, routing dY where the offset matches (assignment when
              the windows tile the input, ``+=`` into a zero-padded buffer when they overlap).
  avg         non-overlapping, unpadded, exactly tiling windows: a reshape to (N,C,Ho,k,Wo,k) and a
              mean / a broadcast; otherwise a loop over offsets on the zero-padded input
              (count_include_pad=True, as the PyTorch default).
  global avg  mean over (H, W), keeping them as (N, C, 1, 1); backward broadcasts dY / (H*W).

Everything is checked against direct loops (and torch when installed) in bench/test_baselines.py.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

IntPair = Union[int, Sequence[int]]


def _pair(v: IntPair) -> Tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def conv_output_size(size: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _window(a: np.ndarray, h0: int, w0: int, ho: int, wo: int, sh: int, sw: int) -> np.ndarray:
    """a[..., h0 + sh*i, w0 + sw*j] for i < ho, j < wo, as a strided view."""
    return a[..., h0:h0 + sh * (ho - 1) + 1:sh, w0:w0 + sw * (wo - 1) + 1:sw]


def _pad(x: np.ndarray, ph: int, pw: int, value: float = 0.0) -> np.ndarray:
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    xp = np.empty((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    # border only, then the interior: one pass over the data instead of np.pad's several
    xp[:, :, :ph, :] = value
    xp[:, :, h + ph:, :] = value
    xp[:, :, ph:h + ph, :pw] = value
    xp[:, :, ph:h + ph, w + pw:] = value
    xp[:, :, ph:h + ph, pw:w + pw] = x
    return xp


# ------------------------------------------------------------------------------------------------
# convolution
# ------------------------------------------------------------------------------------------------
def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups):
    n, c, h, w = x_shape
    k, cg, kh, kw = w_shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    if c != cg * groups or k % groups:
        raise ValueError(f"conv: x has {c} channels, weight {w_shape}, groups={groups}")
    ho = conv_output_size(h, kh, sh, ph, dh)
    wo = conv_output_size(w, kw, sw, pw, dw)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"conv: empty output {ho}x{wo}")
    return (n, c, h, w, k, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw)


def im2col(x: np.ndarray, kh: int, kw: int, stride: IntPair = 1, padding: IntPair = 0,
           dilation: IntPair = 1) -> np.ndarray:
    """The (C*KH*KW, N*Ho*Wo) im2col matrix of an NCHW x: rows (c, i, j), columns (n, ho, wo)."""
    n, c, h, w = x.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    ho = conv_output_size(h, kh, sh, ph, dh)
    wo = conv_output_size(w, kw, sw, pw, dw)
    xp = _pad(x, ph, pw)
    cols = np.empty((c, kh, kw, n, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = _window(xp, i * dh, j * dw, ho, wo, sh, sw).transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo)


def col2im(cols: np.ndarray, x_shape, kh: int, kw: int, stride: IntPair = 1,
           padding: IntPair = 0, dilation: IntPair = 1) -> np.ndarray:
    """Adjoint of im2col: sums every column entry back into its input position (NCHW result)."""
    n, c, h, w = x_shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    ho = conv_output_size(h, kh, sh, ph, dh)
    wo = conv_output_size(w, kw, sw, pw, dw)
    c6 = cols.reshape(c, kh, kw, n, ho, wo)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            _window(dxp, i * dh, j * dw, ho, wo, sh, sw)[...] += c6[:, i, j].transpose(1, 0, 2, 3)
    if ph or pw:
        return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + w])
    return dxp


def _grad_matrix(dy: np.ndarray) -> np.ndarray:
    """dY (N, K, Ho, Wo) as the (K, N*Ho*Wo) matrix matching im2col's column order."""
    n, k, ho, wo = dy.shape
    return np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(k, n * ho * wo)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None, *,
                   stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
                   groups: int = 1) -> np.ndarray:
    """y = conv2d(x, w) + b via im2col + matmul. x (N,C,H,W), w (K,C/g,KH,KW) -> (N,K,Ho,Wo)."""
    n, c, h, wd, k, kh, kw, ho, wo, *_ = _conv_geometry(x.shape, w.shape, stride, padding,
                                                        dilation, groups)
    cols = im2col(x, kh, kw, stride, padding, dilation)
    if groups == 1:
        res = w.reshape(k, -1) @ cols
    else:
        g = groups
        res = np.matmul(w.reshape(g, k // g, -1), cols.reshape(g, -1, cols.shape[1]))
        res = res.reshape(k, -1)
    if b is not None:
        res += b.reshape(k, 1)
    return np.ascontiguousarray(res.reshape(k, n, ho, wo).transpose(1, 0, 2, 3))


def conv2d_input_grad(dy: np.ndarray, w: np.ndarray, x_shape, *, stride: IntPair = 1,
                      padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1) -> np.ndarray:
    """dL/dx = col2im(W^T @ dY)."""
    n, c, h, wd, k, kh, kw, ho, wo, *_ = _conv_geometry(tuple(x_shape), w.shape, stride, padding,
                                                        dilation, groups)
    dym = _grad_matrix(dy)
    if groups == 1:
        dcols = w.reshape(k, -1).T @ dym
    else:
        g = groups
        dcols = np.matmul(w.reshape(g, k // g, -1).transpose(0, 2, 1),
                          dym.reshape(g, k // g, -1)).reshape(c * kh * kw, -1)
    return col2im(dcols, x_shape, kh, kw, stride, padding, dilation)


def conv2d_weight_grad(dy: np.ndarray, x: np.ndarray, w_shape, *, stride: IntPair = 1,
                       padding: IntPair = 0, dilation: IntPair = 1,
                       groups: int = 1) -> np.ndarray:
    """dL/dW = dY @ im2col(x)^T, reshaped to (K, C/g, KH, KW)."""
    n, c, h, wd, k, kh, kw, ho, wo, *_ = _conv_geometry(x.shape, tuple(w_shape), stride, padding,
                                                        dilation, groups)
    cols = im2col(x, kh, kw, stride, padding, dilation)
    dym = _grad_matrix(dy)
    if groups == 1:
        dw = dym @ cols.T
    else:
        g = groups
        dw = np.matmul(dym.reshape(g, k // g, -1), cols.reshape(g, -1, cols.shape[1])
                       .transpose(0, 2, 1))
    return dw.reshape(tuple(w_shape))


def conv2d_bias_grad(dy: np.ndarray) -> np.ndarray:
    return dy.sum(axis=(0, 2, 3))


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw, db), each as the functions above compute them."""
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (conv2d_input_grad(dy, w, x.shape, **kw), conv2d_weight_grad(dy, x, w.shape, **kw),
            conv2d_bias_grad(dy))


# ------------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------------
def _pool_geometry(x_shape, kernel_size, stride, padding):
    n, c, h, w = x_shape
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    ho = conv_output_size(h, kh, sh, ph)
    wo = conv_output_size(w, kw, sw, pw)
    # the windows tile the input exactly: no overlap, no padding, nothing left over
    tiles = (kh, kw) == (sh, sw) and ph == pw == 0 and h == ho * kh and w == wo * kw
    return n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, tiles


class MaxPoolCache:
    """What max_pool2d_backward needs: the window offset (row-major in the window) of each max."""

    __slots__ = ("arg", "x_shape", "kernel", "stride", "padding")

    def __init__(self, arg, x_shape, kernel, stride, padding):
        self.arg, self.x_shape = arg, tuple(x_shape)
        self.kernel, self.stride, self.padding = kernel, stride, padding


def max_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: Optional[IntPair] = None,
                       padding: IntPair = 0) -> Tuple[np.ndarray, MaxPoolCache]:
    """(out, cache); padding never wins, the first maximum in row-major window order wins."""
    n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, _ = _pool_geometry(x.shape, kernel_size, stride,
                                                                   padding)
    xp = _pad(x, ph, pw, -np.inf)
    out = np.array(_window(xp, 0, 0, ho, wo, sh, sw))      # offset 0: a contiguous copy
    arg = np.zeros(out.shape, np.uint8)
    better = np.empty(out.shape, bool)
    for o in range(1, kh * kw):
        v = _window(xp, o // kw, o % kw, ho, wo, sh, sw)
        np.greater(v, out, out=better)
        np.copyto(out, v, where=better)
        np.copyto(arg, o, where=better)
    return out, MaxPoolCache(arg, x.shape, (kh, kw), (sh, sw), (ph, pw))


def max_pool2d_backward(dy: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """dL/dx: each dY element goes to its window's (first) maximum."""
    n, c, h, w = cache.x_shape
    kh, kw = cache.kernel
    sh, sw = cache.stride
    ph, pw = cache.padding
    ho, wo = dy.shape[2:]
    tiles = (kh, kw) == (sh, sw) and ph == pw == 0 and h == ho * kh and w == wo * kw
    zero = np.zeros((), dy.dtype)
    if tiles:       # each input element is in exactly one window: plain assignment
        dx = np.empty(cache.x_shape, dy.dtype)
        for o in range(kh * kw):
            _window(dx, o // kw, o % kw, ho, wo, sh, sw)[...] = np.where(cache.arg == o, dy, zero)
        return dx
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dy.dtype)
    for o in range(kh * kw):
        _window(dxp, o // kw, o % kw, ho, wo, sh, sw)[...] += np.where(cache.arg == o, dy, zero)
    if ph or pw:
        return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + w])
    return dxp


def max_pool2d_indices(cache: MaxPoolCache) -> np.ndarray:
    """The cache's maxima as int64 flat indices into each (H*W) input plane (PyTorch's form)."""
    n, c, h, w = cache.x_shape
    kh, kw = cache.kernel
    sh, sw = cache.stride
    ph, pw = cache.padding
    ho, wo = cache.arg.shape[2:]
    arg = cache.arg.astype(np.int64)
    row = np.arange(ho, dtype=np.int64)[:, None] * sh - ph + arg // kw
    col = np.arange(wo, dtype=np.int64)[None, :] * sw - pw + arg % kw
    return row * w + col


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: Optional[IntPair] = None,
                       padding: IntPair = 0) -> np.ndarray:
    """Average pooling, count_include_pad=True (PyTorch's default)."""
    n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, tiles = _pool_geometry(x.shape, kernel_size,
                                                                       stride, padding)
    if tiles:
        return x.reshape(n, c, ho, kh, wo, kw).mean(axis=(3, 5), dtype=x.dtype)
    xp = _pad(x, ph, pw)
    out = np.array(_window(xp, 0, 0, ho, wo, sh, sw))
    for o in range(1, kh * kw):
        out += _window(xp, o // kw, o % kw, ho, wo, sh, sw)
    out *= x.dtype.type(1.0 / (kh * kw))
    return out


def avg_pool2d_backward(dy: np.ndarray, x_shape, kernel_size: IntPair,
                        stride: Optional[IntPair] = None, padding: IntPair = 0) -> np.ndarray:
    n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, tiles = _pool_geometry(tuple(x_shape),
                                                                       kernel_size, stride,
                                                                       padding)
    g = dy * dy.dtype.type(1.0 / (kh * kw))
    if tiles:
        return np.broadcast_to(g[:, :, :, None, :, None], (n, c, ho, kh, wo, kw)).reshape(
            n, c, h, w)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dy.dtype)
    for o in range(kh * kw):
        _window(dxp, o // kw, o % kw, ho, wo, sh, sw)[...] += g
    if ph or pw:
        return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + w])
    return dxp


def global_avg_pool2d_forward(x: np.ndarray) -> np.ndarray:
    """Mean over H, W: (N, C, 1, 1)."""
    return x.mean(axis=(2, 3), keepdims=True, dtype=x.dtype)


def global_avg_pool2d_backward(dy: np.ndarray, x_shape) -> np.ndarray:
    n, c, h, w = x_shape
    return np.broadcast_to(dy * dy.dtype.type(1.0 / (h * w)), tuple(x_shape)).copy()
