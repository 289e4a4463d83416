"""Stage `demo`: see `imagenet_multimodal.demo` for inputs, outputs and options.

Example::

    python build/demo.py --help
"""

import sys

from imagenet_multimodal.cli import run_stage
from imagenet_multimodal.demo import main

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
