"""The restricted unpickler: numpy arrays in plain containers load; anything else is refused unexecuted."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from actionrec.errors import WeightsError
from actionrec.models.i3d import I3D
from actionrec.weights import load_weights
from actionrec.weights.safe_pickle import load_numpy_pickle, loads_numpy_pickle


class _Exploit:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return eval, ("1 + 1",)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_nested_numpy_tree_round_trips(protocol: int) -> None:
    tree = {
        "params": {"a/b": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.float32(2.5)},
        "stats": [np.zeros((1, 1, 4)), (np.int64(3), "text", 1.5, None, True)],
    }
    out = loads_numpy_pickle(pickle.dumps(tree, protocol=protocol))
    np.testing.assert_array_equal(out["params"]["a/b"], tree["params"]["a/b"])
    assert out["params"]["n"] == np.float32(2.5) and out["stats"][1] == (3, "text", 1.5, None, True)


def test_code_in_a_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "weights.pkl"
    bad.write_bytes(pickle.dumps({"params": {"w": np.ones(3)}, "x": _Exploit(marker)}))
    with pytest.raises(WeightsError, match=r"refused to unpickle: it references (posix|nt)\.system"):
        load_numpy_pickle(bad)
    with pytest.raises(WeightsError, match="refused"):
        load_weights(I3D(num_classes=2), bad)
    assert not marker.exists()
    pickle.loads(bad.read_bytes())  # the control: a plain unpickle does run it
    assert marker.exists()


def test_builtins_and_object_arrays_are_refused() -> None:
    with pytest.raises(WeightsError, match=r"builtins\.eval"):
        loads_numpy_pickle(pickle.dumps(_Evil()))
    with pytest.raises(WeightsError, match="holds Python objects"):
        loads_numpy_pickle(pickle.dumps({"w": np.array([1, "a"], dtype=object)}))


def test_truncated_or_foreign_bytes(tmp_path: Path) -> None:
    data = pickle.dumps({"w": np.ones((64, 64), dtype=np.float32)}, protocol=4)
    with pytest.raises(WeightsError, match="truncated or not a pickle"):
        loads_numpy_pickle(data[: len(data) // 2], name="half.pkl")
    with pytest.raises(WeightsError, match=r"missing\.pkl: cannot read"):
        load_numpy_pickle(tmp_path / "missing.pkl")
