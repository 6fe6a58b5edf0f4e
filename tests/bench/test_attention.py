"""The attention-scheme benchmark: a row per scheme and kernel, and multiply-adds that follow the clip."""

from __future__ import annotations

from actionrec.bench.attention import bench_scheme, scheme_gmacs


def test_a_row_measures_both_passes_in_fresh_processes() -> None:
    row = bench_scheme("joint", frames=2, size=32, width="tiny", kernel="math")
    assert row["tokens"] == 1 + 2 * 2 * 2 and row["input"] == "3x2x32x32" and row["kernel"] == "math"
    assert row["infer_s"] > 0 and row["train_s"] > 0
    assert row["train_peak_mb"] > 0  # a training step keeps activations for the backward pass


def test_joint_cost_grows_faster_than_divided_with_the_clip() -> None:
    """Joint attention's N² term: doubling the frames more than doubles its multiply-adds, while the
    divided scheme's grow about linearly."""
    joint = [scheme_gmacs("joint", frames=t, size=64, width="tiny")[0] for t in (4, 8)]
    divided = [scheme_gmacs("divided", frames=t, size=64, width="tiny")[0] for t in (4, 8)]
    assert joint[1] / joint[0] > divided[1] / divided[0] > 1.9
