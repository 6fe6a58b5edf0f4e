"""A restricted unpickler for numpy-only pickles (DeepMind's I3D weights and similar).

Python's pickle runs whatever callables a file names, so a weights file must never be opened with
``pickle.load``. :func:`load_numpy_pickle` admits only what numpy needs to rebuild arrays
(``_reconstruct``, ``ndarray``, ``dtype``, ``scalar``, ``_frombuffer``), ``_codecs.encode`` (protocol 2
stores array bytes through it) and ``collections.OrderedDict``; dicts, lists, tuples, strings and
numbers need no global at all. Any other global — ``os.system``, ``builtins.eval``, a class of some
package — stops the load with a :class:`~actionrec.errors.WeightsError` before anything is called.
Arrays of Python objects are refused too, since their items could smuggle other objects in.
"""

from __future__ import annotations

import _codecs
import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.errors import WeightsError

try:  # numpy >= 2 keeps the implementation in numpy._core; numpy.core is a deprecated alias
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs.encode,
}
for _module in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_module}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(f"{_module}.multiarray", "scalar")] = _multiarray.scalar
    _ALLOWED[(f"{_module}.numeric", "_frombuffer")] = _numeric._frombuffer


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


def _check_arrays(obj: Any, where: str = "") -> None:
    """Refuse object arrays anywhere in the loaded tree."""
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise WeightsError(f"array {where or '<root>'} holds Python objects; only numeric arrays are allowed")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_arrays(v, f"{where}/{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_arrays(v, f"{where}/{i}")


def loads_numpy_pickle(data: bytes, *, name: str = "<bytes>") -> Any:
    """Unpickle ``data`` admitting numpy arrays and plain containers only."""
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except RefusedGlobal as e:
        raise WeightsError(
            f"{name}: refused to unpickle: it references {e}, and only numpy arrays are allowed"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise WeightsError(
            f"{name}: truncated or not a pickle of numpy arrays ({type(e).__name__}: {e})"
        ) from None
    _check_arrays(obj)
    return obj


def load_numpy_pickle(path: str | Path) -> Any:
    """Read a pickle file of numpy arrays in (possibly nested) dicts/lists; see :func:`loads_numpy_pickle`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from None
    return loads_numpy_pickle(data, name=str(path))
