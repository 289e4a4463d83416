"""The ``imagenet-multimodal`` console script: one subcommand per stage.

Each subcommand is the ``main(argv)`` of a stage module; ``build/<stage>.py`` runs the same
function, so ``imagenet-multimodal prepare ...`` and ``python build/prepare.py ...`` are one code.
Errors end with a one-line message on stderr: exit status 2 for bad input, 1 for an
operating-system error, 130 for Ctrl-C. ``python -m imagenet_multimodal.STAGE`` (and
``accelerate launch -m imagenet_multimodal.train``) run a stage too, from an installed package.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from .io import InputError

# subcommand -> (module, one-line summary); a stage is listed once it is real
STAGES = {
    "sample": ("imagenet_multimodal.sample", "write a synthetic ImageNet-Captions-format corpus"),
    "classes": ("imagenet_multimodal.classes", "write WORK/classes.parquet (class table and texts)"),
    "prepare": ("imagenet_multimodal.prepare", "clean, bucket, split and pair the captions"),
    "train": ("imagenet_multimodal.train", "train the relevance model (accelerate launch build/train.py)"),
    "score": ("imagenet_multimodal.score", "score every eligible caption, filter, measure (WORK/scores.parquet)"),
    "publish": ("imagenet_multimodal.publish", "write WORK/hub (and push it to the Hub with --push)"),
    "report": ("imagenet_multimodal.report", "write WORK/report/index.html (figures and tables)"),
    "demo": ("imagenet_multimodal.demo", "the whole pipeline, offline, on a small synthetic sample"),
}

logger = logging.getLogger("imagenet_multimodal")


def _usage() -> str:
    lines = ["usage: imagenet-multimodal STAGE [options]   (STAGE --help for its options)", "", "stages:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in STAGES.items()]
    return "\n".join(lines)


def run_stage(stage_main, argv: Sequence[str] | None) -> int:
    """Run a stage's ``main`` with logging set up. One line on stderr instead of a traceback: an
    :class:`InputError` exits 2, an operating-system error (a path that is a file, a full disk) 1,
    Ctrl-C 130 (what was written stays consistent: writes are atomic, training checkpoints)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.disable_propagation()  # it prints through its own handler: not twice (its retries, say)
    try:
        return stage_main(argv)
    except InputError as err:
        logger.error("error: %s", err)
        return 2
    except OSError as err:
        logger.error("error: %s: %s", type(err).__name__, err)
        return 1
    except KeyboardInterrupt:
        logger.error("error: interrupted; run the same command again to go on from what was finished")
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``imagenet-multimodal STAGE ...`` to the stage's ``main``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(_usage() + "\n")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in STAGES:
        sys.stderr.write(f"imagenet-multimodal: unknown stage {name!r}\n\n{_usage()}\n")
        return 2
    module = importlib.import_module(STAGES[name][0])
    return run_stage(module.main, rest)


if __name__ == "__main__":
    sys.exit(main())
