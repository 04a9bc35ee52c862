"""How tight the rules' gates are on real trees, and whether one ever turns a finding away.

For each tree given, runs `depfix check` and `depfix apply --unsafe --diff` (nothing written) in this
process with one job, under `depfix.gate_audit.audit(count=True)`, and prints per rule: the (file, pass)
pairs its gate let it run on, those where it reported, and the misses (a gate refused a file the rule
reports in: must be 0). A gate that runs a rule on many files where it reports nothing costs a libcst
parse, positions and a traversal per file for nothing.

Usage: python benchmarks/gates.py TREE [TREE ...]
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections import Counter
from pathlib import Path

from depfix.cli import main as cli_main
from depfix.gate_audit import audit


def _quietly(argv: list[str]) -> None:
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        stack.enter_context(contextlib.suppress(SystemExit))
        cli_main(argv)


def main() -> int:
    trees = [Path(arg).resolve() for arg in sys.argv[1:]]
    if not trees:
        print(__doc__)
        return 2
    total_misses = 0
    for tree in trees:
        ran: Counter[str] = Counter()
        reported: Counter[str] = Counter()
        misses: list[tuple[str, str, int]] = []
        cwd = os.getcwd()
        os.chdir(tree)
        try:
            for argv in (
                ["check", "--no-cache", "-j", "1", "--quiet", "."],
                ["apply", "--unsafe", "--diff", "--no-cache", "-j", "1", "--quiet", "."],
            ):
                with audit(count=True) as found:
                    _quietly(argv)
                ran.update(found.ran)
                reported.update(found.reported)
                misses.extend(found.misses)
        finally:
            os.chdir(cwd)
        print(f"== {tree}")
        print(f"{'rule':6} {'ran':>6} {'reported':>9} {'misses':>7}")
        for code in sorted(set(ran) | {m[0] for m in misses}):
            count = sum(1 for m in misses if m[0] == code)
            print(f"{code:6} {ran[code]:6d} {reported[code]:9d} {count:7d}")
        print(f"{'all':6} {sum(ran.values()):6d} {sum(reported.values()):9d} {len(misses):7d}")
        for code, path, number in misses:
            print(f"  MISS {code} {path}: {number} finding(s)")
        total_misses += len(misses)
    return 1 if total_misses else 0


if __name__ == "__main__":
    sys.exit(main())
