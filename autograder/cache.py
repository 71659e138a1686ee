"""Results kept by the hash of everything they depend on: a miss is recomputed, never guessed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from autograder.trusted import course_root

CACHE_VARIABLE = "GRADER_CACHE_DIR"


def cache_dir() -> Path:
    """Where results of sandboxed runs are kept, by the hash of everything they depend on."""
    return Path(os.environ.get(CACHE_VARIABLE) or course_root() / "grading" / ".cache")


def fingerprint(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True).encode() + b"\0")
    return digest.hexdigest()


def code_version(*paths: Path) -> str:
    """Hash of the grader's own code: a change to it invalidates every cached result."""
    return fingerprint(*[Path(p).read_text() for p in paths])


def cache_get(kind: str, key: str):
    path = cache_dir() / kind / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cache_put(kind: str, key: str, value) -> None:
    """Write atomically, so an interrupted run never leaves half a result behind."""
    folder = cache_dir() / kind
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{key}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(value))
    os.replace(temporary, folder / f"{key}.json")

