"""TensorFlow-style (NHWC) use of fastconv: the tf.nn ops a Keras/TF user knows, on NumPy arrays.

    tf.nn.conv2d(x, filters, strides, padding="SAME")      -> fastconv.conv2d(..., layout="NHWC")
    tf.nn.max_pool2d(x, ksize, strides, padding="VALID")   -> fastconv.max_pool2d(..., layout="NHWC")
    tf.nn.conv2d_transpose(...)                            -> fastconv.conv_transpose2d(..., layout="NHWC")

x is (N, H, W, C); conv filters are (KH, KW, C_in/groups, C_out) exactly as TensorFlow stores
them; transposed-conv filters are (KH, KW, C_out, C_in). Each result is checked against a
slow, obvious NumPy loop. Run: python examples/nhwc_tensorflow_style.py
"""
import numpy as np

import fastconv as fc
import fastconv.nn as nn


def conv2d_loops(x, f, stride, pads):
    """Reference NHWC cross-correlation with explicit per-side padding ((top, bottom), (l, r))."""
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    n, h, w, _ = xp.shape
    kh, kw, _, o = f.shape
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    y = np.zeros((n, ho, wo, o))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(patch, f, axes=([1, 2, 3], [0, 1, 2]))
    return y


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 16, 3)).astype(np.float32)       # NHWC
    filters = rng.standard_normal((3, 3, 3, 8)).astype(np.float32)   # (KH, KW, C_in, C_out)

    # "SAME" with stride 2: output = ceil(16 / 2) = 8, total padding 7*2 + 3 - 16 = 1, which TF
    # puts at the bottom/right.
    y = fc.conv2d(x, filters, stride=2, padding="SAME", layout="NHWC")
    ref = conv2d_loops(x.astype(np.float64), filters.astype(np.float64), 2, ((0, 1), (0, 1)))
    print("conv2d SAME stride 2:", y.shape, "max |err|", float(np.abs(y - ref).max()))

    p = fc.max_pool2d(y, 2, stride=2, padding="VALID", layout="NHWC")
    print("max_pool2d VALID:", p.shape)

    up_filters = rng.standard_normal((3, 3, 5, 8)).astype(np.float32)  # (KH, KW, C_out, C_in)
    up = fc.conv_transpose2d(y, up_filters, stride=2, padding="SAME", layout="NHWC")
    print("conv_transpose2d SAME stride 2:", y.shape, "->", up.shape)

    # The same layers as trainable modules, channels-last end to end.
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, layout="NHWC", rng=rng), nn.ReLU(),
        nn.MaxPool2d(2, layout="NHWC"), nn.Flatten(), nn.Linear(8 * 8 * 8, 10, rng=rng))
    loss_fn = nn.SoftmaxCrossEntropy()
    labels = rng.integers(0, 10, len(x))
    opt = nn.SGD(model, lr=0.05, momentum=0.9)
    for step in range(5):
        loss = loss_fn(model(x), labels)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        print(f"step {step}: loss {float(loss):.4f}")


if __name__ == "__main__":
    main()
