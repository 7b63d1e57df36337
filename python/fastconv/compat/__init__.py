"""Drop-in adapters that give fastconv the interface of other NumPy deep-learning code.

* ``fastconv.compat.cs231n``: the Stanford CS231n assignment interface (``fast_layers``,
  ``layer_utils`` and the ``layers`` companions): ``conv_forward_fast(x, w, b, conv_param)``,
  ``max_pool_forward_fast(x, pool_param)``, ``conv_relu_pool_forward`` ... with the same
  ``conv_param`` / ``pool_param`` dicts and caches. A net written against that interface switches
  backend by changing one import::

      # from cs231n.fast_layers import *       # before (needs the Cython extension built)
      from fastconv.compat.cs231n import *      # after  (no build step)

The adapters are imported on demand (``import fastconv.compat.cs231n``); importing
``fastconv.compat`` itself loads nothing else.
"""
from __future__ import annotations

__all__ = ["cs231n"]


def __getattr__(name):  # lazy submodule access: fastconv.compat.cs231n
    if name in __all__:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
