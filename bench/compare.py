"""Alias of ``fastconv._bench.compare`` (the engine moved into the package; see bench/_engine.py).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py \
        [--threads 1,2] [--quick] [--layers a,b|conv|pool] [--ops fwd,bwd_data,...]
        [--candidates fastconv,numpy,torch,... | --against numpy,torch] [--repeats 7]
        [--dtype float32|float64] [--markdown FILE] [--json FILE]

``python -m fastconv bench`` runs the same suite with a peak/bandwidth probe, a progress bar,
a markdown report (--report) and a plot (--plot).
"""
import os
import sys

if __name__ == "__main__":          # python bench/compare.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench._engine import module
    sys.exit(module("compare").main())
else:
    from ._engine import module
    sys.modules[__name__] = module("compare")
