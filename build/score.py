"""Stage `score`: see `imagenet_multimodal.score` for inputs, outputs and options.

Example::

    python build/score.py --help
"""

import sys

from imagenet_multimodal.cli import run_stage
from imagenet_multimodal.score import main

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
