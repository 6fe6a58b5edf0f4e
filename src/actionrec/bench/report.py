"""Plain-text tables for benchmark results (what the README shows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str = "") -> str:
    """A GitHub-markdown table of ``rows`` restricted to ``columns``."""
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)
    ]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)


def pivot_models(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, pass): clips/s in each mode side by side, peak MB and ours / reference in fp32."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        row = out.setdefault(
            (r["model"], r["pass"]), {"model": r["model"], "pass": r["pass"], "input": r["input"]}
        )
        row[r["mode"]] = r["clips_per_s"]
        if r["mode"] == "fp32":
            row["peak_mb (fp32)"] = r["peak_mb"]
            row["ours / torchvision (fp32)"] = r.get("ratio_vs_reference")
    return list(out.values())
