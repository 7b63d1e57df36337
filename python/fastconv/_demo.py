"""``python -m fastconv demo``: train a LeNet-style CNN built from ``fastconv.nn`` on the digits.

    pip install "fastconv[demo]"          # scikit-learn (the data), tqdm, matplotlib
    python -m fastconv demo [--epochs N] [--batch-size B] [--lr LR] [--threads N] [--seed S]
                            [--plot curves.png] [--compare-numpy] [--no-augment] [--limit N]

The data is scikit-learn's ``load_digits`` (1797 8x8 grey images of handwritten digits, shipped
inside scikit-learn, no download). Each image is upsampled 3x (nearest neighbour) to 24x24 and
padded to 28x28, the MNIST geometry, so the network is LeNet-5's: conv 5x5 (1 -> 6, pad 2) -
ReLU - max-pool 2 - conv 5x5 (6 -> 16) - ReLU - max-pool 2 - 400 - 120 - 84 - 10 (its two conv
layers are the ``lenet_conv1`` / ``lenet_conv2`` cases of ``python -m fastconv bench``). It is
trained with Adam, the learning rate decayed to 0 along a cosine over the epochs, on a
stratified 80/20 train/test split; each training batch is shifted by a random offset of up to
2 pixels (``--no-augment`` turns that off). NumPy's BLAS (the Linear layers) is held to one
thread. Defaults: 15 epochs, batch 32, lr 2e-3 — about 5 s on an idle 2-core machine, 98.3-99.4 %
test accuracy over seeds 0-9.

Per epoch: a progress bar, the mean training loss and accuracy, the test accuracy and the
training speed in images per second; at the end the held-out test accuracy and the times.
``--plot`` writes the learning curves and a few test predictions (matplotlib, Agg backend).
``--compare-numpy`` then times one more training epoch of the same network twice — with
fastconv's layers and with the NumPy im2col + matmul layers of the benchmark's baseline
(CS231n style) in place of Conv2d / MaxPool2d — and prints the speed ratio.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

INSTALL_HINT = 'pip install "fastconv[demo]"'

DEFAULTS = dict(epochs=15, batch_size=32, lr=2e-3, seed=0)
MAX_SHIFT = 2          # pixels of random translation per training batch


class DemoError(Exception):
    """A problem the user can fix (missing optional dependency, bad option)."""


# ------------------------------------------------------------------------------------ options
def add_arguments(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    p.add_argument("--epochs", type=int, default=d["epochs"],
                   help=f"training epochs (default {d['epochs']})")
    p.add_argument("--batch-size", type=int, default=d["batch_size"],
                   help=f"mini-batch size (default {d['batch_size']})")
    p.add_argument("--lr", type=float, default=d["lr"],
                   help=f"initial Adam learning rate, decayed along a cosine (default "
                        f"{d['lr']:g})")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for fastconv's kernels (default: fastconv's own setting). "
                        "NumPy's BLAS (the Linear layers) runs on 1 thread: its spinning "
                        "workers would otherwise steal cores from fastconv's")
    p.add_argument("--seed", type=int, default=d["seed"],
                   help="seed of the split, the initial weights and the shuffling (default 0)")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="write learning curves and a few test predictions (needs matplotlib)")
    p.add_argument("--compare-numpy", action="store_true",
                   help="time one epoch with NumPy im2col layers instead of fastconv's and print "
                        "the speed ratio")
    p.add_argument("--no-augment", action="store_true",
                   help=f"no random shifts (up to {MAX_SHIFT} pixels) of the training batches")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use only N images of the data set (a quick smoke run)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


# ------------------------------------------------------------------------------------ deps
def _require_sklearn():
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise DemoError(f"the demo's data set comes with scikit-learn, which is not installed "
                        f"({e}). Install the demo extras: {INSTALL_HINT}") from e
    return load_digits, train_test_split


def _require_matplotlib():
    try:
        import matplotlib
    except ImportError as e:
        raise DemoError(f"--plot needs matplotlib, which is not installed. Install the demo "
                        f"extras: {INSTALL_HINT}") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# ------------------------------------------------------------------------------------ data
def load_data(seed: int = 0, limit: Optional[int] = None, dtype=np.float32):
    """(x_train, y_train, x_test, y_test, images_test_8x8): NCHW (N, 1, 28, 28), standardised
    with the training set's mean and standard deviation; labels int64."""
    load_digits, train_test_split = _require_sklearn()
    digits = load_digits()
    x8 = digits.images.astype(np.float64) / 16.0          # (1797, 8, 8), values 0..1
    y = digits.target.astype(np.int64)
    if limit is not None:
        if limit < 20:
            raise DemoError(f"--limit must be at least 20, got {limit}")
        idx = np.random.default_rng(seed).permutation(len(y))[:limit]
        x8, y = x8[idx], y[idx]
    x24 = np.kron(x8, np.ones((1, 3, 3)))                 # nearest-neighbour 3x upsampling
    x28 = np.pad(x24, ((0, 0), (2, 2), (2, 2)))           # MNIST geometry: 28x28, digit centred
    x = x28[:, None, :, :]
    strat = y if np.bincount(y).min() >= 2 else None
    xtr, xte, ytr, yte, i8tr, i8te = train_test_split(x, y, x8, test_size=0.2, random_state=seed,
                                                      stratify=strat)
    mean, std = xtr.mean(), xtr.std()
    xtr = ((xtr - mean) / std).astype(dtype)
    xte = ((xte - mean) / std).astype(dtype)
    return xtr, ytr, xte, yte, i8te


# ------------------------------------------------------------------------------------ model
def build_lenet(seed: int = 0, dtype=np.float32):
    """LeNet-5 from fastconv.nn for (N, 1, 28, 28) inputs and 10 classes."""
    from . import nn
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, dtype=dtype, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, dtype=dtype, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120, dtype=dtype, rng=rng), nn.ReLU(),
        nn.Linear(120, 84, dtype=dtype, rng=rng), nn.ReLU(),
        nn.Linear(84, 10, dtype=dtype, rng=rng),
    )


def _make_optimizer(model, lr: float):
    from . import nn
    return nn.Adam(model.params(), lr=lr)


def _set_mode(model, train: bool) -> None:
    (model.train if train else model.eval)()


def predict(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Logits of x in eval mode, batch by batch."""
    _set_mode(model, False)
    outs = [model(x[i:i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0)


def train_epoch(model, loss_fn, opt, x, y, batch_size, rng, bar=None, shift: int = 0
                ) -> Tuple[float, float, float]:
    """One pass over (x, y) in a random order, each batch translated by a random offset of up
    to ``shift`` pixels (np.roll: only the zero border wraps around); (mean loss, accuracy,
    seconds)."""
    _set_mode(model, True)
    order = rng.permutation(len(x))
    tot_loss, correct, seen = 0.0, 0, 0
    t0 = time.perf_counter()
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        xb, yb = x[idx], y[idx]
        if shift:
            dy, dx = rng.integers(-shift, shift + 1, size=2)
            xb = np.roll(xb, (int(dy), int(dx)), axis=(2, 3))
        opt.zero_grad()
        logits = model(xb)
        loss = float(loss_fn(logits, yb))
        model.backward(loss_fn.backward())
        opt.step()
        n = len(idx)
        tot_loss += loss * n
        correct += int((np.argmax(logits, axis=1) == yb).sum())
        seen += n
        if bar is not None:
            bar.update(n)
            bar.set_postfix_str(f"loss {tot_loss / seen:.3f} acc {100 * correct / seen:.1f}%")
    return tot_loss / seen, correct / seen, time.perf_counter() - t0


# ------------------------------------------------------------------------------------ NumPy twin
def _numpy_layer_classes():
    """Conv2d / MaxPool2d subclasses whose forward/backward are the NumPy baseline's, CS231n
    style: the conv caches its im2col matrix in forward and reuses it for the weight gradient;
    the input gradient is W^T @ dY then col2im. Parameters and gradient buffers are the
    fastconv.nn ones, so optimizers and params() work unchanged."""
    from . import nn
    from ._bench import baselines as B

    class NumpyConv2d(nn.Conv2d):
        def forward(self, x):
            if self.layout != "NCHW" or self.groups != 1 or isinstance(self.padding, str):
                raise ValueError("NumpyConv2d: NCHW, groups=1, integer padding only")
            w = self.weight
            k, _, kh, kw = w.shape
            n = x.shape[0]
            cols = B.im2col(x, kh, kw, self.stride, self.padding, self.dilation)
            res = w.reshape(k, -1) @ cols
            if self.bias is not None:
                res += self.bias.reshape(k, 1)
            (sh, sw), (ph, pw), (dh, dw) = (B._pair(v) for v in (self.stride, self.padding,
                                                                 self.dilation))
            ho = B.conv_output_size(x.shape[2], kh, sh, ph, dh)
            wo = B.conv_output_size(x.shape[3], kw, sw, pw, dw)
            y = np.ascontiguousarray(res.reshape(k, n, ho, wo).transpose(1, 0, 2, 3))
            return self._save(y, x.shape, cols)

        def backward(self, grad_y):
            x_shape, cols = self._saved(grad_y)
            w = self.weight
            k, _, kh, kw = w.shape
            dym = B._grad_matrix(grad_y)
            self._set_grad("weight", (dym @ cols.T).reshape(w.shape))
            if self.bias is not None:
                self._set_grad("bias", grad_y.sum(axis=(0, 2, 3)))
            dcols = w.reshape(k, -1).T @ dym
            return B.col2im(dcols, x_shape, kh, kw, self.stride, self.padding, self.dilation)

    class NumpyMaxPool2d(nn.MaxPool2d):
        def forward(self, x):
            if self.layout != "NCHW" or self.dilation != 1 or self.ceil_mode:
                raise ValueError("NumpyMaxPool2d: NCHW, dilation 1, floor mode only")
            y, cache = B.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
            return self._save(y, cache)

        def backward(self, grad_y):
            (cache,) = self._saved(grad_y)
            return B.max_pool2d_backward(grad_y, cache)

    return nn, NumpyConv2d, NumpyMaxPool2d


def numpy_twin(model):
    """A deep copy of ``model`` whose Conv2d / MaxPool2d layers run the NumPy im2col baseline
    (same parameters, same results up to rounding)."""
    nn, NumpyConv2d, NumpyMaxPool2d = _numpy_layer_classes()
    twin = copy.deepcopy(model)

    def swap(m):
        for c in m.children():
            if type(c) is nn.Conv2d:
                c.__class__ = NumpyConv2d
            elif type(c) is nn.MaxPool2d:
                c.__class__ = NumpyMaxPool2d
            swap(c)
    swap(twin)
    return twin


# ------------------------------------------------------------------------------------ plot
def plot(path: str, history: List[Dict[str, float]], batch_losses: List[float],
         images8: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, title: str) -> None:
    plt = _require_matplotlib()
    fig = plt.figure(figsize=(13, 4.6))
    gs = fig.add_gridspec(3, 8, width_ratios=[3, 3, 1, 1, 1, 1, 1, 1], wspace=0.35, hspace=0.5)
    ep = [h["epoch"] for h in history]

    ax = fig.add_subplot(gs[:, 0])
    if batch_losses:
        nb = len(batch_losses)
        xs = np.linspace(0, len(history), nb + 1)[1:]
        ax.plot(xs, batch_losses, color="#9ecae1", lw=0.8, label="batch")
    ax.plot(ep, [h["loss"] for h in history], "o-", color="#08519c", label="epoch mean")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("training loss (cross-entropy)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = fig.add_subplot(gs[:, 1])
    ax.plot(ep, [100 * h["train_acc"] for h in history], "o-", label="train")
    ax.plot(ep, [100 * h["test_acc"] for h in history], "s-", label="test")
    ax.set_xlabel("epoch")
    ax.set_title("accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    lo = min(100 * min(h["test_acc"], h["train_acc"]) for h in history)
    ax.set_ylim(max(0.0, min(lo, 90.0) - 2), 100.5)

    wrong = np.flatnonzero(y_pred != y_true)
    right = np.flatnonzero(y_pred == y_true)
    pick = list(wrong[:6]) + list(right[:18 - min(6, len(wrong))])
    for k, i in enumerate(pick[:18]):
        ax = fig.add_subplot(gs[k // 6, 2 + k % 6])
        ax.imshow(images8[i], cmap="gray_r", interpolation="nearest")
        ok = y_pred[i] == y_true[i]
        ax.set_title(f"{y_pred[i]}" + ("" if ok else f" (is {y_true[i]})"),
                     color="green" if ok else "red", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# ------------------------------------------------------------------------------------ run
def _set_threads(n: Optional[int]) -> str:
    """fastconv on n threads (None: unchanged); NumPy's BLAS on 1 (tiny Linear layers gain
    nothing from threads, and OpenBLAS's busy-waiting workers slow down the OpenMP kernels
    that run next: 3x on a 2-core machine). Returns a note for the header."""
    import fastconv
    if n is not None:
        if n < 1:
            raise DemoError(f"--threads must be >= 1, got {n}")
        fastconv.set_num_threads(n)
    try:
        import threadpoolctl
    except ImportError:
        return "NumPy BLAS threads unchanged (no threadpoolctl)"
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")
    return "NumPy BLAS 1 thread"


def run(args, out=sys.stdout, err=sys.stderr) -> int:
    try:
        return _run(args, out, err)
    except DemoError as e:
        print(f"fastconv demo: {e}", file=err)
        return 2


def _run(args, out, err) -> int:
    t_all = time.perf_counter()
    if args.epochs < 1 or args.batch_size < 1:
        raise DemoError("--epochs and --batch-size must be >= 1")
    if args.plot:
        _require_matplotlib()                              # fail before training, not after
    _require_sklearn()
    from . import nn
    from ._bench.progress import have_tqdm, progress
    import fastconv

    blas_note = _set_threads(args.threads)
    xtr, ytr, xte, yte, img_te = load_data(args.seed, args.limit)
    model = build_lenet(args.seed)
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = _make_optimizer(model, args.lr)
    rng = np.random.default_rng(args.seed + 1)
    print(f"fastconv {fastconv.__version__} demo: LeNet-5 on scikit-learn digits "
          f"(8x8 -> 28x28), {len(xtr)} train / {len(xte)} test images, {args.epochs} epochs, "
          f"batch {args.batch_size}, Adam lr {args.lr:g} (cosine decay)"
          f"{'' if args.no_augment else f', random shifts <= {MAX_SHIFT} px'}; fastconv "
          f"{fastconv.get_num_threads()} thread(s), ISA {fastconv.get_isa()}; {blas_note}",
          file=out, flush=True)
    if not have_tqdm() and not args.no_progress:
        print(f"(install tqdm for progress bars: {INSTALL_HINT})", file=err)

    history: List[Dict[str, float]] = []
    batch_losses: List[float] = []
    train_s = 0.0
    shift = 0 if args.no_augment else MAX_SHIFT
    for epoch in range(1, args.epochs + 1):
        opt.lr = args.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / args.epochs))
        bar = progress(total=len(xtr), desc=f"epoch {epoch}/{args.epochs}", unit="img",
                       leave=False, disable=args.no_progress)
        try:
            loss, acc, secs = _train_epoch_logged(model, loss_fn, opt, xtr, ytr,
                                                  args.batch_size, rng, bar, batch_losses, shift)
        finally:
            bar.close()
        train_s += secs
        test_acc = float((np.argmax(predict(model, xte), axis=1) == yte).mean())
        history.append(dict(epoch=epoch, loss=loss, train_acc=acc, test_acc=test_acc,
                            seconds=secs, images_per_s=len(xtr) / secs))
        print(f"epoch {epoch:2d}/{args.epochs}  loss {loss:.4f}  train acc {100 * acc:5.1f}%  "
              f"test acc {100 * test_acc:5.1f}%  {len(xtr) / secs:7.0f} img/s  ({secs:.2f} s)",
              file=out, flush=True)

    pred = np.argmax(predict(model, xte), axis=1)
    test_acc = float((pred == yte).mean())
    total = time.perf_counter() - t_all
    print(f"test accuracy: {100 * test_acc:.2f}% ({int((pred == yte).sum())}/{len(yte)} held-out "
          f"images); training {train_s:.1f} s ({train_s / args.epochs:.2f} s/epoch, "
          f"{len(xtr) * args.epochs / train_s:.0f} img/s), total {total:.1f} s", file=out,
          flush=True)

    if args.compare_numpy:
        compare_numpy(model, nn, xtr, ytr, args, out)

    if args.plot:
        plot(args.plot, history, batch_losses, img_te, yte, pred,
             f"fastconv.nn LeNet-5 on digits: test accuracy {100 * test_acc:.1f}% after "
             f"{args.epochs} epochs ({train_s:.1f} s training)")
        print(f"plot written to {args.plot}", file=out)
    return 0


def _train_epoch_logged(model, loss_fn, opt, x, y, batch_size, rng, bar, batch_losses, shift):
    """train_epoch that also records every batch's loss (for the plot)."""
    class _Tap:
        def __init__(self, f):
            self.f = f

        def __call__(self, logits, yb):
            v = float(self.f(logits, yb))
            batch_losses.append(v)
            return v

        def backward(self, *a):
            return self.f.backward(*a)
    return train_epoch(model, _Tap(loss_fn), opt, x, y, batch_size, rng, bar, shift)


def compare_numpy(model, nn, xtr, ytr, args, out) -> None:
    """One more training epoch, timed twice on copies of the trained net: fastconv's layers,
    then the NumPy im2col baseline's (same data order)."""
    times = {}
    losses = {}
    for name, make in (("fastconv", copy.deepcopy), ("numpy", numpy_twin)):
        net = make(model)
        opt = _make_optimizer(net, args.lr)
        loss, acc, secs = train_epoch(net, nn.SoftmaxCrossEntropy(), opt, xtr, ytr,
                                      args.batch_size, np.random.default_rng(12345))
        times[name], losses[name] = secs, loss
    print(f"one training epoch: fastconv {times['fastconv']:.2f} s "
          f"({len(xtr) / times['fastconv']:.0f} img/s), NumPy im2col {times['numpy']:.2f} s "
          f"({len(xtr) / times['numpy']:.0f} img/s): fastconv is "
          f"{times['numpy'] / times['fastconv']:.1f}x faster (epoch losses "
          f"{losses['fastconv']:.5f} and {losses['numpy']:.5f}: the same net)", file=out,
          flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastconv demo", description=__doc__.split("\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
