"""Training checkpoints: ``accelerator.save_state`` folders with the loop state, written atomically.

``OUTPUT/checkpoints/step-N/`` holds what ``accelerator.save_state`` writes (model, optimizer,
scheduler, RNG states) plus ``trainer_state.json`` (the loop state, with the options that decide what
is trained: :func:`run_key`); ``OUTPUT/checkpoints/best-epoch-N/`` holds the best epoch's weights, the
folder that the loop state names (``best_weights``): weights of a better epoch that a killed run saved
but no checkpoint recorded are never taken for the recorded best. A folder is written under a
temporary name and renamed by the main process, so a killed run never leaves a half-written one.
``options`` is a :class:`imagenet_multimodal.train.TrainOptions`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from accelerate import Accelerator
from accelerate.logging import get_logger

from .io import InputError, file_sha256, read_json, replace_path, write_json

logger = get_logger(__name__, log_level="INFO")
# before the Accelerator exists (finished_run), Accelerate's logger refuses to log: plain logging then
_early_log = logging.getLogger(__name__)

# options that do not change what is trained: a finished run with other values is not redone, and a
# checkpoint made with other values is resumed. The work and output folders count by content (the
# inputs' digest), not by how their path is spelled or where they were moved
RUN_ONLY_OPTIONS = {"resume", "stop_after_steps", "force", "write_rank_digests", "report_to",
                    "checkpoint_steps", "checkpoints_total_limit", "num_workers", "logging_steps",
                    "keep_checkpoints", "eval_batch_size", "work", "output"}


def checkpoint_dirs(folder: Path) -> list[Path]:
    """Complete checkpoints (``step-N`` with ``trainer_state.json``) in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / "trainer_state.json").is_file())


def _replace_dir(accelerator: Accelerator, tmp: Path, final: Path) -> None:
    """Main process: move the folder ``tmp`` that all processes wrote onto ``final``."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        replace_path(tmp, final)
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator: Accelerator, state: dict, *, options) -> Path:
    """``accelerator.save_state`` plus the loop state into ``checkpoints/step-N`` (atomically)."""
    folder = options.output / "checkpoints"
    final = folder / f"step-{state['global_step']:08d}"
    tmp = folder / f".{final.name}.tmp"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:  # the batches done are each process's: a resume needs as many
        write_json(state | {"world_size": accelerator.num_processes}, tmp / "trainer_state.json")
    _replace_dir(accelerator, tmp, final)
    if accelerator.is_main_process:
        for old in checkpoint_dirs(folder)[:-options.checkpoints_total_limit]:
            shutil.rmtree(old)
    return final


def save_best(accelerator: Accelerator, model, *, options, epoch: int) -> str:
    """Write the current weights to ``checkpoints/best-epoch-<epoch>/model.safetensors`` (atomically),
    under the model's own parameter names whether or not Accelerate compiled it (no ``_orig_mod.``
    prefix); return the folder's name, for the loop state."""
    folder = options.output / "checkpoints" / f"best-epoch-{epoch:04d}"
    plain = accelerator.unwrap_model(model, keep_torch_compile=False)
    tmp = folder.with_name(f".{folder.name}.tmp")
    accelerator.save_model(plain, str(tmp), safe_serialization=True)
    _replace_dir(accelerator, tmp, folder)
    return folder.name


def best_weights(options, state: dict) -> Path:
    """The best epoch's weights file that ``state`` records."""
    # checkpoints written before best-epoch-N folders name none: theirs is checkpoints/best
    return options.output / "checkpoints" / (state.get("best_weights") or "best") / "model.safetensors"


def remove_unrecorded_best(accelerator: Accelerator, options, state: dict) -> None:
    """Main process: remove the best-weights folders other than the one ``state`` records (call after
    the checkpoint that records it is written): other ``best-epoch-*``, what a killed save left, and
    the older code's ``best``."""
    if accelerator.is_main_process and state.get("best_weights"):
        folder = options.output / "checkpoints"
        for path in [*folder.glob("best-epoch-*"), *folder.glob(".best-epoch-*.tmp"), folder / "best"]:
            if path.name != state["best_weights"] and path.is_dir():
                shutil.rmtree(path)


def run_key(options) -> dict:
    """What decides what is trained: the options and the content of the inputs (a checkpoint or a
    finished run must match both, so a rerun of ``prepare`` that changed the pairs retrains)."""
    key = {k: v for k, v in options.to_json().items() if k not in RUN_ONLY_OPTIONS}
    inputs = input_digest(options.work)
    if options.folds > 1:  # and the rule that says which pairs a fold leaves out
        from .pairs import FOLD_RULE

        inputs += f"+folds-by-{FOLD_RULE}"
    return key | {"inputs": inputs}


def _same_run(recorded: dict) -> dict:
    """A recorded run key without the options that are run-only now (older checkpoints and metrics
    recorded the work and output paths, say): what :func:`run_key` is compared with."""
    return {k: v for k, v in recorded.items() if k not in RUN_ONLY_OPTIONS}


def input_digest(work: Path) -> str:
    """SHA-256 over the training inputs in ``work``: ``pairs/*.parquet``, ``captions.parquet`` (the
    test captions) and ``classes.parquet`` (label names), those present; file hashes are remembered
    while a file is unchanged (:func:`io.file_sha256`)."""
    files = sorted(Path(work, "pairs").glob("*.parquet"))
    files += [path for path in (Path(work, "captions.parquet"), Path(work, "classes.parquet")) if path.exists()]
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(work).as_posix()}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def find_resume(options, accelerator: Accelerator) -> Path | None:
    """The checkpoint to resume from, per ``--resume`` (none with ``--force``); ``None``: start afresh.

    A fresh start removes the checkpoints of an earlier run (main process); a checkpoint made
    with other training options is an :class:`InputError` unless ``--resume auto`` (then fresh).
    """
    folder = options.output / "checkpoints"
    found = [] if options.force else checkpoint_dirs(folder)
    if options.resume in ("auto", "latest"):
        if not found and options.resume == "latest":
            finished = (options.output / "metrics.json").exists() and \
                read_json(options.output / "metrics.json").get("finished")
            raise InputError(f"--resume latest: no checkpoint in {folder}" + (
                "; the run there finished and removed its checkpoints (--keep-checkpoints keeps them)"
                if finished else ""))
        path = found[-1] if found else None
    else:
        path = None if options.resume == "no" else Path(options.resume)
    if path is not None and not (path / "trainer_state.json").is_file():
        raise InputError(f"--resume {path}: not a checkpoint folder (no trainer_state.json)")
    if path is not None and _same_run(read_json(path / "trainer_state.json").get("options") or {}) != run_key(options):
        if options.resume != "auto":
            raise InputError(f"--resume {path}: the checkpoint was made with other training options or inputs")
        logger.warning("train: %s was made with other options or inputs; starting afresh", path)
        path = None
    if path is None and folder.exists():
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(folder)
        accelerator.wait_for_everyone()
    return path


def resumed_state(checkpoint: Path, options, *, world_size: int) -> dict:
    """The loop state of ``checkpoint``, checked: made by as many processes as ``world_size`` (its
    position in the epoch is a per-process batch count), and the best weights it names still there."""
    state = read_json(checkpoint / "trainer_state.json")
    made_by = state.pop("world_size", world_size)  # not recorded before: taken on trust
    if made_by != world_size:
        raise InputError(f"--resume {checkpoint}: made by {made_by} training processes, resumed by {world_size}; "
                         f"launch it with --num_processes {made_by} (its place in the epoch counts each "
                         "process's batches)")
    if state["best"] is not None and not best_weights(options, state).is_file():
        raise InputError(f"--resume {checkpoint}: the best weights it records ({best_weights(options, state)}) "
                         "are gone; resume from the latest checkpoint of this output folder")
    if "stopped_early" not in state:  # written before the stop was recorded
        state["stopped_early"] = bool(options.patience and state["history"]) and \
            state["history"][-1]["epoch"] - state["best"]["epoch"] >= options.patience
    return state


def finished_run(options) -> dict | None:
    """The metrics of a finished run in ``options.output`` made with these options and inputs, or
    ``None`` (also with ``--force`` or a ``--resume`` other than ``auto``)."""
    path = options.output / "metrics.json"
    if options.force or options.resume != "auto" or not path.exists():
        return None
    metrics = read_json(path)
    same = _same_run(metrics.get("options", {})) | {"inputs": metrics.get("inputs")}
    if metrics.get("finished") and same == run_key(options):
        return metrics
    if metrics.get("finished"):
        _early_log.info("train: %s was made with other options or other inputs; training again", path)
    return None
