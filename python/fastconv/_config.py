"""Build and run-time configuration: fastconv.config() / fastconv.show_config()."""
from __future__ import annotations

from . import _core
from . import cuda as _cuda


def version() -> str:
    """The installed distribution's version, else the compiled core's."""
    try:
        from importlib.metadata import PackageNotFoundError, version as _dist_version
        try:
            return _dist_version("fastconv")
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    return str(_core.__version__)


def config() -> dict:
    """The version, compiler, SIMD levels (active, detected, compiled, supported), OpenMP, threads
    and the CUDA build / devices, as a dict. Other keys of the core's build_info() are kept."""
    info = dict(_core.build_info())
    m = _cuda._module()

    def cuda_info(attr):
        try:
            return str(getattr(m, attr)()) if m is not None else None
        except Exception as e:  # pragma: no cover - driver dependent
            return f"unavailable ({e})"

    cfg = {
        "version": version(),
        "compiler": info.pop("compiler", None),
        "isa": str(_core.get_isa()),
        "isa_detected": str(_core.detected_isa()),
        "isa_compiled": list(_core.compiled_isas()),
        "isa_supported": list(_core.supported_isas()),
        "openmp": info.pop("openmp", None),
        "num_threads": int(_core.get_num_threads()),
        "cuda_built": m is not None,
        "cuda_architectures": cuda_info("architectures"),
        "cuda_runtime": cuda_info("runtime_version"),
        "cuda_devices": _cuda.device_count(),
        "cuda_status": _cuda._status(),
    }
    for k, v in info.items():
        cfg.setdefault(k, v)
    return cfg


def show_config() -> None:
    """Print config() readably; the first line names the active SIMD level."""
    c = config()
    cuda = f"CUDA built, {c['cuda_devices']} device(s)" if c["cuda_built"] else "CUDA not built"
    print(f"fastconv {c['version']}: ISA {c['isa']} (detected {c['isa_detected']}), "
          f"{c['num_threads']} thread(s), {cuda}")
    width = max(len(k) for k in c)
    for k, v in c.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(e) for e in v) or "-"
        print(f"  {k:<{width}}  {v}")
