"""Alias of ``fastconv._bench.memory`` (the engine moved into the package; see bench/_engine.py)."""
import sys

from ._engine import module

sys.modules[__name__] = module("memory")
