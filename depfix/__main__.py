"""`python -m depfix`: the same entry point as the `depfix` console script."""

from depfix.launch import run

run()
