"""``python -m graphc ...`` behaves like ``graphc ...``."""

import sys

from graphc.cli import main

sys.exit(main())
