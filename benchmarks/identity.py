"""Does a change of depfix change its output? Compare two checkouts on the same trees, byte for byte.

For each tree, runs each checkout's `python -m depfix` (with PYTHONPATH set to the checkout) as
`check` (text with `--verbose`, json, sarif) and `apply --unsafe --diff`, all with `--no-cache`, and
reports which outputs (stdout and stderr, exit status) differ. Nothing is written to the trees. Performance work must keep
every output identical (issue "Performance redesign").

Usage: python benchmarks/identity.py --base /path/to/old/checkout [--new .] TREE [TREE ...]
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
from pathlib import Path

COMMANDS = (
    ["check", "--no-cache", "--verbose", "."],
    ["check", "--no-cache", "--format", "json", "."],
    ["check", "--no-cache", "--format", "sarif", "."],
    ["apply", "--unsafe", "--diff", "--no-cache", "."],
)


def _run(checkout: Path, command: list[str], tree: Path) -> tuple[int, bytes]:
    """Exit status, and stdout followed by stderr."""
    env = dict(os.environ, PYTHONPATH=str(checkout), NO_COLOR="1")
    env.pop("DEPFIX_NO_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-m", "depfix", *command], cwd=tree, env=env, capture_output=True
    )
    if b"Traceback" in done.stderr:
        raise SystemExit(f"{checkout} crashed on {tree}: {done.stderr.decode(errors='replace')}")
    return done.returncode, done.stdout + b"\n--- stderr\n" + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--new", type=Path, default=Path.cwd())
    parser.add_argument("trees", nargs="+", type=Path)
    args = parser.parse_args()
    differ = 0
    for tree in args.trees:
        for command in COMMANDS:
            old = _run(args.base.resolve(), command, tree)
            new = _run(args.new.resolve(), command, tree)
            label = f"{tree.name}: {' '.join(command[:-1])}"
            if old == new:
                print(f"same    {label} (exit {new[0]}, {len(new[1])} bytes)")
                continue
            differ += 1
            print(f"DIFFER  {label} (exit {old[0]} -> {new[0]})")
            lines = difflib.unified_diff(
                old[1].decode(errors="replace").splitlines(),
                new[1].decode(errors="replace").splitlines(),
                "base",
                "new",
                lineterm="",
                n=1,
            )
            for number, line in enumerate(lines):
                if number == 40:
                    print("    ...")
                    break
                print(f"    {line}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
