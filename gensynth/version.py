"""Code and data versions recorded with every warehouse and run."""

from __future__ import annotations

import hashlib
import subprocess
from functools import lru_cache
from pathlib import Path

__version__ = "0.1.0"


@lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+<git commit>[.dirty]`` of the source tree, or the package version alone."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return __version__
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=5)
        return f"{__version__}+{sha.stdout.strip()}" + (".dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return __version__


def data_version(*parts: object) -> str:
    """A short stable hash of everything that determines a warehouse's derived data."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]
