"""The `depfix` command: the stored output of an unchanged run, else the command-line interface.

Nothing heavy is imported before the replay is tried (see `depfix.replay`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from depfix import replay


def main() -> int:
    argv = sys.argv[1:]
    if not (
        hasattr(sys.stdout, "buffer")
        and hasattr(sys.stderr, "buffer")
        and replay.applies(argv, sys.stdout, sys.stderr)
    ):
        return _cli(argv)
    cwd = Path.cwd()
    stored = replay.lookup(argv, cwd)
    if stored is not None:
        output, code = stored
        replay.write(output)
        return code
    recording = replay.Recording()
    try:
        code = _cli(argv)
    finally:
        output = recording.stop()
    replay.store(argv, cwd, recording.started_ns, output, code)
    return code


def _cli(argv: list[str]) -> int:
    from depfix.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
