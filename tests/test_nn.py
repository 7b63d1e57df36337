"""fastconv.nn: layers, loss and optimizers vs torch.nn / torch.optim and finite differences.

Acceptance (issue 3): the same LeNet in fastconv.nn and PyTorch with identical weights on a float32
batch of 8 28x28 images: loss and every parameter gradient within 1e-5 (relative to max |ref|)
after one forward/backward, parameters within 1e-4 after 20 SGD(momentum=0.9) steps (and Adam).
Tests needing torch skip cleanly without it; the rest run with NumPy only.
"""
import numpy as np
import pytest

import fastconv
from fastconv import nn

FP = [np.float32, np.float64]
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-11}


def _torch():
    return pytest.importorskip("torch")


def close(got, ref, tol, what=""):
    """max |got - ref| <= tol * max |ref| (shapes must match)."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    if ref.size == 0:
        return
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = float(np.abs(got - ref).max())
    assert err <= tol * scale, f"{what}: max err {err:.3g} > {tol:g} * max|ref| {scale:.3g}"


def nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def w_to_torch(w, layout):
    """fastconv conv / transposed-conv weight -> PyTorch's (NCHW) weight layout."""
    return w if layout == "NCHW" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def distinct(rng, shape, dtype):
    """All-distinct values 0.25 apart (max-pool without ties: stable under perturbation)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.25).reshape(shape).astype(dtype)


# ------------------------------------------------------------------------------------------------
# layer-by-layer vs torch.nn
# ------------------------------------------------------------------------------------------------
def torch_run(tmod, x, gy, layout):
    """Runs torch module tmod on x (given in `layout`), backprops gy; returns (y, gx, {name:
    grad}) converted back to `layout` (parameter grads in torch's own layout)."""
    torch = _torch()
    xt = torch.from_numpy(nchw(x) if layout == "NHWC" and x.ndim == 4 else x.copy())
    xt.requires_grad_(True)
    yt = tmod(xt)
    conv_back = layout == "NHWC" and yt.ndim == 4
    gyt = torch.from_numpy(nchw(gy) if conv_back else gy.copy())
    yt.backward(gyt)
    y = yt.detach().numpy()
    gx = xt.grad.numpy()
    if conv_back:
        y = nhwc(y)
    if layout == "NHWC" and x.ndim == 4:
        gx = nhwc(gx)
    return y, gx, {n: p.grad.numpy() for n, p in tmod.named_parameters()}


def compare_layer(layer, tmod, x, layout, dtype, rng, what):
    """Copies layer's weights into tmod, compares forward, input grad and parameter grads."""
    torch = _torch()
    with torch.no_grad():
        for name, p, _ in layer.params():
            getattr(tmod, name).copy_(torch.from_numpy(w_to_torch(p, layout) if p.ndim == 4
                                                       else p))
    y = layer(x)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = layer.backward(gy)
    ty, tgx, tgrads = torch_run(tmod, x, gy, layout)
    tol = TOL[np.dtype(dtype)]
    assert y.dtype == np.dtype(dtype) and gx.dtype == np.dtype(dtype)
    close(y, ty, tol, f"{what} forward")
    close(gx, tgx, tol, f"{what} grad_x")
    for name, _, g in layer.params():
        close(w_to_torch(g, layout) if g.ndim == 4 else g, tgrads[name], tol, f"{what} d{name}")
    assert sorted(n for n, _, _ in layer.params()) == sorted(tgrads)


CONV_CASES = [  # (C, O, kernel, stride, padding, dilation, groups, bias)
    (3, 4, 3, 1, 1, 1, 1, True),
    (4, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2, True),
    (4, 4, 3, 2, 2, 2, 4, False),
]


@pytest.mark.parametrize("dtype", FP)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_vs_torch(case, layout, dtype):
    torch = _torch()
    c, o, k, s, p, d, g, b = CONV_CASES[case]
    rng = np.random.default_rng(case)
    layer = nn.Conv2d(c, o, k, stride=s, padding=p, dilation=d, groups=g, bias=b, layout=layout,
                      dtype=dtype, rng=rng)
    tmod = torch.nn.Conv2d(c, o, k, stride=s, padding=p, dilation=d, groups=g, bias=b,
                           dtype=torch.float32 if dtype == np.float32 else torch.float64)
    x = rng.standard_normal((2, c, 9, 8)).astype(dtype)
    compare_layer(layer, tmod, nhwc(x) if layout == "NHWC" else x, layout, dtype, rng,
                  f"Conv2d{CONV_CASES[case]}")


@pytest.mark.parametrize("dtype", FP)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv_transpose2d_vs_torch(layout, dtype):
    torch = _torch()
    rng = np.random.default_rng(7)
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                               dilation=1, layout=layout, dtype=dtype, rng=rng)
    tmod = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                    dtype=torch.float32 if dtype == np.float32 else torch.float64)
    x = rng.standard_normal((2, 4, 5, 6)).astype(dtype)
    compare_layer(layer, tmod, nhwc(x) if layout == "NHWC" else x, layout, dtype, rng,
                  "ConvTranspose2d")
    # bias=False, dilation 2
    layer = nn.ConvTranspose2d(3, 2, (2, 3), stride=(1, 2), dilation=2, bias=False,
                               layout=layout, dtype=dtype, rng=rng)
    tmod = torch.nn.ConvTranspose2d(3, 2, (2, 3), stride=(1, 2), dilation=2, bias=False,
                                    dtype=torch.float32 if dtype == np.float32 else torch.float64)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    compare_layer(layer, tmod, nhwc(x) if layout == "NHWC" else x, layout, dtype, rng,
                  "ConvTranspose2d(bias=False)")


def _pool_pairs(torch):
    return [
        ("max", lambda L: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True, layout=L),
         lambda: torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)),
        ("max-dil", lambda L: nn.MaxPool2d((2, 3), stride=1, dilation=2, layout=L),
         lambda: torch.nn.MaxPool2d((2, 3), stride=1, dilation=2)),
        ("avg", lambda L: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                       count_include_pad=False, layout=L),
         lambda: torch.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                    count_include_pad=False)),
        ("avg-div", lambda L: nn.AvgPool2d(2, divisor_override=3, layout=L),
         lambda: torch.nn.AvgPool2d(2, divisor_override=3)),
        ("adaptive-avg", lambda L: nn.AdaptiveAvgPool2d((3, 5), layout=L),
         lambda: torch.nn.AdaptiveAvgPool2d((3, 5))),
        ("adaptive-max", lambda L: nn.AdaptiveMaxPool2d(3, layout=L),
         lambda: torch.nn.AdaptiveMaxPool2d(3)),
    ]


@pytest.mark.parametrize("dtype", FP)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_pools_vs_torch(layout, dtype):
    torch = _torch()
    rng = np.random.default_rng(3)
    for name, make, make_t in _pool_pairs(torch):
        x = distinct(rng, (2, 3, 9, 11), dtype)
        compare_layer(make(layout), make_t(), nhwc(x) if layout == "NHWC" else x, layout, dtype,
                      rng, name)


@pytest.mark.parametrize("dtype", FP)
def test_relu_flatten_linear_vs_torch(dtype):
    torch = _torch()
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 3, 5, 2)).astype(dtype)
    compare_layer(nn.ReLU(), torch.nn.ReLU(), x, "NCHW", dtype, rng, "ReLU")
    compare_layer(nn.Flatten(), torch.nn.Flatten(), x, "NCHW", dtype, rng, "Flatten")
    compare_layer(nn.Flatten(0, 2), torch.nn.Flatten(0, 2), x, "NCHW", dtype, rng, "Flatten(0,2)")
    lin = nn.Linear(7, 5, dtype=dtype, rng=rng)
    compare_layer(lin, torch.nn.Linear(7, 5, dtype=tdt), rng.standard_normal((6, 7)).astype(dtype),
                  "NCHW", dtype, rng, "Linear")
    lin = nn.Linear(7, 5, bias=False, dtype=dtype, rng=rng)
    compare_layer(lin, torch.nn.Linear(7, 5, bias=False, dtype=tdt),
                  rng.standard_normal((2, 3, 7)).astype(dtype), "NCHW", dtype, rng,
                  "Linear(3-D input, no bias)")


def test_relu_nan_and_flatten_nhwc_order():
    y = nn.ReLU()(np.array([-1.0, np.nan, 2.0]))
    assert np.isnan(y[1]) and y[0] == 0 and y[2] == 2
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 2, 2, 3)  # NHWC
    f = nn.Flatten()
    np.testing.assert_array_equal(f(x), x.reshape(2, 12))
    np.testing.assert_array_equal(f.backward(np.ones((2, 12), np.float32)), np.ones(x.shape))


@pytest.mark.parametrize("dtype", FP)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_vs_torch(dtype, reduction):
    torch = _torch()
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((6, 4)) * 3).astype(dtype)
    logits[0] += 1000  # stability: torch and a stable log-softmax stay finite
    t = rng.integers(0, 4, 6)
    crit = nn.SoftmaxCrossEntropy(reduction=reduction)
    loss = crit(logits, t)
    g = crit.backward()
    lt = torch.from_numpy(logits.copy()).requires_grad_(True)
    ref = torch.nn.functional.cross_entropy(lt, torch.from_numpy(t), reduction=reduction)
    ref.backward()
    assert isinstance(loss, np.dtype(dtype).type) and np.isfinite(loss)
    close(loss, ref.item(), TOL[np.dtype(dtype)], "loss")
    assert g.dtype == np.dtype(dtype)
    close(g, lt.grad.numpy(), TOL[np.dtype(dtype)], "dlogits")
    close(crit.backward(2.5), 2.5 * lt.grad.numpy(), TOL[np.dtype(dtype)], "dlogits * 2.5")


# ------------------------------------------------------------------------------------------------
# finite differences (float64)
# ------------------------------------------------------------------------------------------------
def fd_check(layer, x, rng, n_samples=12, eps=1e-6, tol=1e-6):
    """Central differences of sum(layer(x) * r) w.r.t. sampled entries of x and each param."""
    y = layer(x)
    r = rng.standard_normal(y.shape)
    gx = layer.backward(r)
    grads = {n: g.copy() for n, _, g in layer.params()}

    def f():
        return float(np.sum(layer(x) * r))

    targets = [("x", x, gx)] + [(n, p, grads[n]) for n, p, _ in layer.params()]
    for name, arr, g in targets:
        flat = arr.reshape(-1)
        assert np.shares_memory(flat, arr)
        for i in rng.choice(flat.size, min(n_samples, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            fp = f()
            flat[i] = old - eps
            fm = f()
            flat[i] = old
            num = (fp - fm) / (2 * eps)
            ana = g.reshape(-1)[i]
            assert abs(num - ana) <= tol * max(1.0, abs(num)), \
                f"{type(layer).__name__} d{name}[{i}]: numeric {num} analytic {ana}"


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_finite_differences_conv(layout):
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 4, 7, 6))
    x = nhwc(x) if layout == "NHWC" else x
    fd_check(nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, layout=layout,
                       dtype=np.float64, rng=rng), x.copy(), rng)
    fd_check(nn.Conv2d(4, 3, (2, 3), padding="same", dilation=(2, 1), layout=layout,
                       dtype=np.float64, rng=rng), x.copy(), rng)
    fd_check(nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, layout=layout,
                                dtype=np.float64, rng=rng), x.copy(), rng)


def test_finite_differences_other_layers():
    rng = np.random.default_rng(22)
    fd_check(nn.Linear(5, 3, dtype=np.float64, rng=rng), rng.standard_normal((4, 5)), rng)
    fd_check(nn.AvgPool2d(3, stride=2, padding=1), rng.standard_normal((2, 3, 7, 6)), rng)
    fd_check(nn.MaxPool2d(2, stride=2, padding=1), distinct(rng, (2, 3, 7, 6), np.float64), rng)
    fd_check(nn.AdaptiveAvgPool2d((2, 3), layout="NHWC"), rng.standard_normal((2, 5, 7, 3)), rng)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng), nn.ReLU(),
                        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12, 4, dtype=np.float64, rng=rng))
    fd_check(net, rng.standard_normal((3, 2, 4, 4)), rng, n_samples=8)


def test_finite_differences_cross_entropy():
    rng = np.random.default_rng(23)
    z = rng.standard_normal((5, 4))
    t = rng.integers(0, 4, 5)
    crit = nn.SoftmaxCrossEntropy()
    crit(z, t)
    g = crit.backward()
    eps = 1e-6
    for i in range(z.size):
        zp, zm = z.copy(), z.copy()
        zp.flat[i] += eps
        zm.flat[i] -= eps
        num = (crit(zp, t) - crit(zm, t)) / (2 * eps)
        assert abs(num - g.flat[i]) < 1e-8


# ------------------------------------------------------------------------------------------------
# initialisation
# ------------------------------------------------------------------------------------------------
def test_init_like_pytorch():
    torch = _torch()
    cases = [(nn.Conv2d(6, 8, (3, 5), groups=2, rng=0), torch.nn.Conv2d(6, 8, (3, 5), groups=2)),
             (nn.ConvTranspose2d(6, 8, 3, groups=2, rng=0),
              torch.nn.ConvTranspose2d(6, 8, 3, groups=2)),
             (nn.Linear(30, 7, rng=0), torch.nn.Linear(30, 7))]
    for layer, tmod in cases:
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(tmod.weight)
        bound = 1 / np.sqrt(fan_in)
        for name, p, g in layer.params():
            tp = getattr(tmod, name).detach().numpy()
            assert p.shape == tp.shape and p.dtype == np.float32 and p.flags.c_contiguous
            assert np.abs(p).max() <= bound and np.abs(tp).max() <= bound
            if p.size > 50:
                assert np.abs(p).max() > 0.8 * bound  # spread over the whole interval
            assert not g.any()


def test_init_seeded_and_layout_consistent():
    a = nn.Conv2d(3, 5, 3, rng=np.random.default_rng(1))
    b = nn.Conv2d(3, 5, 3, rng=np.random.default_rng(1))
    c = nn.Conv2d(3, 5, 3, layout="NHWC", rng=1)
    d = nn.Conv2d(3, 5, 3, dtype=np.float64, rng=1)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.weight.transpose(2, 3, 1, 0), c.weight)
    np.testing.assert_array_equal(a.bias, c.bias)
    assert c.weight.shape == (3, 3, 3, 5) and c.weight.flags.c_contiguous
    assert d.weight.dtype == np.float64
    np.testing.assert_array_equal(a.weight, d.weight.astype(np.float32))
    t = nn.ConvTranspose2d(4, 6, (2, 3), groups=2, layout="NHWC", rng=1)
    assert t.weight.shape == (2, 3, 3, 4)
    assert not np.array_equal(nn.Linear(4, 4).weight, nn.Linear(4, 4).weight)  # rng=None
    assert nn.Conv2d(2, 2, 1, bias=False).bias is None


# ------------------------------------------------------------------------------------------------
# optimizers vs torch.optim
# ------------------------------------------------------------------------------------------------
OPT_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", FP)
@pytest.mark.parametrize("case", range(len(OPT_CASES)))
def test_optimizers_vs_torch(case, dtype):
    torch = _torch()
    kind, kw = OPT_CASES[case]
    rng = np.random.default_rng(case)
    ps = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]
    gs = [np.zeros_like(p) for p in ps]
    tps = [torch.from_numpy(p.copy()).requires_grad_(True) for p in ps]
    opt = getattr(nn, kind)(list(zip(ps, gs)), **kw)
    topt = getattr(torch.optim, kind)(tps, **kw)
    for _ in range(10):
        for p, g, tp in zip(ps, gs, tps):
            g[...] = rng.standard_normal(g.shape)
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        close(p, tp.detach().numpy(), 1e-5 if dtype == np.float32 else 1e-12, f"{kind}{kw}")
    opt.zero_grad()
    assert not any(g.any() for g in gs)


def test_optimizer_updates_layers_in_place():
    net = nn.Sequential(nn.Linear(3, 2, rng=0))
    w = net[0].weight
    opt = nn.SGD(net, lr=1.0)
    x = np.ones((1, 3), np.float32)
    net.backward(np.ones_like(net(x)))
    before = w.copy()
    opt.step()
    assert net[0].weight is w
    np.testing.assert_allclose(w, before - 1.0, rtol=0, atol=1e-6)
    # backward overwrites (does not accumulate) the gradients; zero_grad zeroes them
    net.backward(np.ones((1, 2), np.float32))
    net.backward(np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(net[0].grads()["weight"], np.ones((2, 3)))
    net.zero_grad()
    assert not net[0].grads()["weight"].any()
    # assigning a parameter copies into the live array the optimizer holds
    net[0].weight = np.zeros((2, 3))
    assert net[0].weight is w and not w.any()
    with pytest.raises(ValueError):
        net[0].weight = np.zeros((3, 2))


# ------------------------------------------------------------------------------------------------
# acceptance: LeNet vs PyTorch
# ------------------------------------------------------------------------------------------------
def lenet(layout="NCHW", dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    kw = dict(layout=layout, dtype=dtype, rng=rng)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, **kw), nn.ReLU(), nn.MaxPool2d(2, layout=layout),
        nn.Conv2d(6, 16, 5, **kw), nn.ReLU(), nn.MaxPool2d(2, layout=layout),
        nn.Flatten(), nn.Linear(400, 120, dtype=dtype, rng=rng), nn.ReLU(),
        nn.Linear(120, 84, dtype=dtype, rng=rng), nn.ReLU(), nn.Linear(84, 10, dtype=dtype,
                                                                         rng=rng))


def torch_lenet(torch, net, layout="NCHW"):
    """PyTorch LeNet holding net's weights (converted from NHWC where needed)."""
    T = torch.nn
    tnet = T.Sequential(T.Conv2d(1, 6, 5, padding=2), T.ReLU(), T.MaxPool2d(2),
                        T.Conv2d(6, 16, 5), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
                        T.Linear(400, 120), T.ReLU(), T.Linear(120, 84), T.ReLU(),
                        T.Linear(84, 10))
    dt = torch.float32 if net[0].weight.dtype == np.float32 else torch.float64
    tnet = tnet.to(dt)
    sd = {}
    for name, p, _ in net.params():
        sd[name] = torch.from_numpy(to_torch_param(name, p, layout))
    tnet.load_state_dict(sd)
    return tnet


def to_torch_param(name, p, layout):
    if layout == "NCHW":
        return p.copy()
    if p.ndim == 4:
        return np.ascontiguousarray(p.transpose(3, 2, 0, 1))
    if name == "7.weight":  # NHWC flatten order (H, W, C) -> torch's (C, H, W)
        p = p.reshape(120, 5, 5, 16).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(p.reshape(120, 400))
    return p.copy()


def digits_batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    return x, rng.integers(0, 10, n)


def test_lenet_matches_pytorch_one_step():
    torch = _torch()
    net = lenet()
    tnet = torch_lenet(torch, net)
    assert list(tnet.state_dict()) == [n for n, _, _ in net.params()]
    x, t = digits_batch()
    crit = nn.SoftmaxCrossEntropy()
    loss = crit(net(x), t)
    net.backward(crit.backward())
    tloss = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(t))
    tloss.backward()
    assert abs(float(loss) - tloss.item()) <= 1e-5 * abs(tloss.item())
    tgrads = {n: p.grad.numpy() for n, p in tnet.named_parameters()}
    for name, _, g in net.params():
        close(g, tgrads[name], 1e-5, f"LeNet d{name}")


def test_lenet_nhwc_matches_pytorch():
    torch = _torch()
    net = lenet("NHWC")
    tnet = torch_lenet(torch, net, "NHWC")
    x, t = digits_batch(seed=1)
    crit = nn.SoftmaxCrossEntropy()
    loss = crit(net(nhwc(x)), t)
    net.backward(crit.backward())
    tloss = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(t))
    tloss.backward()
    assert abs(float(loss) - tloss.item()) <= 1e-5 * abs(tloss.item())
    tgrads = {n: p.grad.numpy() for n, p in tnet.named_parameters()}
    for name, _, g in net.params():
        close(to_torch_param(name, g, "NHWC"), tgrads[name], 1e-5, f"LeNet NHWC d{name}")


@pytest.mark.parametrize("kind,kw,steps", [("SGD", dict(lr=0.02, momentum=0.9), 20),
                                           ("Adam", dict(lr=1e-3), 20)])
def test_lenet_training_matches_pytorch(kind, kw, steps):
    torch = _torch()
    net = lenet(seed=2)
    tnet = torch_lenet(torch, net)
    opt = getattr(nn, kind)(net, **kw)
    topt = getattr(torch.optim, kind)(tnet.parameters(), **kw)
    crit = nn.SoftmaxCrossEntropy()
    losses = []
    for step in range(steps):
        x, t = digits_batch(seed=100 + step % 4)
        loss = crit(net(x), t)
        net.backward(crit.backward())
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(t))
        tloss.backward()
        topt.step()
        losses.append(float(loss))
        assert abs(float(loss) - tloss.item()) <= 1e-4 * abs(tloss.item()), f"step {step} loss"
    assert losses[-1] < losses[0]  # it learns
    tparams = {n: p.detach().numpy() for n, p in tnet.named_parameters()}
    for name, p, _ in net.params():
        close(p, tparams[name], 1e-4, f"{kind} LeNet {name} after {steps} steps")


# ------------------------------------------------------------------------------------------------
# state_dict, save/load, train/eval, Sequential and custom modules
# ------------------------------------------------------------------------------------------------
def test_state_dict_round_trip(tmp_path):
    net = lenet(seed=3)
    x, _ = digits_batch()
    y = net(x)
    sd = net.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                        "9.weight", "9.bias", "11.weight", "11.bias"]
    assert sd["0.weight"].shape == (6, 1, 5, 5) and sd["7.weight"].shape == (120, 400)
    assert not np.shares_memory(sd["0.weight"], net[0].weight)  # copies
    net.save(tmp_path / "lenet.npz")
    other = lenet(seed=4)
    w = other[0].weight
    assert not np.array_equal(other(x), y)
    opt = nn.SGD(other, lr=0.1)
    other.load(tmp_path / "lenet.npz")
    assert other[0].weight is w  # loaded in place: optimizer references stay valid
    assert opt._params[0][1] is w
    np.testing.assert_array_equal(other(x), y)
    net.save(str(tmp_path / "noext"))  # numpy appends .npz; load finds it
    lenet(seed=5).load(str(tmp_path / "noext"))
    # float64 copy of a float32 net
    n64 = lenet(dtype=np.float64, seed=6).load_state_dict(sd)
    np.testing.assert_allclose(n64(x.astype(np.float64)), y, rtol=1e-4, atol=1e-5)
    bad = dict(sd)
    del bad["0.bias"]
    with pytest.raises(KeyError, match="0.bias"):
        other.load_state_dict(bad)
    other.load_state_dict(bad, strict=False)
    bad = dict(sd, **{"0.weight": np.zeros((6, 1, 3, 3))})
    with pytest.raises(ValueError, match="0.weight"):
        other.load_state_dict(bad)


def test_dropout_train_eval():
    x = np.ones((200, 100), np.float32)
    d = nn.Dropout(0.3, rng=0)
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    g = d.backward(np.full_like(x, 2.0))
    np.testing.assert_allclose(g, 2 * y, rtol=1e-6)
    assert not np.array_equal(d(x), y)  # new mask each call
    np.testing.assert_array_equal(nn.Dropout(0.3, rng=0)(x), y)  # seeded
    net = nn.Sequential(nn.Linear(100, 100, rng=0), nn.Dropout(0.5))
    assert net.eval() is net and not net[1].training
    np.testing.assert_array_equal(net[1](x), x)
    np.testing.assert_array_equal(net[1].backward(x), x)
    net.train()
    assert net[1].training and (net[1](x) == 0).any()
    assert not nn.Dropout(1.0)(x).any()
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_custom_module_and_sequential():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 2, 3, rng=0)
            self.body = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(8, 3, rng=0))

        def forward(self, x):
            return self.body(self.conv1(x))

        def backward(self, g):
            return self.conv1.backward(self.body.backward(g))

    net = Net()
    assert [n for n, _, _ in net.params()] == ["conv1.weight", "conv1.bias", "body.2.weight",
                                               "body.2.bias"]
    x = np.ones((2, 1, 4, 4), np.float32)
    y = net(x)
    assert y.shape == (2, 3)
    assert net.backward(np.ones_like(y)).shape == x.shape
    assert net.eval().body[0].training is False
    assert net.num_params() == 2 * 9 + 2 + 8 * 3 + 3
    assert "Conv2d(1, 2" in repr(net) and "Linear(in_features=8" in repr(net)
    seq = nn.Sequential(nn.ReLU(), nn.ReLU())
    assert len(seq) == 2 and len(seq[:1]) == 1
    z = np.array([[1.0, -1.0]])
    np.testing.assert_array_equal(nn.Sequential().backward(z), z)
    with pytest.raises(TypeError):
        nn.Sequential(lambda v: v)
    assert fastconv.nn is nn


def test_unbatched_and_float64():
    rng = np.random.default_rng(9)
    conv = nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 5, 5))
    y = conv(x)
    assert y.shape == (3, 5, 5) and y.dtype == np.float64
    gx = conv.backward(np.ones_like(y))
    assert gx.shape == x.shape
    yb = conv(x[None])
    np.testing.assert_allclose(yb[0], y, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
def _all_layers():
    return [nn.Conv2d(2, 2, 3, rng=0), nn.ConvTranspose2d(2, 2, 3, rng=0), nn.MaxPool2d(2),
            nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(2), nn.AdaptiveMaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Dropout(), nn.Sequential(nn.Conv2d(2, 2, 3, rng=0), nn.ReLU())]


def test_backward_before_forward_and_bad_grads():
    for layer in _all_layers() + [nn.Linear(6, 2, rng=0)]:
        name = type(layer).__name__
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.zeros((2, 2, 4, 4), np.float32))
        x = np.ones((2, 2, 6, 6), np.float32)
        y = layer(x)
        with pytest.raises(ValueError, match="shape"):
            layer.backward(np.zeros(y.shape + (1,), np.float32))
        with pytest.raises(TypeError):
            layer.backward(np.zeros(y.shape, np.float64))
        with pytest.raises(TypeError):
            layer.backward(y.tolist())
        assert layer.backward(np.zeros_like(y)).shape == x.shape, name
    with pytest.raises(RuntimeError, match="before forward"):
        nn.SoftmaxCrossEntropy().backward()


def test_bad_arguments():
    with pytest.raises(TypeError, match="dtype"):
        nn.Conv2d(2, 2, 3, rng=0)(np.ones((1, 2, 4, 4)))  # float64 input, float32 layer
    with pytest.raises(TypeError):
        nn.Linear(2, 2, rng=0)(np.ones((1, 2), np.int64))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(3, 2, rng=0)(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="divisible"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError):
        nn.Conv2d(2, 2, 3, stride=0)
    with pytest.raises(ValueError, match="layout"):
        nn.Conv2d(2, 2, 3, layout="NWHC")
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 2, dtype=np.float16)
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(2, 2, rng="seed")
    crit = nn.SoftmaxCrossEntropy()
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="targets"):
        crit(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="targets"):
        crit(z, np.array([0, 1]))
    with pytest.raises(TypeError, match="targets"):
        crit(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="empty"):
        nn.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD(nn.Linear(2, 2), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        nn.Adam(nn.Linear(2, 2), lr=-1)
    with pytest.raises(ValueError, match="betas"):
        nn.Adam(nn.Linear(2, 2), betas=(1.0, 0.9))
