"""fastconv benchmarks: the ANCHORS layer suite (``bench.shapes``), the NumPy im2col baseline
(``bench.baselines``), the candidates under test (``bench.candidates``), the same-process
interleaved comparison (``bench.compare``) and the pytest-benchmark files (``bench_*.py``).

Everything here is importable without fastconv or torch installed; ``python -m fastconv bench``
reuses ``bench.compare``.
"""
