"""The attention-scheme benchmark: one row per scheme and kernel, tokens and GMACs that follow the input."""

from __future__ import annotations

import pytest

from actionrec.bench.attention import bench_scheme


@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_a_row_measures_both_passes(kernel: str) -> None:
    row = bench_scheme("joint", frames=2, size=32, width="tiny", kernel=kernel)
    assert row["tokens"] == 1 + 2 * 2 * 2 and row["input"] == "3x2x32x32"
    assert row["infer_s"] > 0 and row["train_s"] > 0
    assert row["infer_peak_mb"] >= 0 and row["train_peak_mb"] >= 0


def test_joint_cost_grows_faster_than_divided_with_the_clip() -> None:
    """Joint attention's N² term: doubling the frames more than doubles its multiply-adds, while the
    divided scheme's grow about linearly."""
    joint = [bench_scheme("joint", frames=t, size=64, width="tiny")["gmacs"] for t in (4, 8)]
    divided = [bench_scheme("divided", frames=t, size=64, width="tiny")["gmacs"] for t in (4, 8)]
    assert joint[1] / joint[0] > divided[1] / divided[0] > 1.9
