"""``python -m fastconv bench``: the ANCHORS suite against every importable peer, as a report.

    python -m fastconv bench [--quick] [--threads 1,2] [--layers a,b|conv|pool] [--ops ...]
        [--dtype float32|float64] [--against numpy,torch] [--report FILE.md]
        [--plot FILE.png] [--json FILE] [--repeats 7] [--no-probe] [--no-memory]

1. Probes this machine (fastconv._bench.probe): the FMA peak ("measured peak", an estimate from
   fastconv's own GEMM microkernel) and the memory bandwidth (NumPy copy / sum), per thread count.
2. For every thread count, case and op (fastconv._bench.compare.run_suite): the same inputs for
   every candidate, each result checked against the NumPy baseline, then the candidates timed
   interleaved (round-robin, start rotating) and the medians kept. A progress bar runs meanwhile.
3. Extra memory (fastconv._bench.memory; skip with ``--no-memory``; Linux, else "n/a"): for
   every conv case and op, the peak RSS growth of ONE call beyond its outputs, for fastconv
   (both layouts), the NumPy baseline and torch NCHW, each in a fresh process (forked from a
   server that imported the libraries once): a tiny warm-up call (thread pool, lazy init), the
   full-size inputs and a preallocated, touched output (``conv2d(out=)``; the gradients' bytes
   are subtracted instead), gc + malloc_trim, VmHWM reset through /proc/self/clear_refs, one
   call, VmHWM read. Compared with the layer's im2col buffer, N*C*KH*KW*Ho*Wo*itemsize; the
   target is extra <= 1/4 of it (flag ``>1/4``). At the largest benchmarked thread count.
4. Prints the tables and a summary; ``--report`` writes them as markdown, ``--json`` as data,
   ``--plot`` draws the ratios (matplotlib).

Columns: median ms of each candidate (fastconv NCHW, fastconv NHWC, numpy im2col, torch NCHW,
torch channels_last), fastconv's rate (GFLOP/s for convs, GB/s of compulsory traffic for pools),
that rate as % of the measured FMA peak / bandwidth at the same thread count, the ratio
fastest peer's ms / fastconv's ms (> 1: fastconv is faster) for both fastconv layouts, and,
when ``fastconv.explain_conv2d`` exists, the algorithm fastconv chose ("gemm", "winograd",
"direct", ...; "NCHW/NHWC" when the layouts differ), with the reasons listed below the
markdown table. Memory table: layer, op, im2col MiB, fastconv extra MiB and fraction of im2col
per layout, numpy and torch extra MiB, flags.
Exit status 1 when a fastconv result did not match the baseline.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from typing import Dict, List, Optional, Sequence

from . import candidates as C
from . import compare, memory, probe, runtime
from .compare import Row, _csv, _fmt_ms
from .progress import have_tqdm, progress
from .shapes import CONV_LAYERS, quick_from_env

INSTALL_HINT = 'pip install "fastconv[bench]"'
_LABEL = {"fastconv": "fastconv", "fastconv_nhwc": "fastconv NHWC", "numpy": "numpy im2col",
          "torch": "torch NCHW", "torch_cl": "torch CL"}


# ------------------------------------------------------------------------------------ options
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="batch / 4 and 5 rounds: a pass in about a minute (ratios still hold)")
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts, e.g. 1,2 (default: 1 and the usable cores)")
    p.add_argument("--layers", default=None,
                   help="comma-separated case names, or 'conv' / 'pool' (default: the whole "
                        "suite). Names: " + ", ".join(c.name for c in CONV_LAYERS) + ", ...")
    p.add_argument("--ops", default=None,
                   help="comma-separated: fwd, bwd_data, bwd_weight (conv); bwd (pool; on a conv "
                        "both gradients). Default: all")
    p.add_argument("--dtype", choices=C.DTYPES, default="float32",
                   help="element type (default float32, the ANCHORS suite)")
    p.add_argument("--against", default=None,
                   help="peers, comma-separated from numpy, torch (= torch NCHW and channels_last)"
                        ", torch_cl (default: every importable one)")
    p.add_argument("--report", default=None, metavar="FILE.md", help="write a markdown report")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="write a bar chart of the ratios (needs matplotlib)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per cell (default 7, --quick 5)")
    p.add_argument("--min-sample-ms", type=float, default=2.0,
                   help="one sample repeats a call until it lasts this long (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--no-check", action="store_true", help="skip the correctness checks")
    p.add_argument("--no-probe", action="store_true",
                   help="skip the peak / bandwidth probe (no %% of peak column)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the extra-memory measurement of the conv calls (one fresh child "
                        "process per layer, op and candidate; Linux only)")


# ------------------------------------------------------------------------------------ analysis
def is_gemm_bound(row: Row) -> bool:
    """ANCHORS' GEMM-bound layers: 3x3 with >= 64 channels, 1x1, the stem (not depthwise)."""
    case = next((c for c in CONV_LAYERS if c.name == row.case), None)
    if case is None or case.groups != 1:
        return False
    return case.C >= 64 or case.name.startswith("resnet_stem")


def pct_of_limit(row: Row, cand: str, limits: Dict[str, Dict[int, float]]) -> Optional[float]:
    """cand's rate as % of the measured FMA peak (conv) or bandwidth (pool) at row.threads."""
    lim = limits.get("conv" if row.kind == "conv" else "pool", {}).get(row.threads)
    rate = row.rate(cand)
    if not lim or rate is None or cand in row.errors:
        return None
    return 100.0 * rate / lim


def _geomean(xs: Sequence[float]) -> Optional[float]:
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def summary_lines(rows: Sequence[Row], limits: Dict[str, Dict[int, float]]) -> List[str]:
    """Geomean ratios per thread count / kind / layout, cells below 1x, % of peak ranges."""
    out: List[str] = []
    every: List[float] = []
    for n in sorted({r.threads for r in rows}):
        for kind in ("conv", "pool"):
            sel = [r for r in rows if r.threads == n and r.kind == kind]
            if not sel:
                continue
            for cand in C.FASTCONV_CANDIDATES:
                got = [x for x in (r.ratio(cand) for r in sel) if x is not None]
                wrong = sum(cand in r.errors for r in sel)
                if not got and not wrong:
                    continue
                every += got
                gm = _geomean(got)
                below = [f"{r.case} {r.op}" for r in sel
                         if r.ratio(cand) is not None and r.ratio(cand) < 1.0]  # type: ignore
                line = (f"{n} thread(s), {kind}, {_LABEL[cand]}: geomean ratio "
                        f"{gm:.2f}x over {len(got)} cells" if gm else
                        f"{n} thread(s), {kind}, {_LABEL[cand]}: no ratio")
                line += f"; {len(below)} below 1.0x"
                if below and len(below) <= 6:
                    line += " (" + ", ".join(below) + ")"
                if wrong:
                    line += f"; {wrong} WRONG/failed"
                out.append(line)
        gb = [p for p in (pct_of_limit(r, "fastconv", limits) for r in rows
                          if r.threads == n and r.kind == "conv" and is_gemm_bound(r))
              if p is not None]
        if gb:
            out.append(f"{n} thread(s): GEMM-bound convs (3x3 >= 64 ch, 1x1, stem) at "
                       f"{min(gb):.0f}-{max(gb):.0f} % of the measured FMA peak (median "
                       f"{sorted(gb)[len(gb) // 2]:.0f} %; Winograd may exceed 100 %)")
        pb = [p for p in (pct_of_limit(r, c, limits) for r in rows
                          if r.threads == n and r.kind == "pool" for c in C.FASTCONV_CANDIDATES)
              if p is not None]
        if pb:
            out.append(f"{n} thread(s): pooling at {min(pb):.0f}-{max(pb):.0f} % of the measured "
                       f"bandwidth (both layouts)")
    threads = sorted({r.threads for r in rows})
    if len(threads) > 1 and threads[0] == 1:
        for n in threads[1:]:
            sp = []
            for r in rows:
                if r.threads != n or not is_gemm_bound(r):
                    continue
                r1 = next((q for q in rows if q.threads == 1 and q.case == r.case
                           and q.op == r.op), None)
                if r1 and r1.ms.get("fastconv") and r.ms.get("fastconv"):
                    sp.append(r1.ms["fastconv"] / r.ms["fastconv"])  # type: ignore[operator]
            if sp:
                out.append(f"{n} vs 1 thread(s): fastconv speed-up on GEMM-bound convs "
                           f"{min(sp):.2f}-{max(sp):.2f}x (geomean {_geomean(sp):.2f}x)")
    gm = _geomean(every)
    if gm:
        out.append(f"overall: geomean ratio {gm:.2f}x over {len(every)} cells (both layouts, "
                   f"every thread count)")
    return out or ["(fastconv not measured: no ratios)"]


# ------------------------------------------------------------------------------------ tables
def _cands(rows: Sequence[Row]) -> List[str]:
    return [c for c in C.CANDIDATES if any(c in r.ms for r in rows)]


def _has_algo(rows: Sequence[Row]) -> bool:
    return any(r.algo for r in rows)


def _headers(cands: Sequence[str], probed: bool, algo: bool = False) -> List[str]:
    h = ["case", "op", "thr"] + [f"{_LABEL[c]} ms" for c in cands] + ["fastconv rate", "unit"]
    if probed:
        h.append("% of peak")
    h.append("ratio")
    if "fastconv_nhwc" in cands:
        h.append("ratio NHWC")
    if algo:
        h.append("algorithm" + (" (NCHW/NHWC)" if "fastconv_nhwc" in cands else ""))
    return h + ["fastest peer", "flags"]


def _left(head: Sequence[str]) -> List[int]:
    """Left-aligned columns: case, op, algorithm, fastest peer, flags."""
    return [i for i, h in enumerate(head)
            if i < 2 or i >= len(head) - 2 or h.startswith("algorithm")]


def _cells(r: Row, cands: Sequence[str], limits, probed: bool,
           algo: bool = False) -> List[str]:
    cells = [r.case, r.op, str(r.threads)]
    for c in cands:
        t = r.ms.get(c)
        cells.append("WRONG" if (c in r.errors and c in C.FASTCONV_CANDIDATES and t) else
                     "ERR" if (c in r.errors and not t) else _fmt_ms(t))
    rate = r.rate("fastconv") if "fastconv" not in r.errors else None
    cells.append(f"{rate:.1f}" if rate is not None else "-")
    cells.append(r.unit)
    if probed:
        p = pct_of_limit(r, "fastconv", limits)
        cells.append(f"{p:.0f} %" if p is not None else "-")
    ratio = r.ratio("fastconv")
    cells.append(f"{ratio:.2f}x" if ratio is not None else "-")
    if "fastconv_nhwc" in cands:
        rn = r.ratio("fastconv_nhwc")
        cells.append(f"{rn:.2f}x" if rn is not None else "-")
    if algo:
        cells.append(r.algo_label())
    fp = r.fastest_peer()
    cells.append(_LABEL.get(fp, fp) if fp else "-")
    cells.append(r.flags())
    return cells


def text_table(rows: Sequence[Row], limits, probed: bool) -> str:
    if not rows:
        return "(no results)"
    cands = _cands(rows)
    algo = _has_algo(rows)
    head = _headers(cands, probed, algo)
    return compare.fixed_width(head, [_cells(r, cands, limits, probed, algo) for r in rows],
                               [r.threads for r in rows], _left(head))


def markdown_table(rows: Sequence[Row], limits, probed: bool) -> str:
    if not rows:
        return "(no results)\n"
    cands = _cands(rows)
    algo = _has_algo(rows)
    head = _headers(cands, probed, algo)
    left = set(_left(head))
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i in left else "--:" for i in range(len(head))) + "|"]
    for r in rows:
        cells = _cells(r, cands, limits, probed, algo)
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


def algorithm_lines(rows: Sequence[Row]) -> List[str]:
    """`layer op layout: algorithm — reason`, one line per distinct (layer, op, layout); where
    the choice differs between thread counts, one line per thread count."""
    by: Dict[tuple, Dict[tuple, List[int]]] = {}
    for r in rows:
        for cand in C.FASTCONV_CANDIDATES:
            if cand in r.algo:
                key = (r.case, r.op, "NHWC" if cand == "fastconv_nhwc" else "NCHW")
                by.setdefault(key, {}).setdefault(tuple(r.algo[cand]), []).append(r.threads)
    out = []
    for (case, op, lay), choices in by.items():
        for (name, why), ths in choices.items():
            tail = "" if len(choices) == 1 else \
                f" ({','.join(map(str, sorted(set(ths))))} thread(s))"
            out.append(f"{case} {op} {lay}{tail}: {name} — {why}")
    return out


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {runtime.cpu_count()} usable cores, {platform.system()} {platform.machine()}"


def markdown_report(rows: Sequence[Row], header: Sequence[str], probe_lines: Sequence[str],
                    limits, probed: bool, command: str, elapsed_s: float,
                    mem_rows: Optional[Sequence["memory.MemRow"]] = None,
                    mem_note: Optional[str] = None) -> str:
    out = ["# fastconv benchmark", "",
           f"Machine: {machine_line()}.  ",
           f"Command: `{command}` ({elapsed_s:.0f} s).", ""]
    out += [f"    {h}" for h in header] + [""]
    if probe_lines:
        out += ["## Machine limits (measured)", ""]
        out += [f"- {p}" for p in probe_lines]
        out += ["", "The FMA peak is an estimate: the best rate measured with fastconv's GEMM "
                "microkernel on cache-resident data and with numpy.matmul (see "
                "`fastconv._bench.probe`); the bandwidth is the best of a NumPy copy "
                "and a read-only sum over arrays far beyond the last-level cache. \"% of peak\" "
                "is fastconv's (NCHW) GFLOP/s over that peak for convs and its GB/s of "
                "compulsory traffic (input read + output written) over that bandwidth for "
                "pools.", ""]
    out += ["## Results", "", markdown_table(rows, limits, probed),
            "ratio = fastest peer's median ms / fastconv's median ms (> 1: fastconv is faster), "
            "for fastconv's NCHW and NHWC layouts; flags: `<1` slower than the fastest peer, "
            f"`!!` more than {compare.SLOW_VS_NUMPY:g}x slower than numpy, `WRONG` result "
            "mismatch (suffix `nhwc`: the NHWC layout). Medians of interleaved rounds in one "
            "process; only the ratios are comparable between machines.", ""]
    algos = algorithm_lines(rows)
    if algos:
        out += ["Algorithms fastconv chose (`fastconv.explain_conv2d`):", ""]
        out += [f"- {a}" for a in algos] + [""]
    if mem_rows or mem_note:
        out += ["## Extra memory per conv call", ""]
        if mem_rows:
            out += [memory_caption(mem_rows), "", memory.markdown_table(mem_rows),
                    MEMORY_LEGEND, ""]
        if mem_note:
            out += [mem_note, ""]
    out += ["## Summary", ""]
    out += [f"- {s}" for s in summary_lines(rows, limits)]
    if mem_rows:
        out += [f"- {s}" for s in memory.summary_lines(mem_rows)]
    return "\n".join(out) + "\n"


MEMORY_LEGEND = (
    "extra MiB = peak RSS growth of one call beyond its outputs, measured in a fresh child "
    "process per cell (VmHWM reset through /proc/self/clear_refs after a tiny warm-up call, "
    "input building and malloc_trim; outputs preallocated (conv2d out=) or their bytes "
    "subtracted); im2col MiB = N*C*KH*KW*Ho*Wo*itemsize; frac = fastconv's extra / im2col; "
    "`>1/4` flags a fraction above the 1/4 target (suffix `nhwc`: the NHWC layout).")


def memory_caption(mem_rows: Sequence["memory.MemRow"]) -> str:
    n = mem_rows[0].threads if mem_rows else 1
    return (f"One call per cell at {n} thread(s), in a fresh process per (layer, op, "
            f"candidate).")


# ------------------------------------------------------------------------------------ plot
def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_ratios(rows: Sequence[Row], path: str, title: str = "") -> None:
    """Horizontal bars: fastest peer / fastconv per cell and layout, one panel per thread count,
    log scale, a line at 1.0x."""
    plt = _matplotlib()
    if plt is None:
        raise RuntimeError(f"--plot needs matplotlib: {INSTALL_HINT} (or pip install matplotlib)")
    threads = sorted({r.threads for r in rows})
    cells = list(dict.fromkeys((r.case, r.op) for r in rows))
    height = max(3.0, 0.28 * len(cells) + 1.5)
    fig, axes = plt.subplots(1, len(threads), figsize=(6.2 * len(threads), height), sharey=True,
                             squeeze=False)
    colors = {"fastconv": "#1f77b4", "fastconv_nhwc": "#ff7f0e"}
    for ax, n in zip(axes[0], threads):
        by = {(r.case, r.op): r for r in rows if r.threads == n}
        lo, hi = 1.0, 1.0
        for k, cand in enumerate(C.FASTCONV_CANDIDATES):
            ys, xs = [], []
            for i, cell in enumerate(cells):
                r = by.get(cell)
                v = r.ratio(cand) if r is not None else None
                if v:
                    ys.append(i + (k - 0.5) * 0.4)
                    xs.append(v)
                    lo, hi = min(lo, v), max(hi, v)
            if xs:        # bars grow from 1.0x: right = fastconv faster, left = slower
                ax.barh(ys, [v - 1.0 for v in xs], height=0.4, left=1.0, color=colors[cand],
                        label=_LABEL[cand])
                if len(cells) <= 60:
                    for yy, v in zip(ys, xs):
                        ax.text(v * (1.02 if v >= 1 else 0.98), yy, f"{v:.2f}",
                                va="center", ha="left" if v >= 1 else "right", fontsize=6)
        ax.axvline(1.0, color="k", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(min(0.5, lo / 1.3), max(2.0, hi * 1.3))
        ax.set_title(f"{n} thread{'s' if n > 1 else ''}")
        ax.set_xlabel("fastest peer ms / fastconv ms  (> 1: fastconv faster)")
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.set_yticks(range(len(cells)))
        ax.set_yticklabels([f"{c} {o}" for c, o in cells], fontsize=8)
        ax.invert_yaxis()
    top = 0.05 / height                      # figure fraction per 0.05 inch from the top
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 1 * top, va="top")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=len(handles), fontsize=8,
                   bbox_to_anchor=(0.5, 1.0 - 5 * top), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 10 * top))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------ run
def run(args, out=sys.stdout, err=sys.stderr) -> int:
    t_start = time.perf_counter()
    if args.plot and _matplotlib() is None:
        print(f"fastconv bench: --plot needs matplotlib, which is not installed: {INSTALL_HINT} "
              f"(or pip install matplotlib)", file=err)
        return 2
    quick = bool(args.quick) or quick_from_env()
    threads = compare.parse_threads(args.threads)
    layers, ops = _csv(args.layers), _csv(args.ops)
    try:
        total = compare.count_cells(threads, quick, layers, ops)
    except ValueError as e:
        print(f"fastconv bench: {e}", file=err)
        return 2
    if total == 0:
        print("fastconv bench: nothing to run (check --layers / --ops)", file=err)
        return 2
    cands = compare.resolve_candidates(None, args.against, out)
    use = C.available_candidates(cands or C.CANDIDATES)
    if not any(p in use for p in C.PEERS):
        print("fastconv bench: no peer to compare with", file=err)
        return 2
    repeats = max(1, int(args.repeats if args.repeats is not None else (5 if quick else 7)))
    header = compare.header_lines(threads, quick, repeats, args.dtype)
    if runtime.torch is None:
        header.append("NOTE: torch is not installed: comparing with the NumPy im2col baseline "
                      "only (pip install torch to add PyTorch CPU, NCHW and channels_last).")
    header.append("candidates: " + ", ".join(_LABEL[c] for c in use))
    header.append(runtime.blas_timeout_note())
    for line in header:
        print(line, file=out)

    limits: Dict[str, Dict[int, float]] = {}
    probe_info: Dict[str, object] = {}
    probe_lines: List[str] = []
    if not args.no_probe:
        print("probing the FMA peak and memory bandwidth ...", file=err, flush=True)
        peaks = bws = None
        try:
            peaks = probe.fma_peak(threads, args.dtype, budget_s=0.15 if quick else 0.3)
            limits["conv"] = {n: v["peak"] for n, v in peaks.items()}
        except Exception as e:  # noqa: BLE001 - the report works without it
            print(f"NOTE: FMA peak probe failed ({type(e).__name__}: {e})", file=out)
        try:
            bws = probe.bandwidth(threads, budget_s=0.2 if quick else 0.4)
            limits["pool"] = {n: v["bandwidth"] for n, v in bws.items()}
        except Exception as e:  # noqa: BLE001
            print(f"NOTE: bandwidth probe failed ({type(e).__name__}: {e})", file=out)
        probe_lines = probe.describe(peaks, bws, args.dtype)
        probe_info = {"fma_peak_gflops": peaks, "bandwidth_gbs": bws}
        for line in probe_lines:
            print(line, file=out)
    print(file=out, flush=True)
    probed = bool(limits)

    if not have_tqdm():
        print(f"(progress: install tqdm for a progress bar: {INSTALL_HINT})", file=err)
    bar = progress(total=total, desc="fastconv bench", unit="cell")

    def on_start(case, op, n):
        bar.set_postfix_str(f"{n}t {case.name} {op}")

    def on_row(row: Row):
        bar.update(1)
        for cand, e in row.errors.items():
            bar.write(f"  {row.threads}t {row.case} {row.op}: {cand}: {e}")

    try:
        rows = compare.run_suite(threads, quick, layers, ops, cands, repeats, 1,
                                 args.min_sample_ms / 1e3, args.seed, not args.no_check,
                                 on_row, args.dtype, on_start)
    finally:
        bar.close()
    mem_rows, mem_note = run_memory(args, threads, quick, layers, ops, use, err)
    elapsed = time.perf_counter() - t_start

    print(file=out)
    print(text_table(rows, limits, probed), file=out)
    print(file=out)
    summ = summary_lines(rows, limits)
    for s in summ:
        print(s, file=out)
    print("ratio = fastest peer ms / fastconv ms (> 1: fastconv faster); % of peak: fastconv's "
          "GFLOP/s (conv) or GB/s (pool) over the measured peak / bandwidth.", file=out)
    if mem_rows:
        print(file=out)
        print("Extra memory per conv call, MiB beyond the outputs. " + memory_caption(mem_rows),
              file=out)
        print(memory.text_table(mem_rows), file=out)
        for s in memory.summary_lines(mem_rows):
            print(s, file=out)
        print("extra = peak RSS growth of one call in a fresh process beyond its outputs; frac = "
              "fastconv's extra / im2col buffer (N*C*KH*KW*Ho*Wo*itemsize); >1/4: above the "
              "target.", file=out)
    if mem_note:
        print(mem_note, file=out)
    argv = getattr(args, "argv", None)
    command = "python -m fastconv " + (" ".join(shlex.quote(a) for a in argv) if argv
                                       else "bench")
    if args.report:
        with open(args.report, "w") as f:
            f.write(markdown_report(rows, header, probe_lines, limits, probed, command,
                                    elapsed, mem_rows, mem_note))
        print(f"report written to {args.report}", file=out)
    if args.json:
        data = {"command": command, "machine": machine_line(), "header": header,
                "dtype": args.dtype, "quick": quick, "threads": threads, "repeats": repeats,
                "probe": probe_info, "summary": summ, "elapsed_s": elapsed,
                "rows": [dict(r.as_dict(), pct_of_peak=pct_of_limit(r, "fastconv", limits),
                              pct_of_peak_nhwc=pct_of_limit(r, "fastconv_nhwc", limits),
                              gemm_bound=is_gemm_bound(r)) for r in rows],
                "algorithms": algorithm_lines(rows),
                "memory": None if mem_rows is None else {
                    "threads": mem_rows[0].threads if mem_rows else None,
                    "limit_fraction": memory.LIMIT_FRACTION, "note": mem_note,
                    "method": "fresh child per cell; tiny warm-up; malloc_trim; VmHWM reset via "
                              "/proc/self/clear_refs; one call; VmHWM - RSS before - output bytes",
                    "summary": memory.summary_lines(mem_rows),
                    "rows": [m.as_dict() for m in mem_rows]}}
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1, default=_json_default)
        print(f"results written to {args.json}", file=out)
    if args.plot:
        title = f"fastconv vs fastest peer ({args.dtype}{', quick' if quick else ''}) — " \
                f"{machine_line()}"
        plot_ratios(rows, args.plot, title)
        print(f"plot written to {args.plot}", file=out)
    wrong = any(c in r.errors for r in rows for c in C.FASTCONV_CANDIDATES)
    if wrong:
        print("fastconv bench: some fastconv results did not match the baseline (WRONG)",
              file=err)
    return 1 if wrong else 0


def run_memory(args, threads: Sequence[int], quick: bool, layers, ops, use: Sequence[str],
               err=sys.stderr):
    """The extra-memory table of the conv cells (fastconv._bench.memory): (rows or None, note).
    At the largest benchmarked thread count (per-thread buffers make it the worst case)."""
    if getattr(args, "no_memory", False):
        return None, None
    cases = [c for c in compare.select_cases(layers, quick) if isinstance(c, memory.ConvCase)]
    cells = [(c, op) for c in cases for op in compare.select_ops(c, ops)]
    if not cells:
        return None, None
    why = memory.supported()
    if why:
        return None, f"extra memory: n/a ({why})"
    mcands = [c for c in memory.MEMORY_CANDIDATES if c in use]
    if not any(c in C.FASTCONV_CANDIDATES for c in mcands):
        return None, "extra memory: n/a (fastconv is not importable)"
    n = max(threads)
    print(f"measuring the extra memory of one call per conv cell ({n} thread(s), a fresh "
          f"process each) ...", file=err, flush=True)
    bar = progress(total=len(cells) * len(mcands), desc="extra memory", unit="call")

    def on_cell(case, op, cand):
        bar.set_postfix_str(f"{case.name} {op} {cand}")

    try:
        rows = memory.measure_suite(cases, lambda c: compare.select_ops(c, ops), mcands,
                                    dtype=args.dtype, threads=n, seed=args.seed, on_cell=on_cell,
                                    on_done=lambda *a: bar.update(1))
    finally:
        bar.close()
    for r in rows:
        for cand, e in r.errors.items():
            print(f"  memory {r.case} {r.op} {cand}: {e}", file=err)
    return rows, None


def _json_default(o):
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastconv bench",
                                description=__doc__.split("\n")[0])
    add_arguments(p)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    args.argv = ["bench"] + argv
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

