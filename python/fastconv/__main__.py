"""Command line: ``python -m fastconv info`` (bench and demo plug in through COMMANDS)."""
from __future__ import annotations

import argparse
import sys


def _info(args) -> int:
    from . import show_config
    show_config()
    return 0


# name -> (help, add_arguments(parser), run(args) -> exit code). Later commands (bench, demo)
# register here.
COMMANDS = {
    "info": ("print the build and run-time configuration", lambda p: None, _info),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fastconv",
                                     description="fastconv command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
