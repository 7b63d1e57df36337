"""A CS231n-style three-layer ConvNet, switched to fastconv by changing one import.

The network is the one of the CS231n assignment (``cs231n/classifiers/cnn.py``):

    conv - relu - 2x2 max pool - affine - relu - affine - softmax

written against the assignment's layer interface (``conv_relu_pool_forward``,
``affine_relu_forward``, ``softmax_loss`` ...). The assignment gets those functions from its own
modules, whose fast convolution needs a Cython extension compiled by the student; here they come
from ``fastconv.compat.cs231n`` and nothing needs building.

It trains for a few epochs with SGD + momentum on the scikit-learn digits (8x8 grey images, 10
classes) when scikit-learn is installed, and otherwise on a small random data set that it learns
by heart (CS231n's "overfit a small data set" sanity check); either way it prints the loss as it
goes and finishes in seconds.

    python examples/cs231n_three_layer_convnet.py [--epochs 5] [--random] [--dtype float64]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

# ---- the one-import switch ------------------------------------------------------------------
# A CS231n net imports its layers from the assignment:
#     from cs231n.layers import *
#     from cs231n.fast_layers import *
#     from cs231n.layer_utils import *
# With fastconv, this one line replaces them (same names, same conv_param / pool_param dicts,
# same caches):
from fastconv.compat.cs231n import *  # noqa: F403


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax, on (N, C, H, W) inputs.

    Same constructor and loss() contract as CS231n's ThreeLayerConvNet: loss(X) returns the class
    scores, loss(X, y) returns (loss, grads) with grads keyed like self.params.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32, seed=0):
        self.reg, self.dtype = reg, dtype
        c, h, w = input_dim
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": weight_scale * rng.standard_normal((num_filters, c, filter_size, filter_size)),
            "b1": np.zeros(num_filters),
            # conv keeps H x W ('same' padding), the pool halves it
            "W2": weight_scale * rng.standard_normal((num_filters * (h // 2) * (w // 2),
                                                      hidden_dim)),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * rng.standard_normal((hidden_dim, num_classes)),
            "b3": np.zeros(num_classes),
        }
        self.params = {k: v.astype(dtype) for k, v in self.params.items()}
        self.conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

    def loss(self, X, y=None):
        p = self.params
        out1, cache1 = conv_relu_pool_forward(X, p["W1"], p["b1"], self.conv_param,
                                              self.pool_param)
        out2, cache2 = affine_relu_forward(out1, p["W2"], p["b2"])
        scores, cache3 = affine_forward(out2, p["W3"], p["b3"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * sum(np.sum(p[k] * p[k]) for k in ("W1", "W2", "W3"))
        grads = {}
        dout2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dout1, grads["W2"], grads["b2"] = affine_relu_backward(dout2, cache2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dout1, cache1)
        for k in ("W1", "W2", "W3"):
            grads[k] += self.reg * p[k]
        return loss, grads


def load_data(force_random: bool, dtype, seed: int):
    """-> (X_train, y_train, X_test, y_test, description)."""
    rng = np.random.default_rng(seed)
    if not force_random:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            print("scikit-learn is not installed: using a small random data set instead")
        else:
            d = load_digits()
            X = (d.images / 16.0).astype(dtype)[:, None]   # (1797, 1, 8, 8) in [0, 1]
            X -= X.mean(axis=0)
            y = d.target.astype(np.int64)
            order = rng.permutation(len(X))
            tr, te = order[:1500], order[1500:]
            return X[tr], y[tr], X[te], y[te], "scikit-learn digits, 1500 train / 297 test"
    X = rng.standard_normal((100, 1, 8, 8)).astype(dtype)
    y = rng.integers(10, size=100)
    return X, y, None, None, "100 random 8x8 images with random labels (to be learnt by heart)"


def accuracy(model, X, y, batch=500):
    pred = np.concatenate([np.argmax(model.loss(X[i:i + batch]), axis=1)
                           for i in range(0, len(X), batch)])
    return float(np.mean(pred == y))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=None,
                    help="passes over the training set (default 6 on digits, 40 on random data)")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1, help="SGD learning rate")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--reg", type=float, default=1e-4, help="L2 regularisation strength")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--random", action="store_true", help="use random data even with scikit-learn")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    dtype = np.dtype(args.dtype).type
    X_tr, y_tr, X_te, y_te, what = load_data(args.random, dtype, args.seed)
    epochs = args.epochs if args.epochs is not None else (6 if X_te is not None else 40)
    model = ThreeLayerConvNet(input_dim=X_tr.shape[1:], num_filters=16, filter_size=3,
                              hidden_dim=64, num_classes=10, weight_scale=0.1, reg=args.reg,
                              dtype=dtype, seed=args.seed)
    velocity = {k: np.zeros_like(v) for k, v in model.params.items()}
    rng = np.random.default_rng(args.seed + 1)
    print(f"data: {what}; model: conv 16x3x3 - relu - pool 2x2 - affine 64 - relu - affine 10, "
          f"{args.dtype}")

    t0, it = time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(X_tr))
        losses = []
        for i in range(0, len(X_tr), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss, grads = model.loss(X_tr[idx], y_tr[idx])
            for k, g in grads.items():  # SGD with momentum (CS231n's sgd_momentum)
                velocity[k] = args.momentum * velocity[k] - args.lr * g
                model.params[k] += velocity[k]
            losses.append(float(loss))
            it += 1
            if it % 10 == 1:
                print(f"  iteration {it:4d}  loss {loss:.4f}")
        line = f"epoch {epoch}/{epochs}: mean loss {np.mean(losses):.4f}, " \
               f"train accuracy {accuracy(model, X_tr, y_tr):.3f}"
        if X_te is not None:
            line += f", test accuracy {accuracy(model, X_te, y_te):.3f}"
        print(line)
    print(f"{it} iterations in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
