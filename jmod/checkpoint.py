"""Sharded and asynchronous checkpoints (``jmod.checkpoint``), on orbax-checkpoint.

The counterpart of ``torch.distributed.checkpoint``: state dicts in, state dicts
out. :func:`save` writes a nesting of state dicts (model, optimizer, LR scheduler,
RNG state, step, your own values) into a *directory* in which every process writes
only the shards it holds, in parallel; :func:`async_save` returns as soon as the
arrays are copied to host memory and writes in the background; :func:`load` reads
a checkpoint straight into the shardings of a target state dict, which may live on
another mesh than the one saved with (8 devices to 4, FSDP to replicated, 2
processes to 1): each process reads only the parts of the files its devices need.
:class:`CheckpointManager` numbers checkpoints by step, keeps the last N and/or the
best N by a metric, and finds the latest one to resume from.

A checkpoint is written to a temporary directory and renamed into place when every
process has finished (orbax's atomic commit): a crash mid-write leaves the previous
checkpoints intact, and the next manager removes the unfinished one.

Needs the optional dependency ``orbax-checkpoint`` (``pip install jmod[checkpoint]``).
For a single file readable by torch and safetensors, use ``jmod.save``/``jmod.load``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jmod.serialization import _NARROW, CheckpointError, _decode_tree, _encode_tree, _to_host

__all__ = ["save", "async_save", "load", "AsyncSaveHandle", "CheckpointManager", "CheckpointError"]

_FORMAT = "jmod-checkpoint-1"


def _ocp():
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "jmod.checkpoint needs orbax-checkpoint: pip install 'jmod[checkpoint]' (or orbax-checkpoint)"
        ) from e
    return ocp


def _encode(state_dict: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Arrays keyed ``a0, a1, ...`` for orbax, and the JSON description of the rest."""
    arrays: dict[str, Any] = {}
    try:
        tree = _encode_tree(state_dict, arrays, "")
    except TypeError as e:
        raise TypeError(str(e).replace("jmod.save", "jmod.checkpoint.save")) from None
    paths = list(arrays)
    items = {}
    multiprocess = jax.process_count() > 1
    for i, p in enumerate(paths):
        x = arrays[p]
        if isinstance(x, jax.Array):
            # In a multi-process run an array that lives on one process only (the RNG
            # state, a step counter) is not a global array: it is written once, from
            # process 0's copy, as a NumPy array (every process holds the same value).
            if multiprocess and x.is_fully_addressable:
                x = np.asarray(x)
        else:
            x = _to_host(x)  # NumPy arrays as they are (64-bit kept), torch tensors through NumPy
        items[f"a{i}"] = x
    meta = {
        "format": _FORMAT,
        "tree": tree,
        "paths": paths,
        "shapes": [list(np.shape(items[f"a{i}"])) for i in range(len(paths))],
        "dtypes": [str(np.dtype(items[f"a{i}"].dtype)) for i in range(len(paths))],
    }
    return items, meta


def _save_args(state_dict: Any):
    ocp = _ocp()
    items, meta = _encode(state_dict)
    if not items:  # orbax refuses an empty tree: a state of plain values has no array item
        return ocp.args.Composite(meta=ocp.args.JsonSave(meta))
    return ocp.args.Composite(arrays=ocp.args.StandardSave(items), meta=ocp.args.JsonSave(meta))


def _prepare_directory(path: str, overwrite: bool) -> str:
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"jmod.checkpoint: {path!r} already exists; pass overwrite=True to replace it (the old checkpoint is "
            "deleted before the new one is written: use a CheckpointManager to keep the last good one)"
        )
    return path


def save(state_dict: Any, checkpoint_id: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Save a (nested) state dict as a sharded checkpoint directory.

    Call it on every process of a multi-process run: each one writes the shards its
    devices hold (replicated arrays once), process 0 writes the metadata, and the
    directory appears only when all writes have finished.

    Args:
        state_dict (Any): ``model.state_dict()``, or a nesting of dicts/lists of state
            dicts, arrays, numbers, strings and ``None``, e.g. ``{"model": ..., "optim":
            opt.state_dict(), "sched": sched.state_dict(), "rng": jmod.get_rng_state(),
            "step": 10}``.
        checkpoint_id (str | os.PathLike): the checkpoint directory (created).
        overwrite (bool): replace an existing directory instead of raising ``FileExistsError``.

    Examples:
        >>> import os, tempfile, jmod
        >>> from jmod import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt")
        >>> model = nn.Linear(2, 3)
        >>> jmod.checkpoint.save({"model": model.state_dict(), "step": 5}, path)
        >>> jmod.checkpoint.load({"model": model.state_dict(), "step": 0}, path)["step"]
        5
    """
    ocp = _ocp()
    path = _prepare_directory(checkpoint_id, overwrite)
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
        ckptr.save(path, args=_save_args(state_dict), force=overwrite)


class AsyncSaveHandle:
    """A checkpoint being written in the background (returned by :func:`async_save`).

    The arrays were copied to host memory before :func:`async_save` returned, so the
    model and optimizer may be updated meanwhile. Call :meth:`result` (or
    :meth:`wait`) before relying on the files, and before the program exits.
    """

    def __init__(self, checkpointer: Any, path: str):
        import threading

        self.path = path
        self._ckptr = checkpointer
        self._error: BaseException | None = None
        self._finished = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="jmod-async-save", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        try:
            self._ckptr.wait_until_finished()
        except BaseException as e:  # handed to result()
            self._error = e
        finally:
            self._finished.set()

    def done(self) -> bool:
        """Whether the write has finished (committed or failed)."""
        return self._finished.is_set()

    def result(self, timeout: float | None = None) -> None:
        """Block until the checkpoint is committed; re-raise the writer's error, if any.

        Args:
            timeout (float | None): seconds to wait at most (``None``: no limit); raises
                ``TimeoutError`` if the write is still running then.
        """
        if not self._finished.wait(timeout):
            raise TimeoutError(f"jmod.checkpoint: {self.path!r} is still being written after {timeout} s")
        if self._ckptr is not None:
            ckptr, self._ckptr = self._ckptr, None
            ckptr.close()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    wait = result


def async_save(state_dict: Any, checkpoint_id: str | os.PathLike, *, overwrite: bool = False) -> AsyncSaveHandle:
    """Start saving a checkpoint and return while it is written (``torch.distributed.checkpoint.async_save``).

    The call blocks only while the arrays are copied from the devices to host memory
    (the time a training step stalls); the files are written by a background
    thread. Same layout, commit and multi-process rules as :func:`save`.

    Args:
        state_dict (Any): what to save (see :func:`save`).
        checkpoint_id (str | os.PathLike): the checkpoint directory (created).
        overwrite (bool): replace an existing directory.

    Returns:
        An :class:`AsyncSaveHandle`; its ``result()`` waits for the commit.
    """
    ocp = _ocp()
    path = _prepare_directory(checkpoint_id, overwrite)
    ckptr = ocp.AsyncCheckpointer(ocp.CompositeCheckpointHandler())
    try:
        ckptr.save(path, args=_save_args(state_dict), force=overwrite)
    except BaseException:
        ckptr.close()
        raise
    return AsyncSaveHandle(ckptr, path)


def _read_meta(ckptr: Any, path: str) -> dict[str, Any]:
    ocp = _ocp()
    if not os.path.isdir(os.path.join(path, "meta")):
        if not os.path.exists(path):
            raise FileNotFoundError(f"jmod.checkpoint.load: no such checkpoint: {path!r}")
        raise CheckpointError(
            f"jmod.checkpoint.load: {path!r} is not a committed jmod checkpoint directory (no 'meta'). "
            "A single file written by jmod.save is read with jmod.load."
        )
    meta = ckptr.restore(path, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise CheckpointError(f"jmod.checkpoint.load: {path!r} was not written by jmod.checkpoint.save")
    return meta


def _target_arrays(obj: Any, out: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
    """The target's arrays (and ``ShapeDtypeStruct``s) by path, as ``_encode_tree`` names them."""
    from jmod._src.arrays import is_array_like

    out = {} if out is None else out
    if isinstance(obj, jax.ShapeDtypeStruct) or is_array_like(obj):
        out[path] = obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _target_arrays(v, out, f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _target_arrays(v, out, f"{path}/{i}")
    return out


def load(state_dict: Any, checkpoint_id: str | os.PathLike) -> Any:
    """Load a checkpoint into the layout of ``state_dict`` (``torch.distributed.checkpoint.load``).

    Every array in ``state_dict`` is a *target*: the saved value at the same place
    is read directly into its sharding (and dtype), so a checkpoint saved on one
    mesh restores onto another (more or fewer devices, another sharding, another
    number of processes) and each process reads only the slices its devices hold.
    A target may also be a ``jax.ShapeDtypeStruct`` with a ``sharding`` (nothing
    allocated beforehand). Numbers, strings and lists (step, scheduler state,
    optimizer options) come from the checkpoint.

    Unlike torch, which copies into the target tensors, the loaded state dict is
    returned (JAX arrays are immutable); pass its parts to ``load_state_dict``.

    Args:
        state_dict (Any): the target, e.g. ``{"model": model.state_dict(), "optim":
            opt.state_dict(), ...}`` of a freshly built (and sharded) model; ``None``
            reads every array whole onto this process's first device.
        checkpoint_id (str | os.PathLike): the checkpoint directory.

    Returns:
        The saved structure with arrays placed as in ``state_dict``.

    Raises:
        FileNotFoundError: if the directory does not exist.
        CheckpointError: if it is not a committed jmod checkpoint, or its arrays do
            not match the target's names or shapes.
    """
    ocp = _ocp()
    path = os.path.abspath(os.fspath(checkpoint_id))
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
        meta = _read_meta(ckptr, path)
        paths, shapes, dtypes = meta["paths"], meta["shapes"], meta["dtypes"]
        targets = {} if state_dict is None else _target_arrays(state_dict)
        if state_dict is not None:
            missing = [p for p in targets if p not in set(paths)]
            unexpected = [p for p in paths if p not in targets]
            if missing or unexpected:
                raise CheckpointError(
                    f"jmod.checkpoint.load: the target does not match the checkpoint {path!r}: missing in the "
                    f"checkpoint {missing}, not in the target {unexpected} (paths are '/key/subkey')"
                )
        default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = {}
        for i, (p, shape, dtype) in enumerate(zip(paths, shapes, dtypes)):
            t = targets.get(p)
            sharding = getattr(t, "sharding", None) if isinstance(t, (jax.Array, jax.ShapeDtypeStruct)) else None
            if t is not None and tuple(np.shape(t)) != tuple(shape):
                raise CheckpointError(
                    f"jmod.checkpoint.load: size mismatch for {p!r}: copying a param with shape {tuple(shape)} "
                    f"from checkpoint, the shape in current model is {tuple(np.shape(t))}."
                )
            if t is None and np.dtype(dtype) in _NARROW and not jax.config.jax_enable_x64:
                raise CheckpointError(
                    f"jmod.checkpoint.load: {p!r} was saved as {dtype}, which JAX's 32-bit mode would change "
                    "silently; enable it (jax.config.update('jax_enable_x64', True)) or pass a target whose array "
                    "has the dtype you want"
                )
            dt = t.dtype if t is not None else np.dtype(dtype)
            abstract[f"a{i}"] = jax.ShapeDtypeStruct(tuple(shape), dt, sharding=sharding or default)
        restored = {}
        if abstract:
            restored = ckptr.restore(path, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(abstract)))["arrays"]
    arrays = {p: restored[f"a{i}"] for i, p in enumerate(paths)}
    for p, t in targets.items():
        if isinstance(t, jax.Array) and not getattr(t, "committed", True):
            # An uncommitted target (the RNG state, a fresh jnp value) stays uncommitted, so
            # that compiled steps may still move it next to a sharded model.
            arrays[p] = jax.numpy.asarray(np.asarray(arrays[p]))
    return _decode_tree(meta["tree"], arrays)


class CheckpointManager:
    """Checkpoints of a training run numbered by step: keep the last N and/or the best N, resume from the latest.

    Each :meth:`save` writes ``directory/<step>/`` (sharded, as :func:`save`),
    synchronously or in the background (``async_save=True``: the next save, or
    :meth:`wait`, waits for the previous one). Old checkpoints are deleted by the
    keep rules once a new one is committed; directories of writes that never
    finished (a killed run) are removed when a manager opens the directory.

    Args:
        directory (str | os.PathLike): where the step directories go (created).
        max_to_keep (int | None): keep the latest ``max_to_keep`` checkpoints (``None``: all).
        keep_best (int | None): also keep the ``keep_best`` best checkpoints by ``best_metric``.
        best_metric (str | None): name of the value in ``save(..., metrics=)`` that ranks checkpoints.
        mode (str): ``"min"`` (lower is better, e.g. a loss) or ``"max"``.
        async_save (bool): write in a background thread.
        save_interval_steps (int): save only steps that are multiples of this (others return ``False``).

    Examples:
        >>> import tempfile, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 2)
        >>> mgr = jmod.checkpoint.CheckpointManager(tempfile.mkdtemp(), max_to_keep=2)
        >>> for step in range(1, 4):
        ...     _ = mgr.save(step, {"model": model.state_dict(), "step": step})
        >>> mgr.all_steps(), mgr.latest_step()
        ([2, 3], 3)
        >>> mgr.restore(None, {"model": model.state_dict(), "step": 0})["step"]
        3
        >>> mgr.close()
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        max_to_keep: int | None = None,
        keep_best: int | None = None,
        best_metric: str | None = None,
        mode: str = "min",
        async_save: bool = False,
        save_interval_steps: int = 1,
    ):
        ocp = _ocp()
        from orbax.checkpoint import checkpoint_managers as cm

        if mode not in ("min", "max"):
            raise ValueError(f"mode should be 'min' or 'max', got {mode!r}")
        if (keep_best is None) != (best_metric is None):
            raise ValueError("keep_best and best_metric go together: keep the keep_best best checkpoints by best_metric")
        self.directory = os.path.abspath(os.fspath(directory))
        self.best_metric = best_metric
        self.mode = mode
        self.save_interval_steps = save_interval_steps
        policies = []
        if max_to_keep is not None:
            policies.append(cm.LatestN(n=max_to_keep))
        if keep_best is not None:
            policies.append(
                cm.BestN(
                    get_metric_fn=self._metric,
                    reverse=mode == "min",
                    n=keep_best,
                    keep_checkpoints_without_metrics=False,
                )
            )
        policy = None if not policies else policies[0] if len(policies) == 1 else cm.AnyPreservationPolicy(policies)
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
            preservation_policy=policy,
            # best_fn makes orbax store each checkpoint's metrics (and rank by them)
            best_fn=self._metric if best_metric is not None else None,
            best_mode=mode,
        )
        self._mgr = ocp.CheckpointManager(self.directory, options=options)

    def _metric(self, metrics: Mapping[str, Any]) -> float:
        return float(metrics[self.best_metric])

    def save(self, step: int, state_dict: Any, *, metrics: Mapping[str, float] | None = None, force: bool = False) -> bool:
        """Save ``state_dict`` as checkpoint ``step``.

        Args:
            step (int): the step number (increasing).
            state_dict (Any): what to save (see :func:`jmod.checkpoint.save`).
            metrics (Mapping[str, float] | None): values for ``best_metric`` (stored with the checkpoint).
            force (bool): save even if ``step`` is not a multiple of ``save_interval_steps``.

        Returns:
            Whether a checkpoint was started.
        """
        if self.best_metric is not None and (metrics is None or self.best_metric not in metrics):
            raise ValueError(f"CheckpointManager keeps the best by {self.best_metric!r}: pass metrics={{...}} with it")
        if not force and int(step) % self.save_interval_steps:
            return False
        metrics = None if metrics is None else {k: float(v) for k, v in metrics.items()}
        return bool(self._mgr.save(int(step), args=_save_args(state_dict), metrics=metrics, force=force))

    def restore(self, step: int | None, state_dict: Any) -> Any:
        """Load checkpoint ``step`` (``None``: the latest) into the layout of ``state_dict``.

        Args:
            step (int | None): which checkpoint; ``None`` for :meth:`latest_step`.
            state_dict (Any): the target (see :func:`jmod.checkpoint.load`).

        Returns:
            The loaded state dict.
        """
        self.wait()
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"CheckpointManager: no checkpoint in {self.directory!r}")
        return load(state_dict, os.path.join(self.directory, str(int(step))))

    def latest_step(self) -> int | None:
        """The newest committed step, or ``None``."""
        return self._mgr.latest_step()

    def best_step(self) -> int | None:
        """The best committed step by ``best_metric``, or ``None``."""
        if self.best_metric is None:
            raise ValueError("best_step needs a CheckpointManager built with best_metric")
        return self._mgr.best_step()

    def all_steps(self) -> list[int]:
        """The committed steps kept, oldest first."""
        return sorted(self._mgr.all_steps())

    def wait(self) -> None:
        """Block until a background save has been committed."""
        self._mgr.wait_until_finished()

    def close(self) -> None:
        """Wait for pending writes and release the manager's threads."""
        self._mgr.close()

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

