"""Print README's results table from the JSON that `python -m fastconv bench --json FILE` writes.

Usage: python bench/readme_table.py results.json
One row per (layer, op) at 1 thread, with the 2-thread ratios in their own column.
"""
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
by = {(r["case"], r["op"], r["threads"]): r for r in rows}
PEER = {"numpy": "numpy", "torch": "torch NCHW", "torch_cl": "torch CL"}
def fmt(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"
print("| layer | op | NCHW ms (ratio) | NHWC ms (ratio) | fastest peer ms | 2 threads: ratio NCHW / NHWC | algorithm |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if r["threads"] != 1:
        continue
    r2 = by.get((r["case"], r["op"], 2))
    p = r["fastest_peer"]
    alg = r["algorithm"]
    names = [alg[c]["name"] for c in ("fastconv", "fastconv_nhwc") if c in alg]
    a = "-" if not names else (names[0] if len(set(names)) == 1 else "/".join(names))
    two = f"{r2['ratio']:.2f}x / {r2['ratio_nhwc']:.2f}x" if r2 else "-"
    print(f"| {r['case']} | {r['op']} | {fmt(r['ms']['fastconv'])} ({r['ratio']:.2f}x) | "
          f"{fmt(r['ms']['fastconv_nhwc'])} ({r['ratio_nhwc']:.2f}x) | {fmt(r['ms'][p])} ({PEER[p]}) | {two} | {a} |")
