"""Slow, obviously-correct float64 NumPy references for every fastconv op.

Written straight from the definitions: explicit zero padding, then one loop over output pixels
(or over window offsets) with a tiny NumPy reduction inside.  Nothing here calls fastconv, and the
gradients are written as direct accumulations, independent of the forward code, so that a bug in
one cannot hide a bug in the other.  Keep test sizes small: these loops are O(outputs).

Conventions (the same as the public API):
  NCHW: x (N, C, H, W), conv weight (O, C/g, KH, KW), transposed weight (C_in, C_out/g, KH, KW)
  NHWC: x (N, H, W, C), conv weight (KH, KW, C/g, O), transposed weight (KH, KW, C_out/g, C_in)
  3-D inputs are unbatched.  Max-pool indices are flat h*W + w inside each (H, W) plane.
Internally everything is converted to batched NCHW float64 and converted back at the end.
"""
import math

import numpy as np

__all__ = [
    "pair", "conv_pads", "pool_pads", "pool_out_size",
    "conv2d", "conv2d_grads", "conv_transpose2d", "conv_transpose2d_out_size",
    "conv_transpose2d_grads", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward", "global_avg_pool2d",
    "global_avg_pool2d_backward",
]


# ------------------------------------------------------------------------------------------------
# argument normalisation
# ------------------------------------------------------------------------------------------------
def pair(v):
    if isinstance(v, (tuple, list)):
        assert len(v) == 2
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _tf_same(in_size, k, stride, dil):
    out = -(-in_size // stride)  # ceil(in / stride)
    total = max((out - 1) * stride + dil * (k - 1) + 1 - in_size, 0)
    return total // 2, total - total // 2


def conv_pads(padding, in_hw, k_hw, stride, dil):
    """Per-side pads (top, bottom, left, right) for every conv padding form in SPEC."""
    sh, sw = pair(stride)
    dh, dw = pair(dil)
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            return _tf_same(in_hw[0], k_hw[0], sh, dh) + _tf_same(in_hw[1], k_hw[1], sw, dw)
        if padding == "full":
            return dh * (k_hw[0] - 1), dh * (k_hw[0] - 1), dw * (k_hw[1] - 1), dw * (k_hw[1] - 1)
        raise ValueError(padding)
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        (t, b), (l, r) = padding
        return int(t), int(b), int(l), int(r)
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def pool_pads(padding, in_hw, k_hw, stride, dil):
    """(top, bottom, left, right, tf_mode).  tf_mode: string padding, pads never counted."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0, True
        if padding == "same":
            return _tf_same(in_hw[0], k_hw[0], stride[0], dil[0]) + \
                _tf_same(in_hw[1], k_hw[1], stride[1], dil[1]) + (True,)
        raise ValueError(padding)
    ph, pw = pair(padding)
    return ph, ph, pw, pw, False


def pool_out_size(in_size, k, stride, pad_lo, pad_hi, dil=1, ceil_mode=False):
    """SPEC / PyTorch output-size rule, written with Python ints."""
    span = in_size + pad_lo + pad_hi - dil * (k - 1) - 1
    if span < 0:
        return 0
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= in_size + pad_lo:  # last window would start in the right pad
            out -= 1
    else:
        out = span // stride + 1
    return out


# ------------------------------------------------------------------------------------------------
# layout helpers
# ------------------------------------------------------------------------------------------------
def _x_to_nchw(x, layout):
    x = np.asarray(x, dtype=np.float64)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    assert x.ndim == 4
    if layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), unbatched


def _y_from_nchw(y, layout, unbatched):
    if layout == "NHWC":
        y = y.transpose(0, 2, 3, 1)
    if unbatched:
        y = y[0]
    return np.ascontiguousarray(y)


def _shape_to_nchw(shape, layout):
    shape = tuple(int(s) for s in shape)
    unbatched = len(shape) == 3
    if unbatched:
        shape = (1,) + shape
    if layout == "NHWC":
        n, h, w, c = shape
        shape = (n, c, h, w)
    return shape, unbatched


def _w_to_oihw(w, layout):
    w = np.asarray(w, dtype=np.float64)
    if layout == "NHWC":  # (KH, KW, I, O) -> (O, I, KH, KW)
        w = w.transpose(3, 2, 0, 1)
    return np.ascontiguousarray(w)


def _w_from_oihw(w, layout):
    if layout == "NHWC":
        w = w.transpose(2, 3, 1, 0)
    return np.ascontiguousarray(w)


# ------------------------------------------------------------------------------------------------
# conv2d (cross-correlation)
# ------------------------------------------------------------------------------------------------
def _conv_geometry(xshape, wshape, stride, padding, dilation):
    n, c, h, w_ = xshape
    o, cg, kh, kw = wshape
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    pt, pb, pl, pr = conv_pads(padding, (h, w_), (kh, kw), (sh, sw), (dh, dw))
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w_ + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return sh, sw, dh, dw, pt, pb, pl, pr, ho, wo


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, layout="NCHW"):
    """out[n, o, i, j] = b[o] + sum_{c, p, q} xpad[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]"""
    x, unbatched = _x_to_nchw(x, layout)
    w = _w_to_oihw(weight, layout)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    assert cg * groups == c and o % groups == 0
    og = o // groups
    sh, sw, dh, dw, pt, pb, pl, pr, ho, wo = _conv_geometry(x.shape, w.shape, stride, padding,
                                                            dilation)
    assert ho >= 1 and wo >= 1
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((n, o, ho, wo))
    for g in range(groups):
        wg = w[g * og:(g + 1) * og]                      # (og, cg, kh, kw)
        xg = xp[:, g * cg:(g + 1) * cg]                  # (n, cg, Hp, Wp)
        for i in range(ho):
            for j in range(wo):
                win = xg[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                         j * sw:j * sw + dw * (kw - 1) + 1:dw]  # (n, cg, kh, kw)
                y[:, g * og:(g + 1) * og, i, j] = np.einsum("ncpq,ocpq->no", win, wg)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return _y_from_nchw(y, layout, unbatched)


def conv2d_grads(grad_out, x_shape, w_shape, x=None, weight=None, stride=1, padding=0,
                 dilation=1, groups=1, layout="NCHW"):
    """(grad_x, grad_w, grad_b) of L = sum(grad_out * conv2d(x, w, b)), by direct accumulation.

    grad_x needs only `weight` (and x_shape); grad_w needs only `x` (and w_shape).  Pass None for
    the one you do not need; the corresponding gradient is then None.
    """
    xs, unbatched = _shape_to_nchw(x_shape, layout)
    w_shape = tuple(int(s) for s in w_shape)
    ws = w_shape if layout == "NCHW" else (w_shape[3], w_shape[2], w_shape[0], w_shape[1])
    go, _ = _x_to_nchw(grad_out, layout)
    n, c, h, wd = xs
    o, cg, kh, kw = ws
    og = o // groups
    sh, sw, dh, dw, pt, pb, pl, pr, ho, wo = _conv_geometry(xs, ws, stride, padding, dilation)
    assert go.shape == (n, o, ho, wo), (go.shape, (n, o, ho, wo))
    hp, wp = h + pt + pb, wd + pl + pr
    gx = gw = None
    if weight is not None:
        w = _w_to_oihw(weight, layout)
        gxp = np.zeros((n, c, hp, wp))
        for g in range(groups):
            wg = w[g * og:(g + 1) * og]
            for i in range(ho):
                for j in range(wo):
                    for p in range(kh):
                        for q in range(kw):
                            # every output pixel sends grad * w to the input element it read
                            gxp[:, g * cg:(g + 1) * cg, i * sh + p * dh, j * sw + q * dw] += \
                                go[:, g * og:(g + 1) * og, i, j] @ wg[:, :, p, q]
        gx = _y_from_nchw(gxp[:, :, pt:pt + h, pl:pl + wd], layout, unbatched)
    if x is not None:
        xx, _ = _x_to_nchw(x, layout)
        xp = np.pad(xx, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        gwt = np.zeros((o, cg, kh, kw))
        for g in range(groups):
            for i in range(ho):
                for j in range(wo):
                    for p in range(kh):
                        for q in range(kw):
                            gwt[g * og:(g + 1) * og, :, p, q] += \
                                go[:, g * og:(g + 1) * og, i, j].T @ \
                                xp[:, g * cg:(g + 1) * cg, i * sh + p * dh, j * sw + q * dw]
        gw = _w_from_oihw(gwt, layout)
    gb = go.sum(axis=(0, 2, 3))
    return gx, gw, gb


# ------------------------------------------------------------------------------------------------
# conv_transpose2d (scatter definition)
# ------------------------------------------------------------------------------------------------
def _wt_to_iohw(w, layout):
    w = np.asarray(w, dtype=np.float64)
    if layout == "NHWC":  # (KH, KW, Cout/g, Cin) -> (Cin, Cout/g, KH, KW)
        w = w.transpose(3, 2, 0, 1)
    return np.ascontiguousarray(w)


def conv_transpose2d_out_size(in_size, k, stride, pad, output_padding, dil):
    return (in_size - 1) * stride - 2 * pad + dil * (k - 1) + output_padding + 1


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1, layout="NCHW"):
    """Every input pixel (i, j) scatters x[n, ci, i, j] * w[ci, co, p, q] to the (uncropped) output
    position (i*sh + p*dh, j*sw + q*dw); the result is then cropped by `padding` on the top/left
    and sized by the transposed output formula (output_padding extends the bottom/right)."""
    x, unbatched = _x_to_nchw(x, layout)
    w = _wt_to_iohw(weight, layout)
    n, ci, h, wd = x.shape
    ci2, cog, kh, kw = w.shape
    assert ci2 == ci and ci % groups == 0
    cig = ci // groups
    co = cog * groups
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    oph, opw = pair(output_padding)
    dh, dw = pair(dilation)
    ho = conv_transpose2d_out_size(h, kh, sh, ph, oph, dh)
    wo = conv_transpose2d_out_size(wd, kw, sw, pw, opw, dw)
    assert ho >= 1 and wo >= 1
    fh = max((h - 1) * sh + dh * (kh - 1) + 1, ph + ho)
    fw = max((wd - 1) * sw + dw * (kw - 1) + 1, pw + wo)
    full = np.zeros((n, co, fh, fw))
    for g in range(groups):
        xg = x[:, g * cig:(g + 1) * cig]          # (n, cig, h, w)
        wg = w[g * cig:(g + 1) * cig]             # (cig, cog, kh, kw)
        for i in range(h):
            for j in range(wd):
                contrib = np.einsum("nc,copq->nopq", xg[:, :, i, j], wg)  # (n, cog, kh, kw)
                full[:, g * cog:(g + 1) * cog,
                     i * sh:i * sh + dh * (kh - 1) + 1:dh,
                     j * sw:j * sw + dw * (kw - 1) + 1:dw] += contrib
    y = full[:, :, ph:ph + ho, pw:pw + wo]
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return _y_from_nchw(y, layout, unbatched)


def conv_transpose2d_grads(grad_out, x, weight, stride=1, padding=0, output_padding=0,
                           dilation=1, groups=1, layout="NCHW"):
    """(grad_x, grad_w, grad_b) of L = sum(grad_out * conv_transpose2d(x, w, b)), gathering, for
    each (input pixel, kernel offset), the grad_out element that pixel was scattered to."""
    x, unbatched = _x_to_nchw(x, layout)
    w = _wt_to_iohw(weight, layout)
    go, _ = _x_to_nchw(grad_out, layout)
    n, ci, h, wd = x.shape
    _, cog, kh, kw = w.shape
    cig = ci // groups
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    ho, wo = go.shape[2], go.shape[3]
    # uncropped coordinates u = output row + ph; positions outside [ph, ph+ho) were cropped away
    fh = max((h - 1) * sh + dh * (kh - 1) + 1, ph + ho)
    fw = max((wd - 1) * sw + dw * (kw - 1) + 1, pw + wo)
    gfull = np.zeros((n, go.shape[1], fh, fw))
    gfull[:, :, ph:ph + ho, pw:pw + wo] = go
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)
    for g in range(groups):
        cs = slice(g * cig, (g + 1) * cig)
        os_ = slice(g * cog, (g + 1) * cog)
        for i in range(h):
            for j in range(wd):
                for p in range(kh):
                    for q in range(kw):
                        gpix = gfull[:, os_, i * sh + p * dh, j * sw + q * dw]  # (n, cog)
                        gx[:, cs, i, j] += gpix @ w[cs, :, p, q].T
                        gw[cs, :, p, q] += x[:, cs, i, j].T @ gpix
    gb = go.sum(axis=(0, 2, 3))
    if layout == "NHWC":
        gw = gw.transpose(2, 3, 1, 0)
    return _y_from_nchw(gx, layout, unbatched), np.ascontiguousarray(gw), gb


# ------------------------------------------------------------------------------------------------
# max pooling
# ------------------------------------------------------------------------------------------------
def _max_windows(x, rows, cols):
    """PyTorch CPU rule over windows given as lists of valid (in-range) input rows / cols, in
    row-major order.  maxval starts at -inf, the index at the first valid element; an element
    replaces the current one when (val > maxval) or isnan(val): ties keep the first maximum,
    NaN wins and the last NaN's index is kept."""
    n, c, h, w = x.shape
    ho, wo = len(rows), len(cols)
    y = np.empty((n, c, ho, wo))
    idx = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(ho):
        for j in range(wo):
            rr, cc = rows[i], cols[j]
            if not rr or not cc:
                raise ValueError("reference: a pooling window holds no input element")
            best = np.full((n, c), -np.inf)
            bidx = np.full((n, c), rr[0] * w + cc[0], dtype=np.int64)
            for r in rr:
                for q in cc:
                    v = x[:, :, r, q]
                    upd = (v > best) | np.isnan(v)
                    best = np.where(upd, v, best)
                    bidx = np.where(upd, r * w + q, bidx)
            y[:, :, i, j] = best
            idx[:, :, i, j] = bidx
    return y, idx


def _pool_params(x_hw, kernel_size, stride, padding, dilation, ceil_mode):
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else (kh, kw))
    dh, dw = pair(dilation)
    pt, pb, pl, pr, tf = pool_pads(padding, x_hw, (kh, kw), (sh, sw), (dh, dw))
    if tf:
        ceil_mode = False
    ho = pool_out_size(x_hw[0], kh, sh, pt, pb, dh, ceil_mode)
    wo = pool_out_size(x_hw[1], kw, sw, pl, pr, dw, ceil_mode)
    return kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, tf, ho, wo


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               layout="NCHW"):
    """Returns (out, indices); out in float64, indices int64 flat h*W + w."""
    xx, unbatched = _x_to_nchw(x, layout)
    h, w = xx.shape[2:]
    kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, tf, ho, wo = _pool_params(
        (h, w), kernel_size, stride, padding, dilation, ceil_mode)
    assert ho >= 1 and wo >= 1
    rows = [[i * sh - pt + p * dh for p in range(kh) if 0 <= i * sh - pt + p * dh < h]
            for i in range(ho)]
    cols = [[j * sw - pl + q * dw for q in range(kw) if 0 <= j * sw - pl + q * dw < w]
            for j in range(wo)]
    y, idx = _max_windows(xx, rows, cols)
    return _y_from_nchw(y, layout, unbatched), _idx_from_nchw(idx, layout, unbatched)


def _idx_from_nchw(idx, layout, unbatched):
    if layout == "NHWC":
        idx = idx.transpose(0, 2, 3, 1)
    if unbatched:
        idx = idx[0]
    return np.ascontiguousarray(idx)


def max_pool2d_backward(grad_out, indices, input_shape, layout="NCHW"):
    """grad_x[n, c].flat[indices[n, c, i, j]] += grad_out[n, c, i, j] (accumulating)."""
    go, unbatched = _x_to_nchw(grad_out, layout)
    ind = np.asarray(indices)
    if unbatched:
        ind = ind[None]
    if layout == "NHWC":
        ind = ind.transpose(0, 3, 1, 2)
    (n, c, h, w), _ = _shape_to_nchw(input_shape, layout)
    gx = np.zeros((n, c, h * w))
    for a in range(n):
        for b in range(c):
            for v, k in zip(go[a, b].ravel(), ind[a, b].ravel()):
                assert 0 <= k < h * w
                gx[a, b, k] += v
    return _y_from_nchw(gx.reshape(n, c, h, w), layout, unbatched)


# ------------------------------------------------------------------------------------------------
# average pooling (PyTorch CPU rules)
# ------------------------------------------------------------------------------------------------
def _avg_windows(h, w, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    """List of ((i, j), (h0, h1, w0, w1), divisor) with the clipped window bounds."""
    kh, kw, sh, sw, _, _, pt, pb, pl, pr, tf, ho, wo = _pool_params(
        (h, w), kernel_size, stride, padding, 1, ceil_mode)
    assert ho >= 1 and wo >= 1
    out = []
    for i in range(ho):
        for j in range(wo):
            hs, ws = i * sh - pt, j * sw - pl
            he, we = min(hs + kh, h + pb), min(ws + kw, w + pr)   # may include explicit padding
            pool_size = (he - hs) * (we - ws)
            h0, w0, h1, w1 = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            if divisor_override:
                div = divisor_override
            elif count_include_pad and not tf:
                div = pool_size
            else:
                div = (h1 - h0) * (w1 - w0)
            out.append(((i, j), (h0, h1, w0, w1), div))
    return out, ho, wo


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, layout="NCHW"):
    xx, unbatched = _x_to_nchw(x, layout)
    n, c, h, w = xx.shape
    wins, ho, wo = _avg_windows(h, w, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                divisor_override)
    y = np.zeros((n, c, ho, wo))
    for (i, j), (h0, h1, w0, w1), div in wins:
        if h0 < h1 and w0 < w1:
            y[:, :, i, j] = xx[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return _y_from_nchw(y, layout, unbatched)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None,
                        layout="NCHW"):
    go, unbatched = _x_to_nchw(grad_out, layout)
    (n, c, h, w), _ = _shape_to_nchw(input_shape, layout)
    wins, ho, wo = _avg_windows(h, w, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                divisor_override)
    assert go.shape == (n, c, ho, wo)
    gx = np.zeros((n, c, h, w))
    for (i, j), (h0, h1, w0, w1), div in wins:
        gx[:, :, h0:h1, w0:w1] += (go[:, :, i, j] / div)[:, :, None, None]
    return _y_from_nchw(gx, layout, unbatched)


# ------------------------------------------------------------------------------------------------
# adaptive / global pooling
# ------------------------------------------------------------------------------------------------
def _adaptive_bounds(in_size, out_size):
    return [(math.floor(o * in_size / out_size), math.ceil((o + 1) * in_size / out_size))
            for o in range(out_size)]


def adaptive_avg_pool2d(x, output_size, layout="NCHW"):
    xx, unbatched = _x_to_nchw(x, layout)
    n, c, h, w = xx.shape
    oh, ow = pair(output_size)
    y = np.zeros((n, c, oh, ow))
    for i, (h0, h1) in enumerate(_adaptive_bounds(h, oh)):
        for j, (w0, w1) in enumerate(_adaptive_bounds(w, ow)):
            y[:, :, i, j] = xx[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))
    return _y_from_nchw(y, layout, unbatched)


def adaptive_avg_pool2d_backward(grad_out, input_shape, layout="NCHW"):
    go, unbatched = _x_to_nchw(grad_out, layout)
    (n, c, h, w), _ = _shape_to_nchw(input_shape, layout)
    oh, ow = go.shape[2:]
    gx = np.zeros((n, c, h, w))
    for i, (h0, h1) in enumerate(_adaptive_bounds(h, oh)):
        for j, (w0, w1) in enumerate(_adaptive_bounds(w, ow)):
            gx[:, :, h0:h1, w0:w1] += (go[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return _y_from_nchw(gx, layout, unbatched)


def adaptive_max_pool2d(x, output_size, layout="NCHW"):
    xx, unbatched = _x_to_nchw(x, layout)
    n, c, h, w = xx.shape
    oh, ow = pair(output_size)
    rows = [list(range(a, b)) for a, b in _adaptive_bounds(h, oh)]
    cols = [list(range(a, b)) for a, b in _adaptive_bounds(w, ow)]
    y, idx = _max_windows(xx, rows, cols)
    return _y_from_nchw(y, layout, unbatched), _idx_from_nchw(idx, layout, unbatched)


def adaptive_max_pool2d_backward(grad_out, indices, input_shape, layout="NCHW"):
    return max_pool2d_backward(grad_out, indices, input_shape, layout)


def global_avg_pool2d(x, layout="NCHW"):
    xx, unbatched = _x_to_nchw(x, layout)
    h, w = xx.shape[2:]
    y = xx.sum(axis=(2, 3), keepdims=True) / (h * w)
    return _y_from_nchw(y, layout, unbatched)


def global_avg_pool2d_backward(grad_out, input_shape, layout="NCHW"):
    go, unbatched = _x_to_nchw(grad_out, layout)
    (n, c, h, w), _ = _shape_to_nchw(input_shape, layout)
    gx = np.broadcast_to(go / (h * w), (n, c, h, w)).copy()
    return _y_from_nchw(gx, layout, unbatched)
