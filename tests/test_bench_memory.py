"""The benchmark's extra-memory measurement (fastconv._bench.memory) and algorithm column.

The memory checks would fail if the measurement were broken: the NumPy baseline's forward
allocates the whole im2col buffer (plus a padded copy of x and the GEMM result), so its measured
extra memory must be at least that buffer's size, which is computed independently here.
Small shapes, a handful of child processes: a few seconds.
"""
import sys

import pytest

from fastconv._bench import candidates as C
from fastconv._bench import compare, memory, report
from fastconv._bench.compare import Row
from fastconv._bench.shapes import ConvCase

linux_only = pytest.mark.skipif(memory.supported() is not None,
                                reason=f"memory measurement: {memory.supported()}")

# im2col of this layer: 2 * 64 * 3 * 3 * 40 * 40 * 4 bytes = 7.03 MiB, far above the noise floor
CASE = ConvCase("mem_test", 2, 64, 32, 40, 40, 3, 1, 1)
IM2COL = 2 * 64 * 3 * 3 * 40 * 40 * 4


def test_im2col_bytes():
    assert memory.im2col_bytes(CASE) == IM2COL
    assert memory.im2col_bytes(CASE, 8) == 2 * IM2COL
    dw = ConvCase("dw", 2, 32, 32, 10, 10, 3, 1, 1, groups=32)     # groups do not change it
    assert memory.im2col_bytes(dw) == 2 * 32 * 9 * 10 * 10 * 4
    t = memory.tiny_case(ConvCase("d", 8, 16, 16, 56, 56, 3, 1, 2, dilation=2))
    assert t.N == 1 and t.Ho >= 1 and t.Wo >= 1


@linux_only
def test_numpy_im2col_is_seen_spawned_and_forked():
    """A call that allocates a known buffer reports at least that buffer, in both modes."""
    spawned = memory.measure(CASE, "fwd", "numpy")
    assert spawned.get("error") is None, spawned
    assert spawned["method"] == "clear_refs" or spawned["extra"] is not None
    assert spawned["extra"] >= IM2COL, spawned
    assert spawned["out_bytes"] == 2 * 32 * 40 * 40 * 4
    assert spawned["extra"] < 4 * IM2COL, spawned                    # no stray inputs counted
    with memory.ForkServer() as srv:
        forked = srv.measure(CASE, "fwd", "numpy")
        assert forked.get("error") is None, forked
        assert forked["extra"] >= IM2COL, forked
        # the weight gradient rebuilds im2col from x as well
        wg = srv.measure(CASE, "bwd_weight", "numpy")
        assert wg["extra"] >= IM2COL, wg
        if C.available("fastconv"):
            fc = srv.measure(CASE, "fwd", "fastconv")
            assert fc.get("error") is None, fc
            assert fc["out_bytes"] == 0                          # conv2d(..., out=) preallocated
            assert fc["extra"] is not None and fc["extra"] > -64 * 1024   # page-size noise only


@linux_only
def test_measure_suite_rows_and_tables():
    if not C.available("fastconv"):
        pytest.skip("fastconv not importable")
    rows = memory.measure_suite([CASE], lambda c: ("fwd",), ["fastconv", "numpy"])
    (row,) = rows
    assert set(row.extra) == {"fastconv", "numpy"} and not row.errors, row.errors
    assert row.im2col == IM2COL and row.extra["numpy"] >= IM2COL
    assert row.fraction("numpy") >= 1.0 and row.over("numpy")
    txt = memory.text_table(rows)
    assert "im2col MiB" in txt and "mem_test" in txt and "7.03" in txt
    md = memory.markdown_table(rows)
    assert md.startswith("| case | op | im2col MiB |") and "mem_test" in md
    assert any("memory, fastconv" in s for s in memory.summary_lines(rows))


def test_memrow_fraction_flags_and_na():
    r = memory.MemRow("a", "fwd", 1, "", 4 << 20,
                      extra={"fastconv": 2 << 20, "fastconv_nhwc": 1 << 20, "numpy": None},
                      errors={"numpy": "needs Linux /proc"})
    assert r.fraction() == pytest.approx(0.5) and r.over()
    assert r.fraction("fastconv_nhwc") == pytest.approx(0.25) and not r.over("fastconv_nhwc")
    assert r.flags() == ">1/4" and r.fraction("numpy") is None
    d = r.as_dict()
    assert d["extra_mib"]["fastconv"] == pytest.approx(2.0) and d["im2col_mib"] == 4.0
    assert d["over_quarter"] == {"fastconv": True, "fastconv_nhwc": False, "numpy": False}
    head, body, _ = memory.table([r])
    assert body[0][head.index("numpy MiB")] == "n/a"
    assert any("n/a" in s for s in memory.summary_lines([r]))


def test_unsupported_platform_gives_na(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert memory.supported() is not None
    got = memory.measure(CASE, "fwd", "numpy")
    assert got["extra"] is None and "Linux" in got["error"]


# ------------------------------------------------------------------------------------ algorithm
def _fake_explain(x_shape, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                  layout="NCHW", dtype="float32", op="forward"):
    assert op in ("forward", "input_grad", "weight_grad") and dtype == "float32"
    if layout == "NHWC":
        assert x_shape[3] == weight_shape[2] * groups         # NHWC x, HWIO weight
        return "direct", f"{op}: NHWC test reason"
    assert x_shape[1] == weight_shape[1] * groups             # NCHW x, OIHW weight
    return "gemm", f"{op}: NCHW test reason"


def test_algorithm_column_and_reasons(monkeypatch):
    fc = pytest.importorskip("fastconv")
    small = ConvCase("tiny", 1, 4, 4, 6, 6, 3, 1, 1)
    monkeypatch.delattr(fc, "explain_conv2d", raising=False)
    assert C.explain(small, "fwd", "fastconv") is None        # missing: nothing shown
    monkeypatch.setattr(fc, "explain_conv2d", _fake_explain, raising=False)
    assert C.explain(small, "bwd_data", "fastconv_nhwc") == ("direct",
                                                            "input_grad: NHWC test reason")
    assert C.explain(small, "fwd", "numpy") is None
    inputs = C.make_inputs(small)
    row = compare.run_case(small, "bwd_weight", 1, ["fastconv", "fastconv_nhwc", "numpy"], inputs,
                           repeats=1, min_sample_s=0.0)
    assert row.algo == {"fastconv": ("gemm", "weight_grad: NCHW test reason"),
                        "fastconv_nhwc": ("direct", "weight_grad: NHWC test reason")}
    assert row.algo_label() == "gemm/direct"
    assert row.as_dict()["algorithm"]["fastconv"]["name"] == "gemm"
    md = report.markdown_table([row], {}, False)
    assert "algorithm (NCHW/NHWC)" in md and "gemm/direct" in md
    assert "algorithm" in report.text_table([row], {}, False)
    lines = report.algorithm_lines([row])
    assert lines == ["tiny bwd_weight NCHW: gemm — weight_grad: NCHW test reason",
                     "tiny bwd_weight NHWC: direct — weight_grad: NHWC test reason"]

    def broken(*a, **k):
        raise RuntimeError("boom")
    monkeypatch.setattr(fc, "explain_conv2d", broken)
    assert C.explain(small, "fwd", "fastconv")[0] == "?"


def test_real_explain_conv2d_fills_the_column():
    fc = pytest.importorskip("fastconv")
    if getattr(fc, "explain_conv2d", None) is None:
        pytest.skip("this fastconv build has no explain_conv2d")
    small = ConvCase("tiny", 1, 8, 8, 9, 9, 3, 1, 1)
    for op in ("fwd", "bwd_data", "bwd_weight"):
        for cand in C.FASTCONV_CANDIDATES:
            name, why = C.explain(small, op, cand)
            assert name and name != "?" and why, (op, cand, name, why)


def test_markdown_report_sections():
    rows = [Row("r3x3_64@56", "conv", "fwd", 1, "", 1.85,
                ms={"fastconv": 10.0, "numpy": 30.0},
                algo={"fastconv": ("winograd", "3x3 stride 1")})]
    mem = [memory.MemRow("r3x3_64@56", "fwd", 1, "", 8 << 20,
                         extra={"fastconv": 1 << 20, "numpy": 9 << 20})]
    md = report.markdown_report(rows, ["h"], [], {}, False, "cmd", 1.0, mem)
    assert "| algorithm |" in md and "- r3x3_64@56 fwd NCHW: winograd — 3x3 stride 1" in md
    assert "## Extra memory per conv call" in md and "| case | op | im2col MiB |" in md
    assert "0.125" in md and "clear_refs" in md
    md2 = report.markdown_report(rows, ["h"], [], {}, False, "cmd", 1.0, None,
                                 "extra memory: n/a (needs Linux /proc (this is darwin))")
    assert "n/a (needs Linux" in md2 and "im2col MiB" not in md2
