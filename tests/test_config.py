"""Introspection and the test hooks the rest of the suite relies on: config() / show_config(),
available_isas() / isa(), conv_algorithms() / conv_algorithm(), FASTCONV_ISA, and that importing
fastconv leaves the floating-point environment alone (BAD_INPUTS 20)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv
import fastconv._testing as T


def test_config_and_show_config(capsys):
    cfg = fastconv.config()
    assert isinstance(cfg, dict)
    assert cfg["isa"] in T.available_isas()
    fastconv.show_config()
    out = capsys.readouterr().out
    assert cfg["isa"] in out


def test_available_isas_and_isa_context():
    isas = T.available_isas()
    assert "scalar" in isas and len(set(isas)) == len(isas)
    before = fastconv.config()["isa"]
    for name in isas:
        with T.isa(name):
            assert fastconv.config()["isa"] == name
        assert fastconv.config()["isa"] == before
    with pytest.raises(ValueError):
        with T.isa("no-such-isa"):
            pass
    assert fastconv.config()["isa"] == before


def test_isa_cannot_be_raised_above_the_cpu():
    for name in ("scalar", "avx2", "avx512", "neon"):
        if name in T.available_isas():
            continue
        with pytest.raises(ValueError):
            with T.isa(name):
                pass


def test_conv_algorithms_context():
    algos = T.conv_algorithms()
    assert len(algos) >= 1
    for a in algos:
        with T.conv_algorithm(a):
            y = fastconv.conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), padding=1)
        assert y[0, 0, 2, 2] == 18 and y[0, 0, 0, 0] == 8
    with pytest.raises(ValueError):
        with T.conv_algorithm("no-such-algorithm"):
            pass


def test_env_forces_scalar():
    code = "import fastconv; print(fastconv.config()['isa'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, FASTCONV_ISA="scalar"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "scalar"


def test_import_does_not_flush_subnormals():
    code = ("import numpy as np\n"
            "a = np.float32(1e-39) / np.float32(10)\n"
            "import fastconv\n"
            "x = np.full((1, 1, 2, 2), 1e-40, np.float32)\n"
            "y = fastconv.conv2d(x, np.ones((1, 1, 1, 1), np.float32))\n"
            "b = np.float32(1e-39) / np.float32(10)\n"
            "print(a != 0, b != 0, bool((y == x).all()), np.float64(5e-324) / 1 != 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True"] * 4
