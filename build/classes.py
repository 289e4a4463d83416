"""Stage `classes`: see `imagenet_multimodal.classes` for inputs, outputs and options.

Example::

    python build/classes.py --help
"""

import sys

from imagenet_multimodal.classes import main
from imagenet_multimodal.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
