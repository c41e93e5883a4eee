"""Command line: python -m alexnet_tf {main,train,evaluate} --help"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
