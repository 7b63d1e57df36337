"""Command line: ``python -m fastconv {info,bench,demo}`` (also the ``fastconv`` console script).

    python -m fastconv info                 # build and run-time configuration (show_config)
    python -m fastconv bench --quick --report r.md --plot r.png
    python -m fastconv demo [--epochs N] [--plot curves.png] [--compare-numpy]

Each command registers in COMMANDS as (help, add_arguments(parser), run(args) -> exit code).
Only the chosen command's module is imported (``info`` never imports torch or scikit-learn).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence


def _info(args) -> int:
    from . import show_config
    show_config()
    return 0


def _bench_arguments(p: argparse.ArgumentParser) -> None:
    from ._bench.report import add_arguments
    add_arguments(p)


def _bench(args) -> int:
    from ._bench.report import run
    return run(args)


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    from ._demo import add_arguments
    add_arguments(p)


def _demo(args) -> int:
    from ._demo import run
    return run(args)


# name -> (help, add_arguments(parser), run(args) -> exit code)
COMMANDS = {
    "info": ("print the build and run-time configuration", lambda p: None, _info),
    "bench": ("benchmark fastconv against NumPy (im2col) and PyTorch on the ANCHORS layer suite",
              _bench_arguments, _bench),
    "demo": ("train a LeNet-style CNN (fastconv.nn) on scikit-learn's digits",
             _demo_arguments, _demo),
}


def _chosen(argv: Sequence[str]) -> Optional[str]:
    """The command named in argv (the first argument that is not an option), if any."""
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's options are added (the others' modules
    stay unimported)."""
    parser = argparse.ArgumentParser(prog="python -m fastconv",
                                     description="fastconv command line",
                                     epilog="`python -m fastconv COMMAND -h` for a command's "
                                            "options")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or only == name:
            add_arguments(p)
        p.set_defaults(run=run)
    return parser


def _quiet_blas_reexec(argv_list: List[str]) -> None:
    """From the command line, `bench` re-executes itself once with OpenBLAS's thread timeout set
    (read only when OpenBLAS loads, which importing fastconv already did): otherwise idle
    OpenBLAS threads spin after every NumPy GEMM on the cores the next candidate is timed on
    (see fastconv._bench.runtime). FASTCONV_BENCH_KEEP_ENV=1, or a timeout already set, skips it."""
    from ._bench.runtime import BLAS_TIMEOUT_VARS, QUIET_BLAS_TIMEOUT
    if (_chosen(argv_list) != "bench" or os.name != "posix" or
            any(os.environ.get(v) for v in BLAS_TIMEOUT_VARS) or
            os.environ.get("FASTCONV_BENCH_KEEP_ENV")):
        return
    env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT=QUIET_BLAS_TIMEOUT)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "fastconv"] + argv_list, env)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _quiet_blas_reexec(argv_list)
    # only the chosen command's options (none for `python -m fastconv -h`)
    args = build_parser(_chosen(argv_list) or "").parse_args(argv_list)
    args.argv = argv_list
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
