"""PyTorch (torch.nn.functional, CPU) versions of every fastconv op, taking fastconv's arguments.

Used by test_reference.py (reference vs torch) and test_torch.py (fastconv vs torch).  Only
imported after ``pytest.importorskip("torch")``.  Everything runs in the dtype of the inputs
(torch.float32 / torch.float64).  NHWC goes through permutes; asymmetric and string paddings are
applied with np.pad first and torch is then called with padding 0 (for pools: -inf padding for max,
sum/count for averages that must not count the padding).
"""
import numpy as np
import torch
import torch.nn.functional as F

import reference as R


def _nchw(a, layout):
    a = np.asarray(a)
    unb = a.ndim == 3
    if unb:
        a = a[None]
    if layout == "NHWC":
        a = a.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(a), unb


def _back(a, layout, unb):
    a = np.asarray(a)
    if layout == "NHWC":
        a = a.transpose(0, 2, 3, 1)
    if unb:
        a = a[0]
    return np.ascontiguousarray(a)


def _t(a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    if grad:
        t.requires_grad_(True)
    return t


def _w_oihw(w, layout):
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1) if layout == "NHWC" else w)


def _w_back(gw, layout):
    return np.ascontiguousarray(gw.transpose(2, 3, 1, 0) if layout == "NHWC" else gw)


# ------------------------------------------------------------------------------------------------
# convolution
# ------------------------------------------------------------------------------------------------
def _conv_prep(x, w, stride, padding, dilation, layout):
    xn, unb = _nchw(x, layout)
    wn = _w_oihw(np.asarray(w), layout)
    pt, pb, pl, pr = R.conv_pads(padding, xn.shape[2:], wn.shape[2:], stride, dilation)
    return xn, wn, unb, (pt, pb, pl, pr)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, layout="NCHW"):
    xn, wn, unb, (pt, pb, pl, pr) = _conv_prep(x, w, stride, padding, dilation, layout)
    xp = np.pad(xn, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    with torch.no_grad():
        y = F.conv2d(_t(xp), _t(wn), None if b is None else _t(b), stride=R.pair(stride),
                     padding=0, dilation=R.pair(dilation), groups=groups)
    return _back(y.numpy(), layout, unb)


def conv2d_backward(grad_out, x, w, stride=1, padding=0, dilation=1, groups=1, layout="NCHW"):
    """(grad_x, grad_w, grad_b) by torch autograd."""
    xn, wn, unb, (pt, pb, pl, pr) = _conv_prep(x, w, stride, padding, dilation, layout)
    gon, _ = _nchw(grad_out, layout)
    xt = _t(xn, True)
    wt = _t(wn, True)
    bt = torch.zeros(wn.shape[0], dtype=wt.dtype, requires_grad=True)
    xp = F.pad(xt, (pl, pr, pt, pb))
    y = F.conv2d(xp, wt, bt, stride=R.pair(stride), padding=0, dilation=R.pair(dilation),
                 groups=groups)
    y.backward(_t(gon))
    return (_back(xt.grad.numpy(), layout, unb), _w_back(wt.grad.numpy(), layout),
            bt.grad.numpy().copy())


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                     layout="NCHW"):
    xn, unb = _nchw(x, layout)
    wn = _w_oihw(np.asarray(w), layout)  # (KH,KW,Cout/g,Cin) -> (Cin,Cout/g,KH,KW): same permute
    with torch.no_grad():
        y = F.conv_transpose2d(_t(xn), _t(wn), None if b is None else _t(b),
                               stride=R.pair(stride), padding=R.pair(padding),
                               output_padding=R.pair(output_padding), groups=groups,
                               dilation=R.pair(dilation))
    return _back(y.numpy(), layout, unb)


def conv_transpose2d_backward(grad_out, x, w, stride=1, padding=0, output_padding=0, dilation=1,
                              groups=1, layout="NCHW"):
    xn, unb = _nchw(x, layout)
    wn = _w_oihw(np.asarray(w), layout)
    gon, _ = _nchw(grad_out, layout)
    xt = _t(xn, True)
    wt = _t(wn, True)
    bt = torch.zeros(wn.shape[1] * groups, dtype=wt.dtype, requires_grad=True)
    y = F.conv_transpose2d(xt, wt, bt, stride=R.pair(stride), padding=R.pair(padding),
                           output_padding=R.pair(output_padding), groups=groups,
                           dilation=R.pair(dilation))
    y.backward(_t(gon))
    return (_back(xt.grad.numpy(), layout, unb), _w_back(wt.grad.numpy(), layout),
            bt.grad.numpy().copy())


# ------------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------------
def _max_pool_t(xt, kernel_size, stride, padding, dilation, ceil_mode):
    """Torch max pool of an NCHW tensor with fastconv's arguments -> (out, indices in the
    unpadded plane)."""
    k = R.pair(kernel_size)
    s = R.pair(stride if stride is not None else k)
    d = R.pair(dilation)
    h, w = xt.shape[2:]
    if isinstance(padding, str):
        pt, pb, pl, pr, _ = R.pool_pads(padding, (h, w), k, s, d)
        xp = F.pad(xt, (pl, pr, pt, pb), value=-float("inf"))
        y, idx = F.max_pool2d(xp, k, s, 0, d, ceil_mode=False, return_indices=True)
        wp = w + pl + pr
        idx = (idx // wp - pt) * w + (idx % wp - pl)
        return y, idx
    return F.max_pool2d(xt, k, s, R.pair(padding), d, ceil_mode=ceil_mode, return_indices=True)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               layout="NCHW"):
    xn, unb = _nchw(x, layout)
    with torch.no_grad():
        y, idx = _max_pool_t(_t(xn), kernel_size, stride, padding, dilation, ceil_mode)
    return _back(y.numpy(), layout, unb), _back(idx.numpy(), layout, unb)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, layout="NCHW"):
    xn, unb = _nchw(x, layout)
    gon, _ = _nchw(grad_out, layout)
    xt = _t(xn, True)
    y, _ = _max_pool_t(xt, kernel_size, stride, padding, dilation, ceil_mode)
    y.backward(_t(gon))
    return _back(xt.grad.numpy(), layout, unb)


def _avg_pool_t(xt, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
    k = R.pair(kernel_size)
    s = R.pair(stride if stride is not None else k)
    h, w = xt.shape[2:]
    if isinstance(padding, str):  # TF rule: padded cells are never counted
        pt, pb, pl, pr, _ = R.pool_pads(padding, (h, w), k, s, (1, 1))
        xp = F.pad(xt, (pl, pr, pt, pb))
        total = F.avg_pool2d(xp, k, s, 0, divisor_override=1)
        if divisor_override:
            return total / divisor_override
        ones = F.pad(torch.ones((1, 1, h, w), dtype=xt.dtype), (pl, pr, pt, pb))
        count = F.avg_pool2d(ones, k, s, 0, divisor_override=1)
        return total / count
    return F.avg_pool2d(xt, k, s, R.pair(padding), ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad, divisor_override=divisor_override)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, layout="NCHW"):
    xn, unb = _nchw(x, layout)
    with torch.no_grad():
        y = _avg_pool_t(_t(xn), kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)
    return _back(y.numpy(), layout, unb)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None,
                        layout="NCHW", dtype=np.float64):
    x = np.zeros(input_shape, dtype=dtype)
    xn, unb = _nchw(x, layout)
    gon, _ = _nchw(grad_out, layout)
    xt = _t(xn, True)
    y = _avg_pool_t(xt, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override)
    y.backward(_t(gon))
    return _back(xt.grad.numpy(), layout, unb)


def adaptive_avg_pool2d(x, output_size, layout="NCHW"):
    xn, unb = _nchw(x, layout)
    with torch.no_grad():
        y = F.adaptive_avg_pool2d(_t(xn), R.pair(output_size))
    return _back(y.numpy(), layout, unb)


def adaptive_avg_pool2d_backward(grad_out, input_shape, layout="NCHW", dtype=np.float64):
    xn, unb = _nchw(np.zeros(input_shape, dtype), layout)
    gon, _ = _nchw(grad_out, layout)
    xt = _t(xn, True)
    F.adaptive_avg_pool2d(xt, gon.shape[2:]).backward(_t(gon))
    return _back(xt.grad.numpy(), layout, unb)


def adaptive_max_pool2d(x, output_size, layout="NCHW"):
    xn, unb = _nchw(x, layout)
    with torch.no_grad():
        y, idx = F.adaptive_max_pool2d(_t(xn), R.pair(output_size), return_indices=True)
    return _back(y.numpy(), layout, unb), _back(idx.numpy(), layout, unb)


def adaptive_max_pool2d_backward(grad_out, x, layout="NCHW"):
    xn, unb = _nchw(x, layout)
    gon, _ = _nchw(grad_out, layout)
    xt = _t(xn, True)
    F.adaptive_max_pool2d(xt, gon.shape[2:]).backward(_t(gon))
    return _back(xt.grad.numpy(), layout, unb)


def global_avg_pool2d(x, layout="NCHW"):
    return adaptive_avg_pool2d(x, 1, layout)


def global_avg_pool2d_backward(grad_out, input_shape, layout="NCHW", dtype=np.float64):
    return adaptive_avg_pool2d_backward(grad_out, input_shape, layout, dtype)
