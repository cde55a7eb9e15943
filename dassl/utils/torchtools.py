"""Checkpoints, pretrained weights and random-generator states.

Checkpoints hold only tensors and plain Python values, so ``torch.load(weights_only=True)`` reads
them; they are written to a temporary file and renamed, so a crash never leaves a truncated file.
Dassl checkpoints written by other forks, which pickle whole Python objects (a warm-up scheduler
holding its successor and optimizer, NumPy scalars), are still readable: see ``load_checkpoint``.
"""

import os.path as osp
import pickle
import random
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from .tools import atomic_write, mkdir_if_missing

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "resume_from_checkpoint",
    "restore_training_state",
    "load_pretrained_weights",
    "get_rng_state",
    "set_rng_state",
    "count_num_param",
    "tolist_if_not",
]

_PLAIN_SCALARS = (int, float, str, bool, bytes, type(None))


def _check_plain(obj: Any, where: str) -> None:
    """Raise a ``TypeError`` naming the offending entry unless ``obj`` is made of tensors and
    plain Python values (what ``torch.load(weights_only=True)`` accepts). Subclasses such as
    ``numpy.float64`` (a float subclass) or ``defaultdict`` are refused."""
    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN_SCALARS:
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            _check_plain(k, f"{where} (a key)")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple, torch.Size):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"Cannot save checkpoint: {where} is a {type(obj).__module__}.{type(obj).__qualname__}. "
        "Checkpoints hold only tensors and plain Python values (int, float, str, bool, None, "
        "lists, tuples, dicts) so that torch.load(weights_only=True) can read them; convert it "
        "(e.g. float(x) for a NumPy scalar, a state_dict() for an object)."
    )


def tolist_if_not(x: Any) -> list:
    """Wrap ``x`` in a list unless it is one."""
    if not isinstance(x, list):
        x = [x]
    return x


def save_checkpoint(
    state: dict[str, Any],
    save_dir: str,
    is_best: bool = False,
    remove_module_from_keys: bool = True,
    model_name: str = "",
) -> str:
    """Save ``state`` to ``<save_dir>/<model_name>`` (default ``model.pth.tar-<state["epoch"]>``).

    The file is written atomically. When the default epoch name is used, the text file
    ``<save_dir>/checkpoint`` is updated to name it (Dassl's pointer to the latest checkpoint).
    With ``is_best``, a copy is also written to ``model-best.pth.tar``.

    Args:
        state: ``state_dict``, ``epoch`` (1-based), ``optimizer``, ``scheduler``, ``val_result``
            and any other entries; only tensors and plain Python values are accepted.
        save_dir: folder of the model (``<output>/<model name>``).
        is_best: also save as ``model-best.pth.tar``.
        remove_module_from_keys: strip the ``module.`` prefix that ``DataParallel`` adds.
        model_name: file name; default ``model.pth.tar-<epoch>``.

    Returns:
        The path of the saved file.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state["state_dict"] = OrderedDict(
            (k[7:] if k.startswith("module.") else k, v) for k, v in state["state_dict"].items()
        )
    _check_plain(state, "state")

    epoch_file = not model_name
    if epoch_file:
        model_name = f"model.pth.tar-{state['epoch']}"
    fpath = osp.join(save_dir, model_name)
    atomic_write(fpath, lambda f: torch.save(state, f))
    print(f'Checkpoint saved to "{fpath}"')

    if epoch_file:
        pointer = f"{model_name}\n".encode()
        atomic_write(osp.join(save_dir, "checkpoint"), lambda f: f.write(pointer))

    if is_best:
        best_fpath = osp.join(save_dir, "model-best.pth.tar")
        atomic_write(best_fpath, lambda f: torch.save(state, f))
        print(f'Best checkpoint saved to "{best_fpath}"')
    return fpath


def _corrupt_checkpoint_error(fpath: str, error: BaseException) -> RuntimeError:
    return RuntimeError(
        f'Cannot read checkpoint "{fpath}": the file is truncated or corrupt '
        f"({type(error).__name__}: {error}). Delete it and run the same command again: training "
        "resumes from the newest remaining checkpoint of that folder, or from scratch if none is "
        "left."
    )


def _empty_dict(*args: Any) -> dict:
    """Stand-in for ``collections.defaultdict(factory)``: a plain dict (filled by the unpickler)."""
    return {}


def _legacy_globals(names: list[str]) -> tuple[list[tuple[Any, str]], list[str]]:
    """Stand-ins for the Python objects pickled in a legacy checkpoint, and the names replaced by
    placeholders.

    NumPy scalars and dtypes are rebuilt for real (Dassl forks store ``val_result`` as a NumPy
    float), a ``defaultdict`` (an optimizer's ``state``) becomes a dict; every other object
    (optimizer, scheduler, ...) becomes an inert placeholder that only keeps its pickled state,
    so no code of the checkpoint is ever run.
    """
    rebuilt = {
        "numpy.core.multiarray.scalar": np._core.multiarray.scalar,
        "numpy._core.multiarray.scalar": np._core.multiarray.scalar,
        "numpy.dtype": np.dtype,
        "collections.defaultdict": _empty_dict,
        "builtins.dict": dict,
        "builtins.list": list,
    }
    resolved, placeholders = [], []
    for name in names:
        dtype_name = name.rsplit(".", 1)[-1]
        if name in rebuilt:
            resolved.append((rebuilt[name], name))
        elif name.startswith("numpy.dtypes.") and hasattr(np.dtypes, dtype_name):
            resolved.append((getattr(np.dtypes, dtype_name), name))
        else:
            resolved.append((_make_placeholder(name), name))
            placeholders.append(name)
    if "numpy.dtype" in names:  # numpy.dtype(...) returns instances of numpy.dtypes.*DType
        for dtype_name in dir(np.dtypes):
            dtype_cls = getattr(np.dtypes, dtype_name)
            if isinstance(dtype_cls, type) and dtype_name.endswith("DType"):
                resolved.append((dtype_cls, f"numpy.dtypes.{dtype_name}"))
    return resolved, placeholders


def _make_placeholder(qualname: str) -> type:
    """A class that accepts any constructor arguments and keeps any pickled state."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {qualname}>"

    return type(
        qualname.rsplit(".", 1)[-1],
        (),
        {
            "__new__": __new__,
            "__init__": __init__,
            "__setstate__": __setstate__,
            "__repr__": __repr__,
            "legacy_qualname": qualname,
        },
    )


def _to_plain_values(obj: Any) -> Any:
    """Turn NumPy scalars into Python numbers (recursively in dicts and lists)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, _to_plain_values(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_to_plain_values(v) for v in obj]
    return obj


def load_checkpoint(fpath: str) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``torch.load(weights_only=True)``.

    A checkpoint of another Dassl fork that pickles Python objects is loaded without running any
    of its code: NumPy scalars become Python numbers, other objects (e.g. a pickled scheduler)
    become inert placeholders; the model weights (``state_dict``) load as usual, and a warning
    says that optimizer/scheduler states of such a file cannot be resumed.

    Raises:
        FileNotFoundError: no file at ``fpath``.
        RuntimeError: the file is truncated or corrupt (the message names it and says what to do).
    """
    if fpath is None:
        raise ValueError("load_checkpoint(): the file path is None")
    if not osp.exists(fpath):
        raise FileNotFoundError(f'Checkpoint file not found at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file can fail in any of the unpickler's steps
        if not (isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in str(e)):
            raise _corrupt_checkpoint_error(fpath, e) from e
        weights_only_error = e

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(fpath)
    except Exception as e:
        raise _corrupt_checkpoint_error(fpath, e) from weights_only_error
    if not names:  # nothing foreign in it: the pickle itself is damaged
        raise _corrupt_checkpoint_error(fpath, weights_only_error)
    safe_globals, placeholders = _legacy_globals(names)
    try:
        with torch.serialization.safe_globals(safe_globals):
            checkpoint = torch.load(fpath, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(
            f'Cannot read checkpoint "{fpath}" safely ({type(e).__name__}: {e}). If the file is '
            "corrupt, delete it; if it comes from another code base, load it there and re-save "
            "only its state_dict (tensors) with torch.save."
        ) from weights_only_error
    if placeholders:
        warnings.warn(
            f'"{fpath}" pickles Python objects ({", ".join(placeholders)}); they were loaded as '
            "inert placeholders. Model weights are usable; optimizer/scheduler states of this "
            "file are not.",
            stacklevel=2,
        )
    return _to_plain_values(checkpoint)


def restore_training_state(
    checkpoint: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> int:
    """Load the weights, optimizer and scheduler states of a loaded checkpoint; return its epoch
    (the number of finished epochs)."""
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def resume_from_checkpoint(
    fdir: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> int:
    """Resume from the checkpoint named in ``<fdir>/checkpoint``: restore the weights, optimizer,
    scheduler and (when saved) the random-generator states; return the epoch to start from."""
    pointer = osp.join(fdir, "checkpoint")
    if not osp.isfile(pointer):
        raise FileNotFoundError(
            f'No "checkpoint" file in "{fdir}" naming the latest checkpoint; pass the folder of '
            "a model (<output>/<model name>) saved by this engine."
        )
    with open(pointer) as f:
        fpath = osp.join(fdir, f.readline().strip())
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    start_epoch = restore_training_state(checkpoint, model, optimizer, scheduler)
    if checkpoint.get("rng_state") is not None:
        set_rng_state(checkpoint["rng_state"])
    return start_epoch


def load_pretrained_weights(model: nn.Module, weight_path: str) -> None:
    """Load the weights of ``weight_path`` whose names and shapes match ``model``'s; the others
    are discarded (and listed)."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint["state_dict"] if "state_dict" in checkpoint else checkpoint
    model_dict = model.state_dict()
    new_state_dict = OrderedDict()
    matched_layers, discarded_layers = [], []
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k[7:]
        if k in model_dict and model_dict[k].size() == v.size():
            new_state_dict[k] = v
            matched_layers.append(k)
        else:
            discarded_layers.append(k)
    model_dict.update(new_state_dict)
    model.load_state_dict(model_dict)
    if not matched_layers:
        warnings.warn(
            f'Cannot load "{weight_path}" (no key matches; check the key names)', stacklevel=2
        )
    else:
        print(f'Successfully loaded pretrained weights from "{weight_path}"')
        if discarded_layers:
            print(f"Layers discarded due to unmatched keys or size: {discarded_layers}")


def get_rng_state() -> dict[str, Any]:
    """States of Python's ``random``, NumPy's global generator and torch (CPU, and CUDA when
    initialised), as tensors and plain values (loadable with ``weights_only=True``)."""
    version, internal, gauss_next = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_cached_gaussian = np.random.get_state()
    state = {
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),  # (625,)
            "gauss_next": gauss_next,
        },
        "numpy": {
            "keys": torch.from_numpy(np_keys.astype(np.int64)),  # (624,)
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states saved by ``get_rng_state``. CUDA states are restored only when
    the same number of GPUs is visible."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if cuda_states is not None and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            warnings.warn(
                f"The checkpoint holds CUDA generator states of {len(cuda_states)} GPUs but "
                f"{torch.cuda.device_count()} are visible; CUDA generators are not restored.",
                stacklevel=2,
            )


def count_num_param(model: nn.Module | None = None, params: Any = None) -> int:
    """Number of elements of ``model``'s parameters (or of the iterable ``params``)."""
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        return sum(p.numel() for p in params)
    raise ValueError("count_num_param(): pass a model or an iterable of parameters")
