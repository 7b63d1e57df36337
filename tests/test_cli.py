"""The command line: ``python -m fastconv info | bench | demo`` (SPEC "Command line").

Each command runs in a subprocess, as a user would start it. Optional dependencies are hidden
from a run by a ``sys.modules[name] = None`` prelude (the same ImportError a missing package
gives), so the "without torch / matplotlib / scikit-learn" paths are tested on any machine.
Kept small: bench on one tiny conv and one pooling case, the demo on 200 images for one epoch.
"""
import importlib.util
import io
import json
import os
import subprocess
import sys

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BENCH_SMALL = ["bench", "--quick", "--threads", "1", "--layers", "lenet_conv2,globalavg_512@7",
               "--repeats", "3", "--min-sample-ms", "0.5"]


def _have(mod):
    return importlib.util.find_spec(mod) is not None


def fastconv_cli(args, cwd, hide=(), timeout=240):
    """Run the command line (as ``python -m fastconv``) with the modules in ``hide`` made
    unimportable; returns the CompletedProcess (text)."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in hide)
    code = prelude + ("from fastconv.__main__ import main\n"
                      f"sys.exit(main({list(args)!r}))\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("FASTCONV_BENCH_QUICK", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _ok(proc):
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n" \
                                 f"{proc.stderr}"
    return proc


# ------------------------------------------------------------------------------------ info/help
def test_info_as_module(tmp_path):
    proc = _ok(subprocess.run([sys.executable, "-m", "fastconv", "info"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60))
    assert "fastconv" in proc.stdout and "ISA" in proc.stdout


def test_help_lists_every_command(tmp_path):
    proc = _ok(subprocess.run([sys.executable, "-m", "fastconv", "--help"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60))
    for cmd in ("info", "bench", "demo"):
        assert cmd in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "fastconv", "nonsense"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_main_in_process(capsys):
    from fastconv.__main__ import COMMANDS, build_parser, main
    assert {"info", "bench", "demo"} <= set(COMMANDS)
    assert main(["info"]) == 0
    assert "fastconv" in capsys.readouterr().out
    p = build_parser()                    # every command's options
    a = p.parse_args(["bench", "--quick", "--threads", "1,2", "--dtype", "float64",
                      "--against", "numpy,torch", "--report", "r.md", "--plot", "r.png",
                      "--json", "r.json", "--layers", "conv"])
    assert a.quick and a.threads == "1,2" and a.dtype == "float64" and a.report == "r.md"
    assert not a.no_memory and p.parse_args(["bench", "--no-memory"]).no_memory
    d = p.parse_args(["demo", "--epochs", "3", "--batch-size", "16", "--threads", "1",
                      "--plot", "c.png", "--compare-numpy", "--seed", "4"])
    assert (d.epochs, d.batch_size, d.threads, d.seed, d.compare_numpy) == (3, 16, 1, 4, True)


def test_console_script_declared():
    """pyproject: [project.scripts] fastconv = fastconv.__main__:main and the demo/bench extras."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "pyproject.toml")
    if not os.path.exists(path):
        pytest.skip("not running from the source tree")
    try:
        import tomllib
    except ImportError:
        pytest.skip("tomllib needs Python 3.11")
    with open(path, "rb") as f:
        proj = tomllib.load(f)["project"]
    assert proj["scripts"]["fastconv"] == "fastconv.__main__:main"
    extras = proj["optional-dependencies"]
    assert set(extras["demo"]) >= {"scikit-learn", "tqdm", "matplotlib"}
    assert set(extras["bench"]) >= {"matplotlib", "tqdm"}


# ------------------------------------------------------------------------------------ bench
def _check_report(tmp_path, proc, expect_torch):
    text = (tmp_path / "r.md").read_text()
    assert "| case | op | thr |" in text
    assert "lenet_conv2" in text and "globalavg_512@7" in text
    assert "% of peak" in text and "measured" in text
    assert "geomean ratio" in text
    data = json.loads((tmp_path / "r.json").read_text())
    rows = data["rows"]
    assert {(r["case"], r["op"]) for r in rows} == {("lenet_conv2", o) for o in
                                                    ("fwd", "bwd_data", "bwd_weight")} | \
        {("globalavg_512@7", o) for o in ("fwd", "bwd")}
    for r in rows:
        assert not r["errors"], r["errors"]
        assert r["ms"]["fastconv"] > 0 and r["ms"]["numpy"] > 0
        assert r["ratio"] is not None and r["ratio"] > 0
        assert r["pct_of_peak"] is not None and r["pct_of_peak"] > 0
        assert ("torch" in r["ms"]) == expect_torch
    probe = data["probe"]
    assert probe["fma_peak_gflops"]["1"]["peak"] > 0
    assert probe["bandwidth_gbs"]["1"]["bandwidth"] > 0
    _check_memory(text, data, expect_torch, ("fwd", "bwd_data", "bwd_weight"))


def _check_memory(text, data, expect_torch, ops):
    """The extra-memory table (on by default): one row per conv cell, in the markdown report
    and the JSON; the NumPy baseline's extra memory covers at least its im2col buffer."""
    from fastconv._bench import memory
    if memory.supported() is not None:
        assert "extra memory: n/a" in text
        return
    assert "## Extra memory per conv call" in text and "| case | op | im2col MiB |" in text
    mem = data["memory"]
    assert mem["threads"] == 1 and mem["limit_fraction"] == 0.25
    assert [(r["case"], r["op"]) for r in mem["rows"]] == [("lenet_conv2", o) for o in ops]
    want = {"fastconv", "fastconv_nhwc", "numpy"} | ({"torch"} if expect_torch else set())
    for r in mem["rows"]:
        assert set(r["extra_bytes"]) == want and not r["errors"], r["errors"]
        assert r["im2col_bytes"] == 16 * 6 * 5 * 5 * 10 * 10 * 4      # quick: N = 64 / 4
        assert r["extra_bytes"]["numpy"] >= r["im2col_bytes"]
        assert r["fraction"]["fastconv"] is not None


def test_bench_report_json_plot(tmp_path):
    plot = _have("matplotlib")
    args = BENCH_SMALL + ["--report", "r.md", "--json", "r.json"] + (["--plot", "r.png"]
                                                                      if plot else [])
    proc = _ok(fastconv_cli(args, tmp_path))
    assert "lenet_conv2" in proc.stdout and "report written" in proc.stdout
    _check_report(tmp_path, proc, expect_torch=_have("torch"))
    if plot:
        assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC


def test_bench_without_torch_and_tqdm(tmp_path):
    args = BENCH_SMALL + ["--ops", "fwd", "--report", "r.md", "--json", "r.json"]
    proc = _ok(fastconv_cli(args, tmp_path, hide=("torch", "tqdm")))
    assert "torch is not installed" in proc.stdout
    assert "fastconv bench: [" in proc.stderr           # the plain progress counter
    data = json.loads((tmp_path / "r.json").read_text())
    assert {r["case"] for r in data["rows"]} == {"lenet_conv2", "globalavg_512@7"}
    assert all(set(r["ms"]) == {"fastconv", "fastconv_nhwc", "numpy"} for r in data["rows"])
    _check_memory((tmp_path / "r.md").read_text(), data, False, ("fwd",))


def test_bench_float64_no_probe(tmp_path):
    args = ["bench", "--quick", "--threads", "1", "--layers", "lenet_conv1", "--ops", "fwd",
            "--dtype", "float64", "--repeats", "3", "--no-probe", "--against", "numpy",
            "--json", "r.json", "--no-memory"]
    proc = _ok(fastconv_cli(args, tmp_path))
    data = json.loads((tmp_path / "r.json").read_text())
    (row,) = data["rows"]
    assert row["dtype"] == "float64" and not row["errors"] and row["pct_of_peak"] is None
    assert data["memory"] is None and "Extra memory" not in proc.stdout


def test_bench_errors(tmp_path):
    proc = fastconv_cli(["bench", "--layers", "no_such_layer"], tmp_path)
    assert proc.returncode == 2 and "no_such_layer" in proc.stderr
    proc = fastconv_cli(["bench", "--against", "tensorflow"], tmp_path)
    assert proc.returncode != 0 and "tensorflow" in proc.stderr
    proc = fastconv_cli(["bench", "--threads", "0"], tmp_path)
    assert proc.returncode != 0 and "--threads" in proc.stderr
    proc = fastconv_cli(BENCH_SMALL + ["--plot", "r.png"], tmp_path, hide=("matplotlib",))
    assert proc.returncode == 2 and 'pip install "fastconv[bench]"' in proc.stderr
    assert not (tmp_path / "r.png").exists()


# ------------------------------------------------------------------------------------ demo
def test_demo_smoke(tmp_path):
    pytest.importorskip("sklearn")
    plot = _have("matplotlib")
    args = ["demo", "--epochs", "1", "--limit", "200", "--batch-size", "16", "--threads", "1",
            "--compare-numpy", "--seed", "3"] + (["--plot", "c.png"] if plot else [])
    proc = _ok(fastconv_cli(args, tmp_path))
    out = proc.stdout
    assert "epoch  1/1" in out and "img/s" in out
    assert "test accuracy:" in out and "/40 held-out" in out
    assert "NumPy im2col" in out and "faster" in out
    if plot:
        assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC


def test_demo_missing_dependencies(tmp_path):
    proc = fastconv_cli(["demo", "--epochs", "1"], tmp_path, hide=("sklearn",))
    assert proc.returncode == 2
    assert "scikit-learn" in proc.stderr and 'pip install "fastconv[demo]"' in proc.stderr
    proc = fastconv_cli(["demo", "--epochs", "1", "--plot", "c.png"], tmp_path,
                        hide=("matplotlib",))
    assert proc.returncode == 2 and 'pip install "fastconv[demo]"' in proc.stderr
    proc = fastconv_cli(["demo", "--epochs", "0"], tmp_path)
    assert proc.returncode == 2 and "--epochs" in proc.stderr


# ------------------------------------------------------------------------------------ helpers
def test_progress_fallback_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    from fastconv._bench.progress import have_tqdm, progress
    assert not have_tqdm()
    buf = io.StringIO()
    with progress(total=4, desc="work", unit="cell", file=buf) as bar:
        bar.set_postfix_str("a")
        for _ in range(4):
            bar.update()
        bar.write("message")
    text = buf.getvalue()
    assert "work: [4/4]" in text and "message" in text


def test_bench_summary_and_plot_helpers(tmp_path):
    from fastconv._bench import report
    from fastconv._bench.compare import Row
    rows = [Row("r3x3_64@56", "conv", "fwd", n, "", 1.85,
                ms={"fastconv": 10.0 / n, "fastconv_nhwc": 12.0 / n, "numpy": 30.0, "torch": 20.0})
            for n in (1, 2)]
    limits = {"conv": {1: 100.0, 2: 200.0}}
    assert report.pct_of_limit(rows[0], "fastconv", limits) == pytest.approx(185.0)
    lines = report.summary_lines(rows, limits)
    assert any("geomean ratio 2.00x" in s for s in lines)
    assert any("2 vs 1 thread(s)" in s and "2.00" in s for s in lines)
    md = report.markdown_table(rows, limits, True)
    assert md.count("\n") == 4 and "2.00x" in md and "185 %" in md
    if _have("matplotlib"):
        report.plot_ratios(rows, str(tmp_path / "p.png"), "t")
        assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC


def test_bench_quiets_idle_openblas_threads(tmp_path):
    """From the command line, bench re-executes itself with OPENBLAS_THREAD_TIMEOUT set (idle
    OpenBLAS threads would otherwise spin on the cores the next candidate is timed on) and says
    so in its header; FASTCONV_BENCH_KEEP_ENV=1 keeps the environment and prints a note."""
    args = [sys.executable, "-m", "fastconv", "bench", "--quick", "--threads", "1", "--layers",
            "globalavg_512@7", "--ops", "fwd", "--repeats", "2", "--no-probe", "--no-memory",
            "--against", "numpy"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT",
                        "FASTCONV_BENCH_KEEP_ENV", "FASTCONV_BENCH_QUICK")}
    proc = _ok(subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=240))
    assert "OpenBLAS idle threads: OPENBLAS_THREAD_TIMEOUT=4" in proc.stdout, proc.stdout
    proc = _ok(subprocess.run(args, cwd=tmp_path, env=dict(env, FASTCONV_BENCH_KEEP_ENV="1"),
                              capture_output=True, text=True, timeout=240))
    assert "NOTE: OPENBLAS_THREAD_TIMEOUT is not set" in proc.stdout, proc.stdout
