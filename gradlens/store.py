"""The run store: ``runs/<id>/grads.h5``, schema 1 (see ``docs/design.md``).

Only reads and writes. ``RunWriter`` creates or resumes a file in HDF5 SWMR mode, appends one
probe step at a time and flushes after each, so a killed probe leaves a valid file that the
same command resumes. ``Run`` reads it (also while it is being written) in chunked slices.

    python -m gradlens info runs/<id>
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from gradlens import __version__
from gradlens.errors import GradlensError
from gradlens.h5repair import clear_status_flags, superblock
from gradlens.paths import GRADS_FILE

SCHEMA = 1
_STR = h5py.string_dtype()
_REQUIRED = ("languages", "tasks", "modules/name", "modules/n_params", "modules/kind",
             "modules/exact", "sketch", "sq_norm", "loss", "steps/done")
_ATTRS = ("schema", "created", "model", "model_config", "probe_config", "sketch_dim",
          "sketch_seed", "gradlens_version")
DURATION = "duration"  # optional dataset [S, L]
# probe_config fields that may differ on resume: more steps extends a run.
_EXTENDABLE = {"steps"}


class RunError(GradlensError):
    """A run file that cannot be used, with the file and the reason in the message."""


@dataclass(frozen=True)
class ModuleTable:
    """The captured modules, in model order. Arrays have shape ``[M]``."""

    name: list[str]
    n_params: np.ndarray
    kind: list[str]
    exact: np.ndarray

    def __len__(self) -> int:
        return len(self.name)


def grads_path(run: str | Path) -> Path:
    """``run`` may be a run directory or the ``.h5`` file itself."""
    run = Path(run)
    return run if run.suffix in (".h5", ".hdf5") else run / GRADS_FILE


class RunWriter:
    """Create or resume ``grads.h5`` and append probe steps to it.

    Shapes: ``sketch`` ``[L, T, M, k]``, ``sq_norm`` ``[L, T, M]``, ``loss`` ``[L, T]`` per step.
    Holds an exclusive ``flock`` on ``grads.h5.lock`` while open, so a second writer is refused
    and stale SWMR flags left by a killed writer can be cleared safely.
    """

    def __init__(self, path: str | Path, *, languages: list[str], tasks: list[str],
                 modules: ModuleTable, sketch_dim: int, sketch_seed: int, model: str,
                 model_config: dict, probe_config: dict, dtype: str = "float16",
                 sketch_fold: int | None = None):
        self.path = grads_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _acquire_lock(self.path)
        try:
            if self.path.exists():
                self._file = self._resume(languages, tasks, modules, sketch_dim, sketch_seed,
                                          model, probe_config)
            else:
                self._file = self._create(languages, tasks, modules, sketch_dim, sketch_seed,
                                          model, model_config, probe_config, dtype,
                                          sketch_fold or sketch_dim)
        except BaseException:
            self._lock.close()
            raise
        self._done = self._file["steps/done"]

    # -- creation and resumption -------------------------------------------------------------
    def _create(self, languages, tasks, modules, k, seed, model, model_config, probe_config,
                dtype, fold) -> h5py.File:
        tmp = self.path.with_suffix(".h5.tmp")
        f = h5py.File(tmp, "w", libver="latest")
        L, T, M = len(languages), len(tasks), len(modules)
        f.attrs.update({
            "schema": SCHEMA,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": model,
            "model_config": json.dumps(model_config, sort_keys=True, default=str),
            "probe_config": json.dumps(probe_config, sort_keys=True),
            "sketch_dim": k,
            "sketch_fold": fold,
            "sketch_seed": seed,
            "gradlens_version": __version__,
        })
        f.create_dataset("languages", data=np.array(languages, dtype=object), dtype=_STR)
        f.create_dataset("tasks", data=np.array(tasks, dtype=object), dtype=_STR)
        g = f.create_group("modules")
        g.create_dataset("name", data=np.array(modules.name, dtype=object), dtype=_STR)
        g.create_dataset("n_params", data=np.asarray(modules.n_params, dtype=np.int64))
        g.create_dataset("kind", data=np.array(modules.kind, dtype=object), dtype=_STR)
        g.create_dataset("exact", data=np.asarray(modules.exact, dtype=bool))
        # Chunks follow what the pages read: one module, all languages and tasks, per step. Each
        # chunk carries a Fletcher-32 checksum (an HDF5 built-in filter any h5py reads), so a
        # damaged byte in the data is refused on reading rather than analysed.
        f.create_dataset("sketch", shape=(0, L, T, M, k), maxshape=(None, L, T, M, k),
                         chunks=(1, L, T, 1, k), dtype=dtype, fletcher32=True)
        f.create_dataset("sq_norm", shape=(0, L, T, M), maxshape=(None, L, T, M),
                         chunks=(1, L, T, M), dtype="float32", fletcher32=True)
        f.create_dataset("loss", shape=(0, L, T), maxshape=(None, L, T), chunks=(64, L, T),
                         dtype="float32", fletcher32=True)
        f.create_dataset("steps/done", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=bool,
                         fletcher32=True)
        # optional (runs made before it lack it): each language's mean audio seconds per step,
        # a nuisance the analysis checks the plan's groups against
        f.create_dataset(DURATION, shape=(0, L), maxshape=(None, L), chunks=(64, L),
                         dtype="float32", fletcher32=True)
        f.close()
        os.replace(tmp, self.path)  # a half-created file never carries the real name
        return self._open_swmr()

    def _resume(self, languages, tasks, modules, k, seed, model, probe_config) -> h5py.File:
        clear_status_flags(self.path)  # we hold the lock: any flags are a dead writer's
        run = Run(self.path)
        try:
            diffs = []
            if run.languages != list(languages):
                diffs.append(f"languages: file has {run.languages}, asked {list(languages)}")
            if run.tasks != list(tasks):
                diffs.append(f"tasks: file has {run.tasks}, asked {list(tasks)}")
            if run.sketch_dim != k:
                diffs.append(f"sketch_dim: file has {run.sketch_dim}, asked {k}")
            if run.sketch_seed != seed:
                diffs.append(f"sketch_seed: file has {run.sketch_seed}, asked {seed}")
            if run.model != model:
                diffs.append(f"model: file has {run.model!r}, asked {model!r}")
            if run.modules.name != list(modules.name):
                diffs.append("modules: the model's modules differ from the file's")
            for key in sorted(set(run.probe_config) | set(probe_config)):
                if key in _EXTENDABLE:
                    continue
                old, new = run.probe_config.get(key), probe_config.get(key)
                if key == "content_paired":  # a run made before the probe recorded it
                    old = run.content_paired
                if old != new:
                    diffs.append(f"{key}: file has {old!r}, asked {new!r}")
        finally:
            run.close()
        if diffs:
            raise RunError(f"{self.path} was made with another configuration; "
                           + "; ".join(diffs) + ". Use another output directory or the same settings.")
        f = self._open_swmr()
        return f

    def _open_swmr(self) -> h5py.File:
        f = h5py.File(self.path, "r+", libver="latest")
        f.swmr_mode = True
        return f

    # -- writing -------------------------------------------------------------------------------
    @property
    def done(self) -> np.ndarray:
        """``[S]`` bool: which step rows are complete."""
        return self._done[:]

    def first_undone(self) -> int:
        done = self.done
        missing = np.flatnonzero(~done)
        return int(missing[0]) if missing.size else int(done.size)

    def append(self, step: int, sketch: np.ndarray, sq_norm: np.ndarray, loss: np.ndarray,
               duration: np.ndarray | None = None) -> None:
        """Write step ``step`` and flush; it counts as done only once all of it is on disk.
        ``duration`` ``[L]``: each language's mean audio seconds in the step's batch (kept
        where the file has room for it: a run begun before it existed has not)."""
        f = self._file
        rows = max(step + 1, f["steps/done"].shape[0])
        names = ["sketch", "sq_norm", "loss", "steps/done"] + [DURATION] * (DURATION in f)
        for name in names:
            if f[name].shape[0] < rows:
                f[name].resize(rows, axis=0)
        f["sketch"][step] = sketch
        f["sq_norm"][step] = sq_norm
        f["loss"][step] = loss
        if DURATION in f:
            f[DURATION][step] = np.nan if duration is None else duration
        f.flush()  # the data first: a kill between the two flushes leaves the step undone
        f["steps/done"][step] = True
        f.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        self._lock.close()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def try_lock(lock_path: Path):
    """An exclusive ``flock`` on ``lock_path`` (created if missing): the open file, which holds
    the lock until closed or the process ends; ``None`` when another process holds it."""
    lock = open(lock_path, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def _acquire_lock(path: Path):
    lock = try_lock(path.with_name(path.name + ".lock"))
    if lock is None:
        raise RunError(f"{path} is being written by another probe (its lock file is held)")
    return lock


def being_written(path: str | Path) -> bool:
    """Whether a live probe holds the run's write lock (a killed one releases it)."""
    grads = grads_path(path)
    lock_path = grads.with_name(grads.name + ".lock")
    if not lock_path.exists():
        return False
    with open(lock_path) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


def _clear_dead_writers_flags(path: Path) -> bool:
    """Clear the writer flags a killed probe left (as ``h5clear -s`` does), holding the write
    lock so no probe can be resuming meanwhile; afterwards any h5py user opens the file as
    usual. False where a writer holds the lock or the file or lock cannot be written (then the
    run is read in SWMR mode, as before)."""
    try:
        lock = try_lock(path.with_name(path.name + ".lock"))
    except OSError:
        return False
    if lock is None:
        return False
    try:
        clear_status_flags(path)
        return True
    except (OSError, ValueError):
        return False
    finally:
        lock.close()


def _open_for_reading(path: Path) -> h5py.File:
    """Open ``path`` read-only: in SWMR mode only while a probe holds its write lock.

    HDF5 skips its truncation check in SWMR mode and then retries metadata reads without end,
    so a finished run opens without SWMR (a cut file is refused at once), after the superblock's
    recorded end of file is checked against the file's size. A run whose writer was killed keeps
    HDF5's writer flags: they are cleared here when no writer holds the lock, else (or on a
    read-only file) the run is read in SWMR mode, once that same check has passed. A file with a
    version 0 or 1 superblock (written by another tool with h5py's defaults, or ``h5repack``)
    can hold no SWMR writer: it opens without SWMR, where HDF5 checks truncation itself.
    """
    if path.is_dir():
        raise RunError(f"{path}: a directory, where the run's HDF5 file was expected")
    live = being_written(path)
    swmr = live
    try:
        found = None if live else superblock(path)  # None also for an old-style superblock
    except ValueError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise RunError(f"{path}: not a readable HDF5 file ({reason})") from None
    if found is not None:
        flags, eof = found
        size = path.stat().st_size
        if size < eof:
            raise RunError(f"{path}: truncated: the file has {size:,} bytes, its superblock "
                           f"records {eof:,} (a copy or download was cut short)")
        swmr = flags != 0 and not _clear_dead_writers_flags(path)
    try:
        return h5py.File(path, "r", libver="latest", swmr=swmr, locking=False)
    except (OSError, RuntimeError) as exc:  # h5py raises either for a corrupt file
        if "truncated file" in str(exc):
            raise RunError(f"{path}: truncated: HDF5 finds the file shorter than it records "
                           f"({exc}; a copy or download was cut short)") from None
        raise RunError(f"{path}: not a readable HDF5 file ({exc})") from None


class Run:
    """Read a ``grads.h5`` (schema 1), also while a probe is still writing it.

    Raises ``RunError`` naming the file and the missing or wrong field when it is not a run.
    """

    def __init__(self, path: str | Path):
        self.path = grads_path(path)
        if not self.path.exists():
            raise RunError(f"{self.path}: no such run file")
        self._file = _open_for_reading(self.path)
        try:
            self._validate()
            f = self._file
            self.attrs = {k: _plain(v) for k, v in f.attrs.items()}
            self._probe_config = _json_object(self.attrs["probe_config"], "probe_config")
            self._model_config = _json_object(self.attrs["model_config"], "model_config")
            self.languages = [_text(s) for s in f["languages"][:]]
            self.tasks = [_text(s) for s in f["tasks"][:]]
            self.modules = ModuleTable(
                name=[_text(s) for s in f["modules/name"][:]],
                n_params=f["modules/n_params"][:].astype(np.int64),
                kind=[_text(s) for s in f["modules/kind"][:]],
                exact=f["modules/exact"][:].astype(bool),
            )
        except RunError:
            self._file.close()
            raise
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as exc:
            self._file.close()  # whatever else a damaged file raises: named, never a traceback
            raise RunError(f"{self.path}: malformed run file ({type(exc).__name__}: "
                           f"{str(exc)[:300]})") from None
        except BaseException:
            self._file.close()
            raise

    def _validate(self) -> None:
        f = self._file
        missing = [a for a in _ATTRS if a not in f.attrs]
        if missing:
            raise RunError(f"{self.path}: not a gradlens run (missing attribute(s) {missing})")
        try:
            schema = int(f.attrs["schema"])
        except (TypeError, ValueError):
            raise RunError(f"{self.path}: attribute schema is {f.attrs['schema']!r}, expected "
                           f"{SCHEMA}") from None
        if schema != SCHEMA:
            raise RunError(f"{self.path}: schema {f.attrs['schema']}, this gradlens reads {SCHEMA}")
        gone = [p for p in _REQUIRED if p not in f]
        if gone:
            raise RunError(f"{self.path}: missing dataset(s) {gone}")
        L, T, M = len(f["languages"]), len(f["tasks"]), len(f["modules/name"])
        try:
            k = int(f.attrs["sketch_dim"])
        except (TypeError, ValueError):
            raise RunError(f"{self.path}: attribute sketch_dim is {f.attrs['sketch_dim']!r}, "
                           "expected an integer") from None
        expected = {"sketch": (L, T, M, k), "sq_norm": (L, T, M), "loss": (L, T), "steps/done": ()}
        for name, rest in expected.items():
            if f[name].shape[1:] != rest:
                raise RunError(f"{self.path}: /{name} has shape {f[name].shape}, expected "
                               f"(S{''.join(f', {d}' for d in rest)})")
        for name in ("modules/n_params", "modules/kind", "modules/exact"):
            if f[name].shape != (M,):
                raise RunError(f"{self.path}: /{name} has shape {f[name].shape}, expected ({M},)")

    # -- metadata -------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.attrs["model"]

    @property
    def sketch_dim(self) -> int:
        return int(self.attrs["sketch_dim"])

    @property
    def sketch_fold(self) -> int:
        """The fold width ``p <= k`` (``gradlens.sketch``); runs made before it was recorded
        folded by ``k``."""
        return int(self.attrs.get("sketch_fold", self.sketch_dim))

    @property
    def sketch_seed(self) -> int:
        return int(self.attrs["sketch_seed"])

    @property
    def probe_config(self) -> dict:
        return self._probe_config

    @property
    def content_paired(self) -> bool:
        """Whether each step drew the same content (items) for every language, so the languages'
        gradients pair up row by row (the paired similarity and the paired CCA need it): what
        the probe recorded, or, for a run made before it recorded it, whether it probed the
        spoken numbers, the one corpus then paired."""
        if "content_paired" in self._probe_config:
            return bool(self._probe_config["content_paired"])
        corpus = str(self._probe_config.get("corpus", "spoken-numbers"))
        return corpus == "spoken-numbers" or corpus.startswith("spoken-numbers:")

    @property
    def train_steps_between(self) -> int:
        """Training steps the probe took between its steps: 0 probes one fixed model; more, a
        model that moves while it is probed (docs/results.md §1b)."""
        return int(self._probe_config.get("train_steps_between") or 0)

    @property
    def model_config(self) -> dict:
        return self._model_config

    def refresh(self) -> None:
        """See steps appended since opening (SWMR)."""
        for name in ("sketch", "sq_norm", "loss", "steps/done"):
            self._file[name].refresh()

    @property
    def done_steps(self) -> np.ndarray:
        """Indices of the completed steps, ascending: only those whose rows a reader can see
        in every dataset (during a write, ``steps/done`` may already be longer than the data)."""
        f = self._file
        seen = min(f[name].shape[0] for name in ("sketch", "sq_norm", "loss"))
        done = np.flatnonzero(f["steps/done"][:])
        return done[done < seen]

    @property
    def planned_steps(self) -> int:
        return int(self.probe_config.get("steps", len(self.done_steps)))

    def size_bytes(self) -> int:
        return self.path.stat().st_size

    # -- data ------------------------------------------------------------------------------------
    def _steps(self, steps) -> np.ndarray:
        done = self.done_steps
        if steps is None:
            return done
        steps = np.asarray(steps, dtype=np.int64)
        bad = np.setdiff1d(steps, done)
        if bad.size:
            raise RunError(f"{self.path}: step(s) {bad.tolist()} are not done")
        return steps

    def _rows(self, name: str, steps, select=()) -> np.ndarray:
        """Rows ``steps`` (default: the done ones) of dataset ``name``, indexed by ``select``
        along the axes after the step axis, read as one contiguous slice."""
        steps = self._steps(steps)
        ds = self._file[name]
        if steps.size == 0:
            return np.zeros((0,) + np.empty(ds.shape[1:])[select].shape, np.float32)
        lo, hi = int(steps.min()), int(steps.max()) + 1
        try:
            rows = ds[(slice(lo, hi),) + select]
        except (OSError, RuntimeError) as exc:  # h5py's report of a chunk that fails its checksum
            raise RunError(f"{self.path}: /{name}, steps {lo} to {hi - 1}: the data cannot be "
                           f"read ({exc}); the file is damaged") from None
        return rows[steps - lo].astype(np.float32)

    def sketch(self, module: int, steps=None) -> np.ndarray:
        """Sketches of one module: ``[S, L, T, k]`` float32 over the done (or given) steps."""
        return self._rows("sketch", steps, (slice(None), slice(None), module))

    def sq_norm(self, steps=None) -> np.ndarray:
        """Exact squared norms ``[S, L, T, M]`` over the done (or given) steps."""
        return self._rows("sq_norm", steps)

    def loss(self, steps=None) -> np.ndarray:
        """Losses ``[S, L, T]`` over the done (or given) steps."""
        return self._rows("loss", steps)

    def duration(self, steps=None) -> np.ndarray | None:
        """Each language's mean audio seconds per step ``[S, L]`` over the done (or given)
        steps; None for a run made before the probe recorded it."""
        if DURATION not in self._file:
            return None
        return self._rows(DURATION, steps)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _json_object(text, name: str) -> dict:
    """A JSON object attribute, or a ``ValueError`` naming it."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"attribute {name} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"attribute {name} is {type(value).__name__}, expected a JSON object")
    return value


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
