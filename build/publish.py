"""Stage `publish`: see `imagenet_multimodal.publish` for inputs, outputs and options.

Example::

    python build/publish.py --help
"""

import sys

from imagenet_multimodal.cli import run_stage
from imagenet_multimodal.publish import main

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
