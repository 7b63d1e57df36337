"""fastconv benchmarks. The engine — the ANCHORS layer suite (``shapes``), the NumPy im2col
baseline (``baselines``), the candidates under test (``candidates``), thread control
(``runtime``) and the same-process interleaved comparison (``compare``) — lives in the package
as ``fastconv._bench`` so that ``python -m fastconv bench`` works from an installed wheel; the
modules of the same names here are aliases of it (bench/_engine.py). What stays here: the
pytest-benchmark files (``bench_*.py``, ``conftest.py``, ``pytest_support.py``) and the
baseline's own tests (``test_baselines.py``).

Everything here is importable without fastconv or torch installed (the engine is then loaded
from python/fastconv/_bench in this source tree).
"""
