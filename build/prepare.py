"""Stage `prepare`: see `imagenet_multimodal.prepare` for inputs, outputs and options.

Example::

    python build/prepare.py --help
"""

import sys

from imagenet_multimodal.cli import run_stage
from imagenet_multimodal.prepare import main

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
