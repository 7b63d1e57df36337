"""A textbook LeNet-5 trained on scikit-learn's handwritten digits with fastconv.nn.

Nothing but NumPy and fastconv does the learning; scikit-learn only supplies the data set
(`pip install scikit-learn`). Run: python examples/lenet_digits.py
"""
import time

import numpy as np

import fastconv.nn as nn

try:
    from sklearn.datasets import load_digits
except ImportError:  # pragma: no cover - the example needs the data set
    raise SystemExit('this example needs scikit-learn: pip install "fastconv[demo]"')


def load(seed=0):
    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0                       # (1797, 8, 8) in [0, 1]
    x = np.kron(x, np.ones((1, 3, 3), np.float32))[:, None]           # upsample to 24x24, NCHW
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    return (x[:split], y[:split]), (x[split:], y[split:])


def lenet(rng):
    # 24x24 -> conv5 pad2 -> 24x24 -> pool -> 12x12 -> conv5 -> 8x8 -> pool -> 4x4
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120, rng=rng), nn.ReLU(),
        nn.Linear(120, 84, rng=rng), nn.ReLU(),
        nn.Linear(84, 10, rng=rng),
    )


def accuracy(model, x, y, batch=256):
    model.eval()
    hits = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
               for i in range(0, len(x), batch))
    model.train()
    return hits / len(x)


def main(epochs=10, batch=32, seed=0):
    (xtr, ytr), (xte, yte) = load(seed)
    rng = np.random.default_rng(seed)
    model, loss_fn = lenet(rng), nn.SoftmaxCrossEntropy()
    opt = nn.Adam(model, lr=1e-3)
    for epoch in range(1, epochs + 1):
        t0, total = time.perf_counter(), 0.0
        order = rng.permutation(len(xtr))
        for i in range(0, len(xtr), batch):
            idx = order[i:i + batch]
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
            total += float(loss) * len(idx)
        dt = time.perf_counter() - t0
        print(f"epoch {epoch:2d}  loss {total / len(xtr):.4f}  "
              f"train acc {accuracy(model, xtr, ytr):.3f}  {len(xtr) / dt:7.0f} img/s")
    print(f"test accuracy: {accuracy(model, xte, yte):.4f}")


if __name__ == "__main__":
    main()
