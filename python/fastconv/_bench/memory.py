"""Extra memory of one conv call: peak RSS growth beyond its outputs, in a fresh child process.

The yardstick (the issue's acceptance rule): one fastconv conv call (fwd, bwd_data or bwd_weight)
should need at most 1/4 of the im2col buffer that layer would need,
N * C * KH * KW * Ho * Wo * itemsize (groups do not change it: (C/groups) * groups).

How one measurement is made (``measure``; Linux only, else "n/a"):

1. A fresh process per (case, op, candidate): glibc keeps freed memory for reuse, so only the
   first large call of a process shows its true peak. By default (``measure_suite``) each is
   forked from a ``ForkServer`` child that imported numpy / fastconv (torch: a second server)
   once and never runs a kernel itself; ``measure`` spawns a new interpreter instead (no fork
   needed; slower). torch is hidden from processes that do not measure torch
   (``sys.modules["torch"] = None``); the thread count is the caller's choice.
2. In the child: one call on a tiny version of the layer (N=1, a few pixels; same channels,
   kernel, stride, groups) initialises what is initialised once per process (thread pool, lazy
   imports, dispatch), not per call. Then the full-size inputs are built (each candidate's own
   layout, as in the timing) and the output is preallocated and touched where the API allows it
   (``conv2d(..., out=)``).
3. ``gc.collect()``, ``malloc_trim(0)`` (glibc: freed heap pages go back to the kernel, so a
   call reusing them shows up in RSS again), ``gc.disable()``; VmHWM is reset to the current RSS
   by writing "5" to ``/proc/self/clear_refs``; exactly one call; VmHWM read again.
4. extra = VmHWM after - RSS before - bytes of the outputs the call had to allocate itself
   (the gradients of bwd_data / bwd_weight, every peer's result): what the call needed beyond
   its result. Page granularity (4 KiB) and a few KiB of Python objects are the noise floor.

Where /proc/self/clear_refs cannot be written the growth is VmHWM after - VmHWM before, valid
only if the call raised the process's peak; otherwise the cell is "n/a".
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from .shapes import ConvCase

MIB = float(1 << 20)
LIMIT_FRACTION = 0.25           # the acceptance rule: extra <= 1/4 of im2col
MEMORY_CANDIDATES = ("fastconv", "fastconv_nhwc", "numpy", "torch")
CHILD_TIMEOUT_S = 300.0
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def supported() -> Optional[str]:
    """None when this platform can measure; else why not."""
    if not sys.platform.startswith("linux"):
        return f"needs Linux /proc (this is {sys.platform})"
    if not os.path.exists(_STATUS):
        return f"{_STATUS} is missing"
    return None


def im2col_bytes(case: ConvCase, itemsize: int = 4) -> int:
    """N * C * KH * KW * Ho * Wo * itemsize: the im2col (column) buffer of the whole layer."""
    return itemsize * case.N * case.C * case.KH * case.KW * case.Ho * case.Wo


# ------------------------------------------------------------------------------------ results
@dataclass
class MemRow:
    """One (case, op): the extra bytes of each candidate's call (None: not measured / n/a)."""
    case: str
    op: str
    threads: int
    shape: str
    im2col: int                                                # bytes
    extra: Dict[str, Optional[int]] = field(default_factory=dict)
    errors: Dict[str, str] = field(default_factory=dict)
    detail: Dict[str, dict] = field(default_factory=dict)      # the child's raw numbers

    def fraction(self, cand: str = "fastconv") -> Optional[float]:
        e = self.extra.get(cand)
        if e is None or not self.im2col:
            return None
        return max(0, e) / self.im2col

    def over(self, cand: str = "fastconv") -> bool:
        f = self.fraction(cand)
        return f is not None and f > LIMIT_FRACTION

    def flags(self) -> str:
        out = []
        for cand, tag in (("fastconv", ""), ("fastconv_nhwc", "nhwc")):
            if self.over(cand):
                out.append(">1/4" + tag)
            elif cand in self.errors:
                out.append("ERR" + tag)
        return " ".join(out)

    def as_dict(self) -> dict:
        return {"case": self.case, "op": self.op, "threads": self.threads, "shape": self.shape,
                "im2col_bytes": self.im2col, "im2col_mib": self.im2col / MIB,
                "extra_bytes": dict(self.extra),
                "extra_mib": {c: (None if v is None else max(0, v) / MIB)
                              for c, v in self.extra.items()},
                "fraction": {c: self.fraction(c) for c in self.extra},
                "over_quarter": {c: self.over(c) for c in self.extra},
                "errors": dict(self.errors), "detail": dict(self.detail)}


# ------------------------------------------------------------------------------------ parent
def _engine_location():
    """(package name, source folder) of this engine, for the child to import the same one."""
    pkg = __name__.rsplit(".", 1)[0]
    return pkg, os.path.dirname(os.path.abspath(__file__))


# Start of every child script: read the spec, hide torch unless it is measured (keeps the child
# small and quick), import the bench engine (installed, else from its source folder).
_BOOT = r"""
import importlib, importlib.util, json, os, signal, sys
spec = json.loads(sys.argv[1])
if not spec["torch"]:
    sys.modules["torch"] = None
sys.path[:] = spec["sys_path"]
name, src = spec["pkg"], spec["src"]
try:
    importlib.import_module(name)
except ImportError:
    s = importlib.util.spec_from_file_location(name, src + "/__init__.py",
                                               submodule_search_locations=[src])
    m = importlib.util.module_from_spec(s)
    sys.modules[name] = m
    s.loader.exec_module(m)
mem = importlib.import_module(name + ".memory")
"""

_CHILD = _BOOT + r"""
print("FASTCONV_MEMORY " + json.dumps(mem._child(spec)), flush=True)
"""


def measure(case: ConvCase, op: str, cand: str, *, dtype: str = "float32", threads: int = 1,
            seed: int = 0, timeout: float = CHILD_TIMEOUT_S, warmup: bool = True) -> dict:
    """One measurement in a fresh child. Returns the child's dict: ``extra`` (bytes beyond the
    outputs; None if n/a), ``growth`` (peak RSS growth), ``out_bytes`` (outputs the call
    allocated, subtracted), ``method``; or {"error": text}."""
    why = supported()
    if why:
        return {"error": why, "extra": None}
    pkg, src = _engine_location()
    spec = {"case": dataclasses.asdict(case), "op": op, "cand": cand, "dtype": dtype,
            "threads": int(threads), "seed": int(seed), "warmup": bool(warmup),
            "pkg": pkg, "src": src, "sys_path": [p for p in sys.path],
            "torch": cand in ("torch", "torch_cl")}
    env = dict(os.environ)
    env.pop("FASTCONV_BENCH_QUICK", None)
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"child timed out after {timeout:.0f} s", "extra": None}
    for line in proc.stdout.splitlines():
        if line.startswith("FASTCONV_MEMORY "):
            return json.loads(line[len("FASTCONV_MEMORY "):])
    tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return {"error": f"child failed: {tail}", "extra": None}


_SERVER = _BOOT + r"""
importlib.import_module(name + ".candidates")     # numpy, fastconv (and torch) imported once
print("FASTCONV_MEMORY_READY", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the fresh process of one measurement
        os.close(r)
        signal.alarm(int(req.get("timeout", 300)))
        try:
            res = mem._child(req)
        except BaseException as e:
            res = {"error": f"{type(e).__name__}: {e}", "extra": None}
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    out = b"".join(chunks).decode() or json.dumps(
        {"error": f"measurement process died (wait status {status})", "extra": None})
    print("FASTCONV_MEMORY " + out, flush=True)
"""


class ForkServer:
    """A child that imports numpy / fastconv (and torch, with ``torch=True``) once, then forks
    one fresh process per measurement (``measure``): the import time is paid once, every
    measurement still runs in a process of its own. Nothing runs in the server itself (no
    thread pool is started before the fork)."""

    def __init__(self, torch: bool = False):
        import tempfile
        pkg, src = _engine_location()
        spec = {"torch": bool(torch), "pkg": pkg, "src": src, "sys_path": list(sys.path)}
        env = dict(os.environ)
        env.pop("FASTCONV_BENCH_QUICK", None)
        self._err = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, env=env)
        self.error: Optional[str] = None
        if self._read("FASTCONV_MEMORY_READY") is None:
            self.error = "measurement server failed: " + self._stderr_tail()

    def _stderr_tail(self) -> str:
        self._err.seek(0)
        lines = self._err.read().strip().splitlines()
        return lines[-1] if lines else f"exit status {self.proc.poll()}"

    def _read(self, prefix: str) -> Optional[str]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        return None

    def measure(self, case: ConvCase, op: str, cand: str, *, dtype: str = "float32",
                threads: int = 1, seed: int = 0, timeout: float = CHILD_TIMEOUT_S,
                warmup: bool = True) -> dict:
        if self.error:
            return {"error": self.error, "extra": None}
        req = {"case": dataclasses.asdict(case), "op": op, "cand": cand, "dtype": dtype,
               "threads": int(threads), "seed": int(seed), "warmup": bool(warmup),
               "timeout": int(timeout)}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            got = self._read("FASTCONV_MEMORY ")
        except (OSError, ValueError) as e:
            got, self.error = None, f"measurement server failed: {e}"
        if got is None:
            self.error = self.error or "measurement server failed: " + self._stderr_tail()
            return {"error": self.error, "extra": None}
        return json.loads(got)

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()
        self._err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def measure_suite(cases: Sequence[ConvCase], ops_of: Callable[[ConvCase], Sequence[str]],
                  cands: Sequence[str], *, dtype: str = "float32", threads: int = 1,
                  seed: int = 0, on_cell: Optional[Callable[[ConvCase, str, str], None]] = None,
                  on_done: Optional[Callable[[ConvCase, str, str, dict], None]] = None,
                  fork: Optional[bool] = None) -> List[MemRow]:
    """One MemRow per (conv case, op); one fresh process per (case, op, candidate) in
    ``cands``: forked from a ForkServer (default where os.fork exists), else spawned
    (``measure``)."""
    from .candidates import available
    itemsize = 8 if str(dtype) == "float64" else 4
    cands = [c for c in MEMORY_CANDIDATES if c in cands and available(c)]
    use_fork = hasattr(os, "fork") if fork is None else fork
    servers: Dict[bool, ForkServer] = {}

    def one(case, op, cand):
        if not use_fork:
            return measure(case, op, cand, dtype=dtype, threads=threads, seed=seed)
        t = cand.startswith("torch")
        if t not in servers:
            servers[t] = ForkServer(torch=t)
        return servers[t].measure(case, op, cand, dtype=dtype, threads=threads, seed=seed)

    rows: List[MemRow] = []
    try:
        for case in cases:
            for op in ops_of(case):
                row = MemRow(case.name, op, threads, case.describe(),
                             im2col_bytes(case, itemsize))
                for cand in cands:
                    if on_cell:
                        on_cell(case, op, cand)
                    got = one(case, op, cand)
                    row.extra[cand] = got.get("extra")
                    if got.get("error"):
                        row.errors[cand] = got["error"]
                    row.detail[cand] = got
                    if on_done:
                        on_done(case, op, cand, got)
                rows.append(row)
    finally:
        for srv in servers.values():
            srv.close()
    return rows


# ------------------------------------------------------------------------------------ child
def _status_kb(*keys: str) -> Dict[str, int]:
    out = {}
    with open(_STATUS) as f:
        for line in f:
            k = line.split(":", 1)[0]
            if k in keys:
                out[k] = int(line.split()[1])
    return out


def _reset_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _malloc_trim() -> None:
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def tiny_case(case: ConvCase) -> ConvCase:
    """The same layer on N=1 and a few pixels (the once-per-process warm-up)."""
    h = max(case.dilation * (case.kernel - 1) + 1, 4)
    return dataclasses.replace(case, N=1, H=h, W=h)


def _prepare(case: ConvCase, op: str, cand: str, inputs) -> tuple:
    """(zero-argument call, bytes of the outputs the call allocates itself)."""
    import numpy as np

    from . import candidates as C
    itemsize = inputs["x"].dtype.itemsize
    if cand in C.FASTCONV_CANDIDATES and op == "fwd":
        from .runtime import fastconv as fc
        x, w = inputs["x"], inputs["w"]
        kw = case.kwargs()
        if cand == "fastconv_nhwc":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            w = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
            out = np.empty((case.N, case.Ho, case.Wo, case.K), x.dtype)
            kw["layout"] = "NHWC"
        else:
            out = np.empty(case.y_shape, x.dtype)
        out.fill(1.0)                                  # touched: resident before the call
        return (lambda: fc.conv2d(x, w, out=out, **kw)), 0
    b = C.bind(case, op, cand, inputs)
    shape = {"fwd": case.y_shape, "bwd_data": case.x_shape, "bwd_weight": case.w_shape}[op]
    n = 1
    for s in shape:
        n *= s
    return b.call, n * itemsize


def _child(spec: dict) -> dict:
    import gc

    from . import candidates as C
    from . import runtime
    case = ConvCase(**spec["case"])
    op, cand, dtype = spec["op"], spec["cand"], spec["dtype"]
    if not C.available(cand):
        return {"error": C.unavailable_reason(cand), "extra": None}
    runtime.set_threads(int(spec["threads"]))
    if spec.get("warmup", True):
        t = tiny_case(case)
        call, _ = _prepare(t, op, cand, C.make_inputs(t, spec["seed"], dtype))
        call()
        del call
    inputs = C.make_inputs(case, spec["seed"], dtype)
    call, out_bytes = _prepare(case, op, cand, inputs)
    _status_kb("VmHWM", "VmRSS")                       # the reading path warm, too
    gc.collect()
    _malloc_trim()
    gc.disable()
    reset = _reset_peak()
    before = _status_kb("VmHWM", "VmRSS")
    ret = call()
    after = _status_kb("VmHWM", "VmRSS")
    del ret
    gc.enable()
    rss0 = before["VmRSS"] * 1024
    if reset:
        growth: Optional[int] = after["VmHWM"] * 1024 - rss0
        method = "clear_refs"
    elif after["VmHWM"] > before["VmHWM"]:
        growth = after["VmHWM"] * 1024 - rss0
        method = "hwm"
    else:
        growth = None
        method = "hwm (peak not raised: n/a)"
    return {"extra": None if growth is None else growth - out_bytes, "growth": growth,
            "out_bytes": out_bytes, "rss_before": rss0, "method": method,
            "threads": int(spec["threads"])}


# ------------------------------------------------------------------------------------ tables
_MEM_LABEL = {"fastconv": "fastconv", "fastconv_nhwc": "fastconv NHWC", "numpy": "numpy",
              "torch": "torch"}


def _mib(v: Optional[int]) -> str:
    if v is None:
        return "n/a"
    v = max(0, v) / MIB
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _frac(f: Optional[float]) -> str:
    return "n/a" if f is None else f"{f:.3f}"


def table(rows: Sequence[MemRow]) -> tuple:
    """(headers, cells per row, indices of left-aligned columns) of the memory table."""
    cands = [c for c in MEMORY_CANDIDATES if any(c in r.extra for r in rows)]
    fcs = [c for c in cands if c.startswith("fastconv")]
    peers = [c for c in cands if not c.startswith("fastconv")]
    head = ["case", "op", "im2col MiB"]
    for c in fcs:
        head += [f"{_MEM_LABEL[c]} MiB", "frac" + (" NHWC" if c == "fastconv_nhwc" else "")]
    head += [f"{_MEM_LABEL[c]} MiB" for c in peers] + ["flags"]
    body = []
    for r in rows:
        cells = [r.case, r.op, _mib(r.im2col)]
        for c in fcs:
            cells += [_mib(r.extra.get(c)), _frac(r.fraction(c))]
        cells += [_mib(r.extra.get(c)) for c in peers]
        cells.append(r.flags())
        body.append(cells)
    return head, body, {0, 1, len(head) - 1}


def text_table(rows: Sequence[MemRow]) -> str:
    if not rows:
        return "(no memory results)"
    head, body, left = table(rows)
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def markdown_table(rows: Sequence[MemRow]) -> str:
    if not rows:
        return "(no memory results)\n"
    head, body, left = table(rows)
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i in left else "--:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
    return "\n".join(out) + "\n"


def summary_lines(rows: Sequence[MemRow]) -> List[str]:
    out = []
    for cand in ("fastconv", "fastconv_nhwc"):
        fr = [(r.fraction(cand), r) for r in rows if r.fraction(cand) is not None]
        if not fr:
            continue
        over = [r for f, r in fr if f > LIMIT_FRACTION]
        worst_f, worst = max(fr, key=lambda t: t[0])
        line = (f"memory, {_MEM_LABEL[cand]}: extra <= 1/4 of im2col in {len(fr) - len(over)}/"
                f"{len(fr)} cells; worst {worst.case} {worst.op} {_mib(worst.extra[cand])} MiB "
                f"= {worst_f:.3f} of im2col")
        if over:
            line += "; over 1/4: " + ", ".join(f"{r.case} {r.op}" for r in over[:8]) + \
                    (" ..." if len(over) > 8 else "")
        out.append(line)
    na = sum(1 for r in rows for c in r.extra if r.extra[c] is None)
    if na:
        out.append(f"memory: {na} cell(s) n/a (" +
                   "; ".join(sorted({e for r in rows for e in r.errors.values()}))[:300] + ")")
    return out
