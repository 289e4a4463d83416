"""Stage `train`: see `imagenet_multimodal.train` for inputs, outputs and options.

Example (one process, or several with accelerate)::

    python build/train.py --help
    accelerate launch --multi_gpu --num_processes 2 build/train.py --work W --encoder offline
"""

import sys

from imagenet_multimodal.cli import run_stage
from imagenet_multimodal.train import main

if __name__ == "__main__":
    sys.exit(run_stage(main, sys.argv[1:]))
