"""Stage `report`: see `imagenet_multimodal.report` for inputs, outputs and options.

Example::

    python build/report.py --help
"""

import sys

from imagenet_multimodal.cli import run_stage
from imagenet_multimodal.report import main

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
