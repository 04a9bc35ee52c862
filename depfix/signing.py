"""The key that signs what depfix stores under a project (`.depfix_cache/`), kept outside it.

A stored file that was altered, truncated or brought in with a repository fails its signature and is
ignored: the cache because unpickling it would run its code, the replay because it would print
whatever it holds.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Optional


def key_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "depfix" / "cache-key"


def signing_key() -> Optional[bytes]:
    """This user's key (made on first use); None when it can be neither read nor made."""
    path = key_file()
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except OSError:
        pass
    import tempfile  # only the first run of a user makes the key

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
        os.replace(temporary, path)  # a concurrent run may win: read back whichever key stayed
        key = path.read_bytes()
    except OSError:
        return None
    return key if len(key) == 32 else None


def sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def verified(key: bytes, signature: bytes, payload: bytes) -> bool:
    return hmac.compare_digest(signature, sign(key, payload))
