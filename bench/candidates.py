"""Alias of ``fastconv._bench.candidates`` (the engine moved into the package: bench/_engine.py)."""
import sys

from ._engine import module

sys.modules[__name__] = module("candidates")
