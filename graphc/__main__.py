"""``python -m graphc ...`` behaves like ``graphc ...``."""

import sys

from graphc.cli import main

if __name__ == "__main__":
    sys.exit(main())
