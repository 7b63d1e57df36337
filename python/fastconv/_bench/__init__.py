"""The benchmark engine behind ``python -m fastconv bench`` (and the repository's bench/ folder).

  shapes      the ANCHORS layer suite as data (12 conv layers, 4 pooling cases; --quick: batch / 4)
  baselines   the NumPy peer, CS231n style: im2col + OpenBLAS matmul, col2im, strided pooling
              (also the layers ``python -m fastconv demo --compare-numpy`` times)
  candidates  how fastconv (NCHW, NHWC), numpy, torch (NCHW, channels_last) run each (case, op);
              result checks against the baseline
  runtime     optional imports (torch, threadpoolctl) and one thread count for every library
  compare     interleaved same-process timing (medians), the rows, text/markdown tables
  probe       the machine's measured FMA peak and memory bandwidth
  memory      extra memory of one conv call (peak RSS growth beyond its outputs, fresh process)
  report      the ``bench`` command: progress bar, report, JSON, plot
  progress    tqdm when installed, else a plain counter

Not a public API: names may change between versions. Importing this package imports neither
torch nor matplotlib (``runtime`` and ``report`` do, on demand).
"""
