"""`python -m depfix`: the same entry point as the `depfix` console script."""

import sys

from depfix.launch import main

sys.exit(main())
