"""The run cache under the project root (`.depfix_cache/`), ignored by git like ruff's.

One file holds the entries of the last run: per-file facts and syntax checks keyed by content (and the
module the file is), per-file outcomes keyed by content, settings and a digest of the index facts the
file depends on, and the whole last result keyed by the size and modification time of every file. It is
written atomically (temporary file and `os.replace`), so concurrent runs each see a whole cache, the last
writer's. It is signed with a key kept outside the project: a cache that was altered, truncated or
brought in with a repository is ignored like a corrupt one (unpickling it would run its code).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

from depfix import __version__
from depfix.roots import CACHE_DIRECTORY
from depfix.signing import sign, signing_key, verified

DIRECTORY = CACHE_DIRECTORY
FILE = "cache-v2.pickle"
RUN_FILE = "run-v2.pickle"
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


class Cache:
    """Entries read from the last run, and the entries this run uses or adds (the ones kept)."""

    def __init__(self, root: Path) -> None:
        self.directory = root / DIRECTORY
        self.key = signing_key()
        self.old: dict[str, dict[str, Any]] = {}
        self.new: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded and self.key is not None:
            self.old.update(self._read(FILE))
        self._loaded = True

    def _read(self, name: str) -> dict[str, dict[str, Any]]:
        assert self.key is not None
        try:
            blob = (self.directory / name).read_bytes()
        except OSError:
            return {}
        signature, payload = blob[:32], blob[32:]
        if not verified(self.key, signature, payload):
            return {}
        try:
            loaded = pickle.loads(payload)
        except Exception:  # a signed but unreadable cache (another depfix version): a miss
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def get(self, table: str, key: str) -> Any:
        """The entry, kept for the next run; None when absent."""
        if table in SEPARATE:
            if table not in self.old and self.key is not None:
                self.old[table] = self._read(SEPARATE[table]).get(table, {})
        else:
            self._load()
        entry = self.new.get(table, {}).get(key)
        if entry is None:
            entry = self.old.get(table, {}).get(key)
            if entry is not None:
                self.new.setdefault(table, {})[key] = entry
        return entry

    def put(self, table: str, key: str, value: Any) -> None:
        self.new.setdefault(table, {})[key] = value
        self.dirty = True

    def save(self) -> None:
        """Write this run's entries; a cache that cannot be written is silently skipped."""
        if self.key is None or not self.dirty:
            return
        main = {table: entries for table, entries in self.new.items() if table not in SEPARATE}
        try:
            self.directory.mkdir(exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Automatically created by depfix.\n*\n", encoding="utf-8")
            self._write(FILE, main)
            for table, name in SEPARATE.items():
                self._write(name, {table: self.new.get(table, {})})
        except (OSError, pickle.PicklingError, RecursionError):
            pass

    def _write(self, name: str, tables: dict[str, dict[str, Any]]) -> None:
        assert self.key is not None
        payload = pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL)
        signature = sign(self.key, payload)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(signature + payload)
            os.replace(temporary, self.directory / name)
        except BaseException:
            os.unlink(temporary)
            raise
