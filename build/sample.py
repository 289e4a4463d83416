"""Stage `sample`: see `imagenet_multimodal.sample` for inputs, outputs and options.

Example::

    python build/sample.py --help
"""

import sys

from imagenet_multimodal.cli import run_stage
from imagenet_multimodal.sample import main

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
