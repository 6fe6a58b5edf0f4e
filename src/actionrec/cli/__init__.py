"""The ``actionrec`` command line.

Each sub-command lives in its own module of this package with two functions::

    def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser: ...
    def run(args: argparse.Namespace) -> int: ...

Any :class:`~actionrec.errors.ActionrecError` that escapes ``run`` becomes one line on stderr and
exit code 2; so do argparse's usage errors. Tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from actionrec.errors import ActionrecError

COMMANDS = (
    "synth",
    "demo",
    "train",
    "test",
    "predict",
    "probe",
    "flow",
    "boxes",
    "motion",
    "features",
    "models",
    "bench",
    "prepare",
    "export",
    "convert",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="actionrec", description="Video action recognition.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"actionrec.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"actionrec.cli.{name}":
                raise
            continue
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ActionrecError as e:
        print(f"actionrec {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"actionrec {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
