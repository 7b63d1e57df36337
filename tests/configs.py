"""Deterministic random configurations (pure Python, seeded) for the torch / reference sweeps.

Every generator returns plain dicts; ``describe(cfg)`` gives a short readable id.  Generated at
collection time with ``random.Random(seed)`` so the same ids appear on every run and machine.
"""
import random

import reference as R

LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float64")


def describe(cfg):
    return "-".join(f"{k}={v}" for k, v in cfg.items() if k != "seed").replace(" ", "")


def _conv_padding(r, kh, kw, dh, dw):
    form = r.choice(["int", "int", "pair", "sides", "valid", "same", "same", "full"])
    if form == "int":
        return r.randint(0, 2)
    if form == "pair":
        return (r.randint(0, 2), r.randint(0, 3))
    if form == "sides":
        return ((r.randint(0, 2), r.randint(0, 3)), (r.randint(0, 3), r.randint(0, 1)))
    return form


def conv_config(seed, big_channels=False):
    r = random.Random(seed)
    layout = r.choice(LAYOUTS)
    dtype = r.choice(DTYPES)
    gkind = r.choice(["1", "1", "1", "g", "dw", "dw"])
    if gkind == "1":
        groups, cg, og = 1, r.randint(1, 4), r.randint(1, 5)
    elif gkind == "g":
        groups, cg, og = r.randint(2, 3), r.randint(1, 3), r.randint(1, 3)
    else:  # depthwise: groups == C, channel multiplier og
        groups, cg, og = r.randint(1, 6), 1, r.choice([1, 1, 2])
    if big_channels:
        cg, og = r.randint(5, 19), r.randint(7, 21)
        groups = r.choice([1, 1, 2])
    kh, kw = r.choice([(1, 1), (3, 3), (3, 3), (2, 2), (5, 5), (1, 3), (3, 2), (4, 1)])
    sh, sw = r.choice([(1, 1), (1, 1), (2, 2), (3, 3), (1, 2), (2, 1)])
    dh, dw = r.choice([(1, 1), (1, 1), (1, 1), (2, 2), (3, 1), (1, 2)])
    padding = _conv_padding(r, kh, kw, dh, dw)
    n = r.choice([1, 1, 2, 3, 0]) if r.random() < 0.95 else 1
    unbatched = n == 1 and r.random() < 0.08
    # choose H, W so that the output is non-empty
    pads = lambda hh, ww: R.conv_pads(padding, (hh, ww), (kh, kw), (sh, sw), (dh, dw))
    while True:
        h = r.randint(1, dh * (kh - 1) + 7)
        w = r.randint(1, dw * (kw - 1) + 7)
        pt, pb, pl, pr = pads(h, w)
        if h + pt + pb >= dh * (kh - 1) + 1 and w + pl + pr >= dw * (kw - 1) + 1:
            break
    return dict(layout=layout, dtype=dtype, N=n, C=cg * groups, O=og * groups, groups=groups,
                H=h, W=w, KH=kh, KW=kw, stride=(sh, sw) if sh != sw else sh, padding=padding,
                dilation=(dh, dw) if dh != dw else dh, bias=r.random() < 0.7,
                integer=r.random() < 0.3, unbatched=unbatched, seed=seed)


def transposed_config(seed):
    r = random.Random(seed)
    layout = r.choice(LAYOUTS)
    dtype = r.choice(DTYPES)
    groups = r.choice([1, 1, 2, 3])
    cig, cog = r.randint(1, 4), r.randint(1, 4)
    if r.random() < 0.2:  # depthwise transposed
        cig, cog = 1, 1
        groups = r.randint(1, 5)
    kh, kw = r.choice([(1, 1), (2, 2), (3, 3), (3, 3), (4, 4), (5, 3), (1, 2)])
    sh, sw = r.choice([(1, 1), (2, 2), (2, 2), (3, 3), (1, 2), (3, 1)])
    dh, dw = r.choice([(1, 1), (1, 1), (2, 2), (1, 3)])
    oph = r.randint(0, max(sh, dh) - 1) if r.random() < 0.5 else 0
    opw = r.randint(0, max(sw, dw) - 1) if r.random() < 0.5 else 0
    while True:
        h, w = r.randint(1, 8), r.randint(1, 8)
        ph = r.randint(0, dh * (kh - 1) + 1)
        pw = r.randint(0, dw * (kw - 1) + 1) if r.random() < 0.5 else ph
        ho = R.conv_transpose2d_out_size(h, kh, sh, ph, oph, dh)
        wo = R.conv_transpose2d_out_size(w, kw, sw, pw, opw, dw)
        if ho >= 1 and wo >= 1:
            break
    n = r.choice([1, 2, 2, 0]) if r.random() < 0.97 else 1
    return dict(layout=layout, dtype=dtype, N=n, C=cig * groups, O=cog * groups, groups=groups,
                H=h, W=w, KH=kh, KW=kw, stride=(sh, sw) if sh != sw else sh,
                padding=(ph, pw) if ph != pw else ph,
                output_padding=(oph, opw) if oph != opw else oph,
                dilation=(dh, dw) if dh != dw else dh, bias=r.random() < 0.7,
                integer=r.random() < 0.3, unbatched=n == 1 and r.random() < 0.1, seed=seed)


def _windows_nonempty(h, w, kh, kw, stride, padding, dil, ceil_mode):
    try:
        kh_, kw_, sh, sw, dh, dw, pt, pb, pl, pr, tf, ho, wo = R._pool_params(
            (h, w), (kh, kw), stride, padding, dil, ceil_mode)
    except Exception:
        return False
    if ho < 1 or wo < 1:
        return False
    for i in range(ho):
        if not any(0 <= i * sh - pt + p * dh < h for p in range(kh)):
            return False
    for j in range(wo):
        if not any(0 <= j * sw - pl + q * dw < w for q in range(kw)):
            return False
    return True


def pool_config(seed, op):
    """op: 'max' or 'avg'."""
    r = random.Random(seed)
    layout = r.choice(LAYOUTS)
    dtype = r.choice(DTYPES)
    c = r.choice([1, 2, 3, 4, 7, 8, 9, 16, 17])
    n = r.choice([1, 1, 2, 3, 0]) if r.random() < 0.97 else 1
    while True:
        kh, kw = r.choice([(1, 1), (2, 2), (2, 2), (3, 3), (3, 3), (4, 4), (5, 5), (2, 3),
                           (3, 1), (1, 4)])
        stride = r.choice([None, None, 1, 2, 2, 3, (1, 2), (2, 3)])
        form = r.choice(["int", "int", "int", "pair", "valid", "same"])
        if form == "int":
            padding = r.randint(0, min(kh, kw) // 2)
        elif form == "pair":
            padding = (r.randint(0, kh // 2), r.randint(0, kw // 2))
        else:
            padding = form
        dil = 1
        if op == "max" and r.random() < 0.35:
            dil = r.choice([2, 3, (1, 2), (2, 1)])
        ceil_mode = (not isinstance(padding, str)) and r.random() < 0.4
        h, w = r.randint(1, 13), r.randint(1, 13)
        if _windows_nonempty(h, w, kh, kw, stride, padding, dil, ceil_mode):
            break
    cfg = dict(op=op, layout=layout, dtype=dtype, N=n, C=c, H=h, W=w, kernel_size=(kh, kw)
               if kh != kw else kh, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if op == "max":
        cfg["dilation"] = dil
    else:
        cfg["count_include_pad"] = r.random() < 0.5 if not isinstance(padding, str) else False
        cfg["divisor_override"] = (r.choice([None, None, None, 1, 3, 4, 7])
                                   if not isinstance(padding, str) else None)
    cfg["integer"] = r.random() < 0.3
    cfg["unbatched"] = n == 1 and r.random() < 0.1
    cfg["seed"] = seed
    return cfg


def adaptive_config(seed, op):
    """op: 'adaptive_avg', 'adaptive_max' or 'global_avg'."""
    r = random.Random(seed)
    h, w = r.randint(1, 13), r.randint(1, 13)
    if r.random() < 0.5:
        osz = r.randint(1, max(1, min(h, w) + 2))
    else:
        osz = (r.randint(1, h + 2), r.randint(1, w + 2))
    cfg = dict(op=op, layout=r.choice(LAYOUTS), dtype=r.choice(DTYPES),
               N=r.choice([1, 2, 0]) if r.random() < 0.95 else 1,
               C=r.choice([1, 3, 8, 9, 17]), H=h, W=w)
    if op != "global_avg":
        cfg["output_size"] = osz
    cfg["integer"] = r.random() < 0.3
    cfg["unbatched"] = cfg["N"] == 1 and r.random() < 0.15
    cfg["seed"] = seed
    return cfg


# ------------------------------------------------------------------------------------------------
# shapes / data from configs
# ------------------------------------------------------------------------------------------------
def conv_arrays(cfg, rng, transposed=False):
    """(x, weight, bias) numpy arrays for a conv / transposed-conv config."""
    import numpy as np
    from conftest import make_data, w_shape, wt_shape, x_shape

    dt = np.dtype(cfg["dtype"])
    xs = x_shape(cfg["N"], cfg["C"], cfg["H"], cfg["W"], cfg["layout"])
    if cfg.get("unbatched"):
        xs = xs[1:]
    g = cfg["groups"]
    if transposed:
        ws = wt_shape(cfg["C"], cfg["O"] // g, cfg["KH"], cfg["KW"], cfg["layout"])
    else:
        ws = w_shape(cfg["O"], cfg["C"] // g, cfg["KH"], cfg["KW"], cfg["layout"])
    x = make_data(rng, xs, dt, cfg["integer"])
    wt = make_data(rng, ws, dt, cfg["integer"])
    b = make_data(rng, (cfg["O"],), dt, cfg["integer"]) if cfg["bias"] else None
    return x, wt, b


def pool_input(cfg, rng):
    import numpy as np
    from conftest import make_data, x_shape

    xs = x_shape(cfg["N"], cfg["C"], cfg["H"], cfg["W"], cfg["layout"])
    if cfg.get("unbatched"):
        xs = xs[1:]
    return make_data(rng, xs, np.dtype(cfg["dtype"]), cfg["integer"])


def conv_kwargs(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                groups=cfg["groups"], layout=cfg["layout"])


def transposed_kwargs(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"],
                output_padding=cfg["output_padding"], dilation=cfg["dilation"],
                groups=cfg["groups"], layout=cfg["layout"])


def pool_kwargs(cfg):
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], ceil_mode=cfg["ceil_mode"],
              layout=cfg["layout"])
    if cfg["op"] == "max":
        kw["dilation"] = cfg["dilation"]
    else:
        kw["count_include_pad"] = cfg["count_include_pad"]
        kw["divisor_override"] = cfg["divisor_override"]
    return kw
