"""The run cache under the project root (`.depfix_cache/`), ignored by git like ruff's.

One file holds the entries: per-file facts and syntax checks keyed by content (and the module the file
is), per-file outcomes keyed by content, settings and a digest of the index facts the file depends on.
Each entry is pickled on its own and remembers the last run that used it: a run unpickles only what it
asks for, and an entry survives `KEEP_RUNS` runs that do not use it (a pre-commit run on a few files
keeps what the last whole-tree run stored). A second file holds the whole last result, keyed by the
size, modification and change time of every file. Both are written atomically (temporary file and
`os.replace`), so concurrent runs each see a whole cache, the last writer's. They are signed with a key
kept outside the project: a cache that was altered, truncated or brought in with a repository is
ignored like a corrupt one (unpickling it would run its code).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from depfix import __version__
from depfix.roots import CACHE_DIRECTORY
from depfix.signing import sign, signing_key, verified

DIRECTORY = CACHE_DIRECTORY
FILE = "cache-v6.pickle"
RUN_FILE = "run-v6.pickle"
"""The whole last result, apart: a run where nothing changed reads only this small file."""
SEPARATE = {"run": RUN_FILE}
SALT = f"depfix {__version__} python {sys.version}".encode()


def canonical(value: object) -> object:
    """`value` with sets and dicts in sorted order and dataclasses as tuples: a repr-stable form."""
    if isinstance(value, (str, bytes, int, float, bool, type(None))):
        return value
    if isinstance(value, (set, frozenset)):
        return ("set", sorted((canonical(item) for item in value), key=repr))
    if isinstance(value, dict):
        return ("dict", sorted(((canonical(k), canonical(v)) for k, v in value.items()), key=repr))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (type(value).__name__, *(canonical(getattr(value, f.name)) for f in fields))
    return repr(value)


def digest(*parts: object) -> str:
    """A stable digest of bytes and of other values (in their canonical form)."""
    hasher = hashlib.blake2b(SALT, digest_size=20)
    for part in parts:
        data = part if isinstance(part, bytes) else repr(canonical(part)).encode()
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


KEEP_RUNS = 16
"""An entry no run used in this many runs is dropped (a pre-commit run on a few files keeps the
entries of the last whole-tree run)."""
MAX_BYTES = 256 * 1024 * 1024
"""Past this size, the entries used longest ago are dropped first."""


class Cache:
    """Entries kept from earlier runs, and the entries this run uses or adds.

    Each entry is pickled on its own: a run unpickles only the entries it asks for, and writes back
    the bytes of the ones it did not touch as they were.
    """

    def __init__(self, root: Path) -> None:
        self.directory = root / DIRECTORY
        self.key = signing_key()
        self.old: dict[str, dict[str, tuple[int, bytes]]] = {}
        """Entries read: table -> key -> (the run that last used it, its pickled value)."""
        self.new: dict[str, dict[str, Any]] = {}
        """Entries this run used or added, unpickled."""
        self.generation = 0
        self.dirty = False
        self._loaded = False
        self._separate: dict[str, dict[str, Any]] = {}
        self._read_as: dict[tuple[str, str], Any] = {}
        """Entries read from `old`, as unpickled (entries are values: a hit is never mutated)."""

    def _load(self) -> None:
        if not self._loaded and self.key is not None:
            stored = self._read(FILE)
            tables = stored.get("tables")
            generation = stored.get("generation")
            if isinstance(tables, dict) and isinstance(generation, int):
                self.old, self.generation = tables, generation
        self._loaded = True

    def _read(self, name: str) -> dict[str, Any]:
        assert self.key is not None
        try:
            blob = (self.directory / name).read_bytes()
        except OSError:
            return {}
        signature, payload = blob[:32], blob[32:]
        if not verified(self.key, signature, payload):
            return {}
        loaded = _loads(payload)
        return loaded if isinstance(loaded, dict) else {}

    def get(self, table: str, key: str) -> Any:
        """The entry, kept for the next run; None when absent."""
        if table in SEPARATE:
            if table not in self._separate and self.key is not None:
                self._separate[table] = self._read(SEPARATE[table]).get(table, {})
            entry = self.new.get(table, {}).get(key)
            if entry is None:
                entry = self._separate.get(table, {}).get(key)
            return entry
        self._load()
        entry = self.new.get(table, {}).get(key)
        if entry is None:
            stored = self.old.get(table, {}).get(key)
            if stored is not None:
                entry = _loads(stored[1])
                if entry is not None:
                    self.new.setdefault(table, {})[key] = entry
                    self._read_as[(table, key)] = entry
                    self.dirty = True  # its generation moves on
        return entry

    def put(self, table: str, key: str, value: Any) -> None:
        self.new.setdefault(table, {})[key] = value
        self.dirty = True

    def save(self) -> None:
        """Write the entries; a cache that cannot be written is silently skipped."""
        if self.key is None or not self.dirty:
            return
        try:
            self.directory.mkdir(exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Automatically created by depfix.\n*\n", encoding="utf-8")
            self._write(FILE, {"generation": self.generation + 1, "tables": self._kept()})
            for table, name in SEPARATE.items():
                if table in self.new:
                    self._write(name, {table: self.new[table]})
        except (OSError, pickle.PicklingError, RecursionError):
            pass

    def _kept(self) -> dict[str, dict[str, tuple[int, bytes]]]:
        """This run's entries, then earlier ones used in the last `KEEP_RUNS` runs, newest first."""
        self._load()
        current = self.generation + 1
        candidates: list[tuple[int, str, str, bytes]] = []
        for table, entries in self.new.items():
            if table in SEPARATE:
                continue
            old = self.old.get(table, {})
            for key, value in entries.items():
                if self._read_as.get((table, key)) is value:  # a hit, not replaced: its bytes
                    candidates.append((current, table, key, old[key][1]))
                else:
                    candidates.append((current, table, key, _pickled(value)))
        for table, old_entries in self.old.items():
            fresh = self.new.get(table, {})
            candidates.extend(
                (generation, table, key, blob)
                for key, (generation, blob) in old_entries.items()
                if key not in fresh and generation > current - KEEP_RUNS
            )
        candidates.sort(key=lambda item: -item[0])
        kept: dict[str, dict[str, tuple[int, bytes]]] = {}
        size = 0
        for generation, table, key, blob in candidates:
            size += len(blob)
            if size > MAX_BYTES:
                break
            kept.setdefault(table, {})[key] = (generation, blob)
        return kept

    def _write(self, name: str, value: object) -> None:
        assert self.key is not None
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        signature = sign(self.key, payload)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(signature + payload)
            os.replace(temporary, self.directory / name)
        except BaseException:
            os.unlink(temporary)
            raise


def _pickled(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(payload: bytes) -> Optional[object]:
    """The value pickled in `payload`; None when it cannot be read (another depfix version)."""
    enabled = gc.isenabled()
    gc.disable()  # the collector would walk the new objects over and over while they are built
    try:
        value: object = pickle.loads(payload)
        return value
    except Exception:  # a signed but unreadable entry: a miss
        return None
    finally:
        if enabled:
            gc.enable()
