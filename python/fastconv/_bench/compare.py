"""Same-process comparison of fastconv with its peers over the ANCHORS suite.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py \
        [--threads 1,2] [--quick] [--layers a,b|conv|pool] [--ops fwd,bwd_data,...]
        [--candidates fastconv,numpy,torch,... | --against numpy,torch] [--repeats 7]
        [--dtype float32|float64] [--markdown FILE] [--json FILE]

(``python -m fastconv bench`` runs the same engine with a progress bar, a peak/bandwidth probe,
a markdown report and a plot: fastconv._bench.report.)

For every thread count, case and op: all candidates get the same inputs (each in its own layout,
converted untimed), fastconv's results are checked against the NumPy baseline (and so are
torch's), every candidate is warmed up, then the candidates are timed interleaved — round-robin,
the starting candidate rotating each round — for ``repeats`` rounds, and the medians are kept.
One sample times ``inner`` back-to-back calls, with ``inner`` chosen so that a sample lasts at
least ``min_sample_s`` (tiny ops such as the global average pool are otherwise timer noise).

Reported: median ms per candidate, fastconv's GFLOP/s (convs) or GB/s of compulsory traffic
(pools), and ratio = fastest peer's ms / fastconv's ms (> 1: fastconv wins). ``!!`` flags a
fastconv cell more than 1.5x slower than NumPy; ``<1`` one slower than the fastest peer
(suffix ``nhwc``: the same for fastconv's NHWC layout).

The functions (``run_suite``, ``measure``, ``format_table``, ``format_markdown``, ``summary``)
are pure and importable; ``python -m fastconv bench`` builds on them.
"""
from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import candidates as C
from . import runtime
from .shapes import CONV_LAYERS, POOL_CASES, ConvCase, conv_layers, pool_cases

SLOW_VS_NUMPY = 1.5
NUMPY_SETTLE_S = 0.12   # untimed pause after a multi-threaded NumPy sample (see run_case)
DEFAULT_REPEATS = 7


# ------------------------------------------------------------------------------------ timing
def measure(calls: Dict[str, Callable[[], object]], repeats: int = DEFAULT_REPEATS,
            warmup: int = 1, min_sample_s: float = 0.002, max_inner: int = 1000,
            timer: Callable[[], float] = time.perf_counter,
            gap_s: float = 0.001,
            settle_after: Optional[Dict[str, float]] = None) -> Dict[str, Dict[str, object]]:
    """Interleaved timing of several zero-argument callables.

    Returns {name: {"median": seconds per call, "samples": [...], "inner": calls per sample}}.
    Warm-up: ``warmup`` calls each (the last one, timed, sets ``inner``). Then ``repeats`` rounds;
    round r runs the candidates in order rotated by r, so none is always first after another.
    ``gap_s``: an untimed pause between samples, so that the worker threads one library leaves
    spinning (OpenMP / OpenBLAS busy-wait after a parallel region) have gone to sleep before
    the next library's sample starts; on a 2-core machine they would otherwise steal its cores.
    ``settle_after``: a longer untimed pause after the named candidates' samples (and once
    before the rounds), for libraries whose workers spin far longer than ``gap_s``.
    """
    settle = dict(settle_after or {})
    names = list(calls)
    inner: Dict[str, int] = {}
    for name in names:
        t = 0.0
        for _ in range(max(1, warmup)):
            t0 = timer()
            calls[name]()
            t = timer() - t0
        inner[name] = max(1, min(max_inner, math.ceil(min_sample_s / t) if t > 0 else max_inner))
    samples: Dict[str, List[float]] = {n: [] for n in names}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        if settle:
            time.sleep(max(settle.values()))
        for r in range(repeats):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                f, m = calls[name], inner[name]
                if gap_s > 0:
                    time.sleep(gap_s)
                t0 = timer()
                for _ in range(m):
                    f()
                samples[name].append((timer() - t0) / m)
                if settle.get(name, 0) > 0:
                    time.sleep(settle[name])
    finally:
        if gc_was_enabled:
            gc.enable()
    return {n: {"median": statistics.median(samples[n]), "samples": samples[n],
                "inner": inner[n]} for n in names}


# ------------------------------------------------------------------------------------ results
@dataclass
class Row:
    case: str
    kind: str                      # "conv" or "pool"
    op: str
    threads: int
    shape: str                     # human description of the case
    work: float                    # GFLOP (conv) or GB of compulsory traffic (pool)
    ms: Dict[str, Optional[float]] = field(default_factory=dict)
    errors: Dict[str, str] = field(default_factory=dict)        # candidate -> failure text
    check_err: Dict[str, float] = field(default_factory=dict)   # candidate -> rel. error
    dtype: str = "float32"
    # fastconv candidate -> (algorithm, reason) from fastconv.explain_conv2d (convs; may be empty)
    algo: Dict[str, Tuple[str, str]] = field(default_factory=dict)

    def algo_label(self) -> str:
        """Compact algorithm cell: "gemm", or "gemm/winograd" (NCHW/NHWC) when they differ."""
        names = [self.algo[c][0] for c in C.FASTCONV_CANDIDATES if c in self.algo]
        if not names:
            return "-"
        return names[0] if len(set(names)) == 1 else "/".join(names)

    @property
    def unit(self) -> str:
        return "GFLOP/s" if self.kind == "conv" else "GB/s"

    def rate(self, cand: str) -> Optional[float]:
        t = self.ms.get(cand)
        return self.work / (t / 1e3) if t else None

    def fastest_peer(self) -> Optional[str]:
        peers = [(t, p) for p, t in self.ms.items() if p in C.PEERS and t]
        return min(peers)[1] if peers else None

    def ratio(self, cand: str = "fastconv") -> Optional[float]:
        """fastest peer's time / cand's time (> 1: cand is faster); None if unmeasured/wrong."""
        peer = self.fastest_peer()
        t = self.ms.get(cand)
        if not peer or not t or cand in self.errors:
            return None
        return self.ms[peer] / t  # type: ignore[operator]

    def slow_vs_numpy(self, cand: str = "fastconv") -> bool:
        t, tn = self.ms.get(cand), self.ms.get("numpy")
        return bool(t and tn and t > SLOW_VS_NUMPY * tn)

    def flags(self) -> str:
        out = []
        for cand in C.FASTCONV_CANDIDATES:
            tag = "" if cand == "fastconv" else "nhwc"
            if cand in self.errors:
                out.append(f"WRONG{tag}")
                continue
            if self.slow_vs_numpy(cand):
                out.append(f"!!{tag}")
            else:
                r = self.ratio(cand)
                if r is not None and r < 1.0:
                    out.append(f"<1{tag}")
        return " ".join(out)

    def as_dict(self) -> dict:
        return {"case": self.case, "kind": self.kind, "op": self.op, "threads": self.threads,
                "dtype": self.dtype, "shape": self.shape, "work": self.work, "unit": self.unit,
                "ms": dict(self.ms),
                "errors": dict(self.errors), "check_err": dict(self.check_err),
                "ratio": self.ratio("fastconv"), "ratio_nhwc": self.ratio("fastconv_nhwc"),
                "fastest_peer": self.fastest_peer(), "flags": self.flags(),
                "algorithm": {c: {"name": a[0], "reason": a[1]} for c, a in self.algo.items()}}


def select_cases(layers: Optional[Sequence[str]], quick: bool):
    """The cases named in ``layers`` (names, 'conv', 'pool'; None: all); ValueError if unknown."""
    if not layers:
        return conv_layers(quick) + pool_cases(quick)
    conv_names = {c.name for c in CONV_LAYERS}
    pool_names = {c.name for c in POOL_CASES}
    want: List[str] = []
    for name in layers:
        if name == "conv":
            want += [c.name for c in CONV_LAYERS]
        elif name in ("pool", "pools"):
            want += [c.name for c in POOL_CASES]
        elif name in conv_names or name in pool_names:
            want.append(name)
        else:
            raise ValueError(f"unknown layer {name!r}; known: conv, pool, "
                             + ", ".join(sorted(conv_names | pool_names)))
    seen = set()
    want = [n for n in want if not (n in seen or seen.add(n))]
    convs = [n for n in want if n in conv_names]
    pools = [n for n in want if n in pool_names]
    return ((conv_layers(quick, convs) if convs else [])
            + (pool_cases(quick, pools) if pools else []))


def select_ops(case, ops: Optional[Sequence[str]]) -> List[str]:
    """The ops of ``case`` named in ``ops`` (None: all; 'bwd' on a conv: both gradients)."""
    allowed = C.ops_for(case)
    if not ops:
        return list(allowed)
    out = []
    for op in ops:
        if op in allowed:
            out.append(op)
        elif op == "bwd" and isinstance(case, ConvCase):    # "bwd" = both conv gradients
            out += ["bwd_data", "bwd_weight"]
    return [o for i, o in enumerate(out) if o not in out[:i]]


def run_case(case, op: str, threads: int, cands: Sequence[str], inputs, *,
             repeats: int = DEFAULT_REPEATS, warmup: int = 1, min_sample_s: float = 0.002,
             check: bool = True) -> Row:
    """Check and time every candidate on one (case, op) at the current thread setting."""
    is_conv = isinstance(case, ConvCase)
    dt = inputs["x"].dtype
    row = Row(case.name, "conv" if is_conv else "pool", op, threads, case.describe(),
              case.gflop if is_conv else case.gbytes_for(dt.itemsize), dtype=dt.name)
    bound = {}
    for cand in cands:
        a = C.explain(case, op, cand, dt.name) if is_conv else None
        if a is not None:
            row.algo[cand] = a
        try:
            bound[cand] = C.bind(case, op, cand, inputs)
        except Exception as e:  # noqa: BLE001 - a candidate failing must not stop the report
            row.errors[cand] = f"{type(e).__name__}: {e}"
    ref = C.reference(case, op, inputs) if check else None
    calls = {}
    for cand, b in bound.items():
        try:
            got = b.result(b.call())            # doubles as the first warm-up
            if check and cand != "numpy":
                row.check_err[cand] = C.check(case, op, got, ref, inputs)
            del got
        except Exception as e:  # noqa: BLE001
            row.errors[cand] = f"{type(e).__name__}: {e}"
            if cand not in C.FASTCONV_CANDIDATES:
                continue                         # a broken peer is left out of the timing
            if not isinstance(e, C.MismatchError):
                continue                         # a crashing fastconv call cannot be timed
        calls[cand] = b.call
    del ref
    # OpenBLAS (the NumPy peer) keeps its worker threads spinning for up to 2^28 cycles (about
    # 0.1 s) after a multi-threaded call; on a machine with as many cores as threads they take
    # the cores from whichever candidate runs next. With OPENBLAS_THREAD_TIMEOUT set (as
    # python -m fastconv bench does, runtime.blas_timeout_note) they sleep at once; otherwise
    # wait for them (which measured not always enough: 12.9 -> 15.5 ms after a 0.12 s pause).
    settle = ({"numpy": NUMPY_SETTLE_S} if threads > 1 and "numpy" in calls and
              runtime.blas_timeout() is None else None)
    times = measure(calls, repeats=repeats, warmup=warmup, min_sample_s=min_sample_s,
                    settle_after=settle)
    for cand in cands:
        row.ms[cand] = times[cand]["median"] * 1e3 if cand in times else None  # type: ignore
    return row


def run_suite(threads: Sequence[int] = (1,), quick: bool = False,
              layers: Optional[Sequence[str]] = None, ops: Optional[Sequence[str]] = None,
              candidates: Optional[Sequence[str]] = None, repeats: int = DEFAULT_REPEATS,
              warmup: int = 1, min_sample_s: float = 0.002, seed: int = 0, check: bool = True,
              progress: Optional[Callable[[Row], None]] = None, dtype: str = "float32",
              on_start: Optional[Callable[[object, str, int], None]] = None) -> List[Row]:
    """Run the comparison; returns one Row per (threads, case, op). ``progress(row)`` is called
    as each row completes (compare.main prints it), ``on_start(case, op, threads)`` before."""
    cands = C.available_candidates(candidates or C.CANDIDATES)
    cases = select_cases(layers, quick)
    rows: List[Row] = []
    for n in threads:
        with runtime.matched_threads(n):
            for case in cases:
                case_ops = select_ops(case, ops)
                if not case_ops:
                    continue
                inputs = C.make_inputs(case, seed, dtype)
                for op in case_ops:
                    if on_start:
                        on_start(case, op, n)
                    row = run_case(case, op, n, cands, inputs, repeats=repeats, warmup=warmup,
                                   min_sample_s=min_sample_s, check=check)
                    rows.append(row)
                    if progress:
                        progress(row)
                del inputs
                gc.collect()
    return rows


# ------------------------------------------------------------------------------------ reports
_SHORT = {"fastconv": "fastconv", "fastconv_nhwc": "fc_nhwc", "numpy": "numpy", "torch": "torch",
          "torch_cl": "torch_cl"}


def _fmt_ms(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def _fmt(v: Optional[float], spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table_columns(rows: Sequence[Row]) -> List[str]:
    cands = [c for c in C.CANDIDATES if any(c in r.ms for r in rows)]
    return cands


def _row_cells(r: Row, cands: Sequence[str]) -> List[str]:
    cells = [r.case, r.op, str(r.threads)]
    cells += [_fmt_ms(r.ms.get(c)) if c not in r.errors or r.ms.get(c) else "ERR" for c in cands]
    rated = "fastconv" if "fastconv" in cands else r.fastest_peer()
    rate = r.rate(rated) if rated else None
    cells.append(f"{rate:.1f}" if rate is not None else "-")
    cells.append(r.unit)
    cells.append(_fmt(r.ratio("fastconv")))
    if "fastconv_nhwc" in cands:
        cells.append(_fmt(r.ratio("fastconv_nhwc")))
    cells.append(r.fastest_peer() or "-")
    cells.append(r.flags())
    return cells


def _headers(cands: Sequence[str]) -> List[str]:
    rate = "fc rate" if "fastconv" in cands else "peer rate"
    h = ["case", "op", "thr"] + [f"{_SHORT[c]} ms" for c in cands] + [rate, "unit", "peer/fc"]
    if "fastconv_nhwc" in cands:
        h.append("peer/nhwc")
    return h + ["fastest peer", "flags"]


def format_table(rows: Sequence[Row]) -> str:
    """Plain fixed-width text table (one line per row)."""
    if not rows:
        return "(no results)"
    cands = table_columns(rows)
    return fixed_width(_headers(cands), [_row_cells(r, cands) for r in rows],
                       [r.threads for r in rows])


def fixed_width(head: Sequence[str], body: Sequence[Sequence[str]], groups: Sequence,
                left: Optional[Sequence[int]] = None) -> str:
    """Aligns a text table: the first two and last two columns left (or the indices in
    ``left``), the rest right; a blank line wherever `groups` (one key per body row, e.g. the
    thread count) changes."""
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) for i in range(len(head))]
    left = set(left) if left is not None else {0, 1, len(head) - 2, len(head) - 1}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = [line(head), line(["-" * w for w in widths])]
    for i, b in enumerate(body):
        if i and groups[i] != groups[i - 1]:
            out.append("")
        out.append(line(b))
    return "\n".join(out)


def format_markdown(rows: Sequence[Row]) -> str:
    """The same table as GitHub markdown."""
    if not rows:
        return "(no results)\n"
    cands = table_columns(rows)
    head = _headers(cands)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in _row_cells(r, cands)) + " |")
    return "\n".join(out) + "\n"


def _geomean(xs: Sequence[float]) -> Optional[float]:
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def summary(rows: Sequence[Row]) -> str:
    """Per thread count and kind: geometric-mean ratio, cells below 1x, cells flagged vs numpy."""
    lines = []
    for n in sorted({r.threads for r in rows}):
        for kind in ("conv", "pool"):
            sel = [r for r in rows if r.threads == n and r.kind == kind]
            if not sel:
                continue
            for cand in C.FASTCONV_CANDIDATES:
                ratios = [r.ratio(cand) for r in sel]
                got = [x for x in ratios if x is not None]
                wrong = sum(cand in r.errors for r in sel)
                if not got and not wrong:
                    continue
                gm = _geomean(got)
                below = sum(x < 1.0 for x in got)
                slow = sum(r.slow_vs_numpy(cand) for r in sel)
                lines.append(
                    f"{n} thread(s), {kind}, {cand}: geomean peer/fastconv = "
                    f"{_fmt(gm)} over {len(got)} cells; {below} below 1.0x the fastest peer; "
                    f"{slow} more than {SLOW_VS_NUMPY:g}x slower than numpy"
                    + (f"; {wrong} WRONG/failed" if wrong else ""))
    return "\n".join(lines) if lines else "(fastconv not measured: no ratios)"


def count_cells(threads: Sequence[int], quick: bool, layers: Optional[Sequence[str]],
                ops: Optional[Sequence[str]]) -> int:
    """How many rows run_suite will produce (for a progress bar)."""
    cases = select_cases(layers, quick)
    return len(threads) * sum(len(select_ops(c, ops)) for c in cases)


def header_lines(threads: Sequence[int], quick: bool, repeats: int,
                 dtype: str = "float32") -> List[str]:
    v = runtime.versions()
    lines = [f"fastconv bench — same-process medians of {repeats} interleaved rounds"
             f"{' (quick: batch / 4)' if quick else ''}; threads {','.join(map(str, threads))}; "
             f"{dtype}",
             "  " + "; ".join(f"{k} {val}" for k, val in v.items())]
    note = runtime.openblas_env_note()
    if note:
        lines.append(note)
    if runtime.fastconv is None:
        lines.append(f"NOTE: fastconv is not importable ({runtime.FASTCONV_ERROR}); only the "
                     f"peers are timed.")
    if runtime.threadpoolctl is None and runtime.blas_threads() is None:
        lines.append("NOTE: cannot steer OpenBLAS's thread count (no threadpoolctl, no OpenBLAS "
                     "symbol found); numpy runs with its default.")
    return lines


# ------------------------------------------------------------------------------------ CLI
def _csv(s: Optional[str]) -> Optional[List[str]]:
    if s is None:
        return None
    items = [x.strip() for x in s.split(",") if x.strip()]
    return items or None


def parse_threads(text: Optional[str]) -> List[int]:
    """'1,2' -> [1, 2]; None -> 1 and the usable cores. SystemExit on bad values."""
    if not text:
        return sorted({1, runtime.cpu_count()})
    try:
        threads = [int(t) for t in _csv(text) or []]
    except ValueError:
        raise SystemExit(f"--threads: expected comma-separated integers, got {text!r}")
    if not threads or any(t < 1 for t in threads):
        raise SystemExit(f"--threads: counts must be >= 1, got {text!r}")
    return threads


def resolve_candidates(candidates: Optional[str], against: Optional[str],
                       out=sys.stdout) -> Optional[List[str]]:
    """The candidate list from --candidates / --against (None: every available one).
    --against lists peers only ('torch' = both torch layouts); fastconv (both layouts) is always
    added. Prints a NOTE for each requested candidate that is not importable."""
    cands = _csv(candidates)
    peers_req = _csv(against)
    if peers_req:
        if cands:
            raise SystemExit("use either --candidates or --against, not both")
        peers: List[str] = []
        for a in peers_req:
            peers += ["torch", "torch_cl"] if a == "torch" else [a]
        bad = [a for a in peers if a not in C.PEERS]
        if bad:
            raise SystemExit(f"--against: unknown peer(s) {', '.join(bad)}; use numpy, torch "
                             f"(both layouts), torch_cl")
        cands = list(C.FASTCONV_CANDIDATES) + [p for i, p in enumerate(peers)
                                               if p not in peers[:i]]
    if cands:
        unknown = [c for c in cands if c not in C.CANDIDATES]
        if unknown:
            raise SystemExit(f"--candidates: unknown {unknown}; use {', '.join(C.CANDIDATES)}")
        for c in cands:
            why = C.unavailable_reason(c)
            if why:
                print(f"NOTE: candidate {c} skipped: {why}", file=out)
    return cands


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, shared with ``python -m fastconv bench``."""
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts (default: 1 and the usable cores)")
    p.add_argument("--quick", action="store_true",
                   help="batch / 4 (also env FASTCONV_BENCH_QUICK=1)")
    p.add_argument("--layers", default=None,
                   help="comma-separated case names, or 'conv' / 'pool' (default: all)")
    p.add_argument("--ops", default=None,
                   help="comma-separated ops: fwd, bwd_data, bwd_weight (conv), bwd (pool; for "
                        "convs both gradients). Default: all")
    p.add_argument("--candidates", default=None,
                   help="comma-separated from " + ",".join(C.CANDIDATES)
                        + " (default: all available)")
    p.add_argument("--against", default=None,
                   help="peers only, comma-separated from numpy,torch,torch_cl ('torch' means "
                        "both torch layouts); fastconv (both layouts) is always measured")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                   help=f"timed rounds per cell, >= 7 recommended (default {DEFAULT_REPEATS})")
    p.add_argument("--warmup", type=int, default=1, help="warm-up calls per candidate")
    p.add_argument("--min-sample-ms", type=float, default=2.0,
                   help="a sample repeats a call until it lasts at least this long (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=C.DTYPES, default="float32",
                   help="element type of every input (default float32, ANCHORS' suite)")
    p.add_argument("--no-check", action="store_true", help="skip the correctness checks")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help="also write the table as markdown to FILE")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")


def run_from_args(args, out=sys.stdout) -> int:
    from .shapes import quick_from_env
    quick = bool(args.quick) or quick_from_env()
    threads = parse_threads(args.threads)
    cands = resolve_candidates(args.candidates, getattr(args, "against", None), out)
    dtype = getattr(args, "dtype", "float32")
    repeats = max(1, int(args.repeats))
    for line in header_lines(threads, quick, repeats, dtype):
        print(line, file=out)
    print(file=out, flush=True)

    def progress(row: Row) -> None:
        ms = "  ".join(f"{_SHORT[c]}={_fmt_ms(t)}" for c, t in row.ms.items())
        print(f"  .. {row.threads}t {row.case} {row.op}: {ms} {row.flags()}", file=out,
              flush=True)
        for cand, e in row.errors.items():
            print(f"     {cand}: {e}", file=out, flush=True)

    try:
        rows = run_suite(threads, quick, _csv(args.layers), _csv(args.ops), cands, repeats,
                         args.warmup, args.min_sample_ms / 1e3, args.seed, not args.no_check,
                         progress, dtype)
    except ValueError as e:
        raise SystemExit(str(e))
    print(file=out)
    print(format_table(rows), file=out)
    print(file=out)
    print(summary(rows), file=out)
    print("ratio = fastest peer ms / fastconv ms (> 1: fastconv faster); rate: fastconv's (the "
          "fastest peer's without fastconv); "
          f"flags: !! = fastconv > {SLOW_VS_NUMPY:g}x slower than numpy, <1 = slower than the "
          f"fastest peer, WRONG = result mismatch; suffix nhwc = fastconv's NHWC layout.",
          file=out)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(header_lines(threads, quick, repeats, dtype)) + "\n\n")
            f.write(format_markdown(rows))
            f.write("\n" + summary(rows) + "\n")
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump({"header": header_lines(threads, quick, repeats, dtype),
                       "rows": [r.as_dict() for r in rows]}, f, indent=1)
    wrong = any(c in r.errors for r in rows for c in C.FASTCONV_CANDIDATES)
    return 1 if wrong else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/compare.py",
                                description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
