"""Replay of a run whose inputs have not changed, without importing the engine.

A run that writes nothing (`check`, `apply --check` or `--diff`, `apply` with nothing to fix) is a
function of its command line, a few environment variables, depfix itself, and the files and
directories it read. When such a run ends, its output is stored with the status of each of those
inputs. The same command run again stats them (a directory's mtime changes when an entry is added,
removed or renamed; a file's ctime changes with any write) and, when none changed, writes the stored
output and exits with the stored code. That costs the stats; importing the engine alone costs more
than half a second.

The store is signed like the cache (`depfix.signing`): one altered or brought in with a repository is
ignored. It applies only when neither stdout nor stderr is a terminal (no colours, no progress bar to
reproduce) and the cache is on. An input modified less than `RACY_NS` before the run started may
change again within the clock's resolution unnoticed: such a run is not stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Optional, TextIO, cast

from depfix import __version__
from depfix.roots import CACHE_DIRECTORY, find_project_root
from depfix.signing import sign, signing_key, verified

STORE = "replay-v1"
"""The directory of stored runs, one file per command line (a lookup reads only its own)."""
KEEP = 16
"""Entries kept per project: the commands run most recently."""
RACY_NS = 2_000_000_000
"""A file modified this recently may change again within the clock's resolution unnoticed."""
ENVIRONMENT = (
    "NO_COLOR",
    "FORCE_COLOR",
    "TERM",
    "COLUMNS",
    "LINES",
    "CI",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
)
ENVIRONMENT_PREFIXES = ("DEPFIX_", "GITHUB_", "RUNNER_")
"""Variables that may change what a run prints: they are part of the command's key."""

_offered: Optional[list[str]] = None
_scope: Optional[dict[str, Any]] = None
_recording = False


def recording() -> bool:
    """Whether this command's output is being recorded (a run then describes its `ReplayScope`)."""
    return _recording


def offer(inputs: Iterable[str], scope: Optional[dict[str, Any]] = None) -> None:
    """Called by a command that wrote nothing: its output may be replayed while `inputs` hold.

    `scope` (`depfix.engine.ReplayScope` as a dict) names the files whose edits cannot change the
    output while their facts stay the same: it is replayed after such an edit too.
    """
    global _offered, _scope
    _offered = list(inputs)
    _scope = scope


def _status(path: str) -> Optional[list[int]]:
    try:
        stat = os.lstat(path)
    except OSError:
        return None
    return [stat.st_mode, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


THIRD_PARTY = ("libcst", "pathspec", "typer", "rich")
"""Libraries whose version can change the output: their top module's file is an input (an upgrade
rewrites it)."""


def _settled(status: Optional[list[int]], limit: int) -> bool:
    """Whether a file's mtime and ctime are both older than `limit` (a status of None is not)."""
    return status is not None and status[3] < limit and status[4] < limit


def _code_files() -> list[str]:
    """depfix's own modules (an editable install changes under a run's feet) and its libraries'."""
    found = []
    for package in (Path(__file__).parent, Path(__file__).parent.parent / "codemods"):
        found.append(str(package))
        try:
            found.extend(entry.path for entry in os.scandir(package) if entry.name.endswith(".py"))
        except OSError:
            continue
    for name in THIRD_PARTY:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            found.append(str(module.__file__))
    return found


def _store(cwd: Path) -> Path:
    return find_project_root([cwd]) / CACHE_DIRECTORY / STORE


def command_key(argv: Sequence[str], cwd: Path) -> str:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name in ENVIRONMENT or name.startswith(ENVIRONMENT_PREFIXES)
    }
    text = json.dumps(
        [
            __version__,
            sys.executable,
            sys.version,
            str(cwd),
            list(argv),
            sorted(environment.items()),
        ]
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=20).hexdigest()


def applies(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> bool:
    return (
        not os.environ.get("DEPFIX_NO_CACHE")
        and "--no-cache" not in argv
        and not _isatty(stdout)
        and not _isatty(stderr)
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _load(store: Path, command: str) -> Optional[dict[str, Any]]:
    """The stored run of a command line, when its file is whole and signed by this user for it."""
    key = signing_key()
    try:
        signature, _, payload = (store / f"{command}.json").read_bytes().partition(b"\n")
        if key is None or not verified(key, bytes.fromhex(signature.decode("ascii")), payload):
            return None
        entry = json.loads(payload)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("command") != command:
        return None  # a stored run copied under another command line's name
    return entry


Output = list[tuple[int, bytes]]


def lookup(argv: Sequence[str], cwd: Path) -> Optional[tuple[Output, int]]:
    """The stored output and exit code of this command, when nothing it read changed in a way that
    can change them (an edit that keeps the facts of a file no rule looked at does not)."""
    store = _store(cwd)
    command = command_key(argv, cwd)
    entry = _load(store, command)
    if entry is None:
        return None
    try:
        changed = {}
        for number, (path, status) in enumerate(entry["inputs"]):
            now = _status(path)
            if now != status:
                changed[number] = (path, now)
        if changed and not all(_same_facts(entry, path, now) for path, now in changed.values()):
            return None
        output = [(int(number), chunk.encode("latin-1")) for number, chunk in entry["output"]]
        if any(number not in (1, 2) for number, _ in output):
            return None
        code = int(entry["code"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    if changed:  # the next run needs no parse: keep the new status of the edited files
        limit = time.time_ns() - RACY_NS
        if all(_settled(now, limit) for _, now in changed.values()):
            for number, (path, now) in changed.items():
                entry["inputs"][number] = [path, now]
            _save(store, entry)
    return output, code


def _same_facts(entry: dict[str, Any], path: str, now: Optional[list[int]]) -> bool:
    """Whether an edited file still cannot change the stored output (see `ReplayScope`)."""
    scope = entry.get("scope")
    if not isinstance(scope, dict) or now is None or not stat.S_ISREG(now[0]):
        return False
    known = scope["files"].get(path)
    if known is None:
        return False
    display, module, is_package, facts_print, rule_needles = known
    # imported here: a run with nothing changed needs none of them
    from depfix.facts import extract_facts, fingerprint, parse_source
    from depfix.io import SourceError, read_source
    from depfix.prefilter import matters, mentions

    try:
        data = read_source(Path(path)).data
        text, tree = parse_source(display, data)
    except (SourceError, SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    if any(needle.encode("latin-1") in data for needle in rule_needles):
        return False  # a rule the facts let run would now run on it
    if facts_print is None:  # not indexed: it must stay out of the index
        needles = [needle.encode("latin-1") for needle in scope["needles"]]
        return not matters(data, needles) and not any(
            mentions(data, word.encode("latin-1")) for word in scope["words"]
        )
    return bool(fingerprint(extract_facts(display, module, is_package, tree, text)) == facts_print)


def store(argv: Sequence[str], cwd: Path, started_ns: int, output: Output, code: int) -> None:
    """Keep this run's output, unless it was not offered or an input changed too recently."""
    if _offered is None:
        return
    limit = started_ns - RACY_NS
    inputs = []
    for path in sorted({*_offered, *_code_files()}):
        status = _status(path)
        if status is not None and not _settled(status, limit):
            return
        inputs.append([path, status])
    store = _store(cwd)
    if not store.parent.is_dir():
        return  # the run keeps no cache here (or cannot): nothing to replay from
    entry = {
        "command": command_key(argv, cwd),
        "inputs": inputs,
        "output": [[number, chunk.decode("latin-1")] for number, chunk in output],
        "code": code,
        "scope": _scope,
    }
    if _save(store, entry):
        _prune(store)


def _save(store: Path, entry: dict[str, Any]) -> bool:
    import tempfile

    key = signing_key()
    if key is None:
        return False
    payload = json.dumps(entry).encode("utf-8")
    try:
        store.mkdir(exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=store, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(sign(key, payload).hex().encode("ascii") + b"\n" + payload)
            os.replace(temporary, store / f"{entry['command']}.json")
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return False
    return True


def _prune(store: Path) -> None:
    """Keep the `KEEP` command lines stored most recently."""
    try:
        stored = sorted(
            (entry.stat().st_mtime_ns, entry.path)
            for entry in os.scandir(store)
            if entry.name.endswith(".json")
        )
        for _, path in stored[:-KEEP]:
            os.unlink(path)
    except OSError:
        pass


class _Tee(io.RawIOBase):
    """A binary stream that writes through to another and logs what it wrote, in order."""

    def __init__(self, target: BinaryIO, number: int, log: list[tuple[int, bytes]]) -> None:
        super().__init__()
        self.target = target
        self.number = number
        self.log = log

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = bytes(data)
        self.target.write(written)
        self.target.flush()
        self.log.append((self.number, written))
        return len(written)

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()


class Recording:
    """stdout and stderr copied while a command runs (installed as `sys.stdout` and `sys.stderr`)."""

    def __init__(self) -> None:
        global _offered, _scope, _recording
        _offered = _scope = None  # only the command recorded now may offer its output
        _recording = True
        self.started_ns = time.time_ns()
        self.log: list[tuple[int, bytes]] = []
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = (
            io.TextIOWrapper(
                cast(BinaryIO, _Tee(stream.buffer, number, self.log)),
                encoding=stream.encoding,
                errors=stream.errors,
                write_through=True,
            )
            for number, stream in enumerate(self._saved, start=1)
        )

    def stop(self) -> list[tuple[int, bytes]]:
        """Restore the streams; what was written to them (1: stdout, 2: stderr), in order."""
        global _recording
        _recording = False
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = self._saved
        return self.log


def write(output: Sequence[tuple[int, bytes]]) -> None:
    """Write a recorded output again, in the order it was written."""
    streams = {1: sys.stdout, 2: sys.stderr}
    for number, chunk in output:
        stream = streams[number]
        stream.buffer.write(chunk)
        stream.flush()
