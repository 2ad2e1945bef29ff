#!/usr/bin/env python3
"""Run graphc from a checkout: ``python cli.py ...`` behaves like ``graphc ...``."""

import sys

from graphc.cli import main

if __name__ == "__main__":
    sys.exit(main())
