"""Run every benchmark suite and write the JSON the README's tables come from.

    python benchmarks/run_all.py --out benchmarks/results.json [--models 'r2plus1d*'] [more bench flags]

A thin wrapper over ``actionrec bench --json`` (see ``actionrec bench --help``) so that a run is one
command and its raw output is kept next to the code that produced it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

from actionrec.cli import main


def run() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    args, rest = parser.parse_known_args()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["bench", "--json", *rest])
    args.out.write_text(buffer.getvalue())
    print(f"wrote {args.out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(run())
