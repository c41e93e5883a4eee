"""What the benchmark scripts share: finding the real Tiny ImageNet data."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_ZIP = REPO.parent / "shared" / "data" / "tiny-imagenet-200.zip"


def add_data_arguments(parser):
    parser.add_argument("--zip", default=os.environ.get("TINY_IMAGENET_ZIP", DEFAULT_ZIP),
                        help="the Tiny ImageNet zip (default: $TINY_IMAGENET_ZIP)")
    parser.add_argument("--data", default=None, help="an extracted Tiny ImageNet folder instead of --zip")


def dataset(args, work_dir) -> Path:
    """The extracted dataset: --data as it is, or --zip extracted into ``work_dir``."""
    from data_prep import extract

    if args.data:
        return Path(args.data)
    if not Path(args.zip).is_file():
        sys.exit(f"{args.zip} not found: pass --zip or --data, or set TINY_IMAGENET_ZIP")
    return extract(args.zip, work_dir)
