"""Code and data versions recorded with every warehouse and run."""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from functools import lru_cache
from pathlib import Path

__version__ = "0.1.0"
INSTALLED = f"{__version__} (installed copy)"  # what a copy outside gensynth's own source tree records


@lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+<git commit>[.dirty]`` of gensynth's source tree, or ``INSTALLED``.

    git is asked only when this package is gensynth's own source: the package directory
    is ``<top>/gensynth`` of a git work tree whose ``pyproject.toml`` names the project
    "gensynth" (a checkout, or an editable install of one). A copy installed anywhere
    else, even inside an unrelated git repository (a virtual environment in a project's
    directory), records the package version and says it is an installed copy, never
    that repository's commit.
    """
    package = Path(__file__).resolve().parent
    top = _git(package, "rev-parse", "--show-toplevel")
    if top is None or not _is_gensynth_source(Path(top), package):
        return INSTALLED
    sha = _git(package, "rev-parse", "--short=12", "HEAD")
    if sha is None:
        return INSTALLED
    dirty = _git(package, "status", "--porcelain", "--untracked-files=no")
    return f"{__version__}+{sha}" + (".dirty" if dirty else "")


def _is_gensynth_source(top: Path, package: Path) -> bool:
    """Whether ``package`` is ``top/gensynth`` and ``top/pyproject.toml`` is gensynth's."""
    try:
        if (top / "gensynth").resolve() != package:
            return False
        with open(top / "pyproject.toml", "rb") as f:
            return tomllib.load(f).get("project", {}).get("name") == "gensynth"
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _git(cwd: Path, *args: str) -> str | None:
    """git's stripped output in ``cwd``, or None when git is missing, fails or hangs."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def data_version(*parts: object) -> str:
    """A short stable hash of everything that determines a warehouse's derived data."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]
