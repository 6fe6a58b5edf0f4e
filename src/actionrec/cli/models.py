"""``actionrec models``: every registered model, measured parameters and GMACs beside the published ones.

The measuring is :func:`actionrec.models.complexity.measure_models`; this module parses the arguments
and prints the reports as a table or JSON.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from actionrec.errors import ActionrecError
from actionrec.models.complexity import (
    ModelReport,
    build_for_counting,  # noqa: F401  (re-exported for existing importers)
    input_for_spec,  # noqa: F401  (re-exported)
    measure_models,
    measurement_spec,  # noqa: F401  (re-exported)
    num_classes_for,  # noqa: F401  (re-exported)
)
from actionrec.models.registry import list_models


def _fmt(v: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{suffix}"


_COLUMNS = ("model", "params(M)", "published", "diff", "GMACs", "published", "diff", "input", "top-1")


def _row(r: ModelReport) -> tuple[str, ...]:
    top1 = _fmt(r.published_top1, ".1f") + (f" {r.published_dataset}" if r.published_top1 else "")
    return (
        r.name,
        _fmt(r.params_m, ".3f"),
        _fmt(r.published_params_m),
        _fmt(r.params_diff_pct, "+.1f", "%"),
        _fmt(r.gmacs),
        _fmt(r.published_gmacs),
        _fmt(r.gmacs_diff_pct, "+.1f", "%"),
        r.input,
        top1,
    )


def format_table(reports: list[ModelReport]) -> str:
    """Aligned columns, one model a line; a model that could not be measured gets its error instead."""
    rows = [_COLUMNS] + [_row(r) for r in reports if not r.error]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    left = {0, 7, 8}
    lines = [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
    lines += [f"{r.name.ljust(widths[0])}  error: {r.error}" for r in reports if r.error]
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models",
        help="list models: measured vs published params and GMACs",
        description="List every registered model with its measured parameters (millions) and GMACs, "
        "beside the numbers its paper publishes and the input they refer to.",
        epilog="example:\n  actionrec models 'r2plus1d*'\n  actionrec models --json > models.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: every model)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return p


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise ActionrecError(f"no model matches {args.pattern!r}; run `actionrec models` to list them")
    reports = measure_models(names)
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        print(format_table(reports))
    return 1 if any(r.error for r in reports) else 0
