"""Review A11: code_version() records a git commit only for gensynth's own source tree."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gensynth
from gensynth.version import __version__

INSTALLED = f"{__version__} (installed copy)"

PACKAGE = Path(gensynth.__file__).resolve().parent
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "PATH": "/usr/bin:/bin:/usr/local/bin"}

if shutil.which("git") is None:  # pragma: no cover - git is on every machine this project runs on
    pytest.skip("git is not installed", allow_module_level=True)


def _repo(path: Path, pyproject: str | None) -> str:
    """A git repository at ``path`` with one commit (and a pyproject.toml when given); its short HEAD."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "README").write_text("an unrelated project\n")
    if pyproject is not None:
        (path / "pyproject.toml").write_text(pyproject)
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *cmd], cwd=path, check=True, env=GIT_ENV)
    return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=path, check=True, env=GIT_ENV,
                          capture_output=True, text=True).stdout.strip()


def _code_version_of_copy(parent: Path) -> str:
    """code_version() as a copy of the package under ``parent`` (first on sys.path) reports it."""
    shutil.copytree(PACKAGE, parent / "gensynth", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-c", "import gensynth.version as v; print(v.__file__); print(v.code_version())"],
                         cwd=parent, env={**GIT_ENV, "PYTHONPATH": str(parent)}, capture_output=True, text=True, check=True)
    where, version = out.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(parent.resolve())  # the copy, not this checkout
    return version


def test_installed_copy_inside_an_unrelated_repository(tmp_path):
    """A non-editable install in a virtual environment inside some project's git repository."""
    sha = _repo(tmp_path / "project", '[project]\nname = "other"\n')
    version = _code_version_of_copy(tmp_path / "project" / ".venv" / "lib" / "python3" / "site-packages")
    assert version == INSTALLED and sha not in version


def test_package_dir_at_the_top_of_an_unrelated_repository(tmp_path):
    """gensynth/ vendored at the top of a repository that is not gensynth (its pyproject names another project)."""
    sha = _repo(tmp_path / "vendor", '[project]\nname = "other"\n')
    assert _code_version_of_copy(tmp_path / "vendor") == INSTALLED
    sha = _repo(tmp_path / "bare", None)
    assert sha not in _code_version_of_copy(tmp_path / "bare")


def test_build_copy_inside_the_source_tree(tmp_path):
    """build/lib/gensynth inside gensynth's own tree is an installed copy: its files need not be the commit's."""
    _repo(tmp_path / "src", '[project]\nname = "gensynth"\n')
    assert _code_version_of_copy(tmp_path / "src" / "build" / "lib") == INSTALLED


def test_gensynth_source_tree_records_its_commit(tmp_path):
    repo = tmp_path / "checkout"
    repo.mkdir()
    shutil.copytree(PACKAGE, repo / "gensynth", ignore=shutil.ignore_patterns("__pycache__"))
    sha = _repo(repo, '[project]\nname = "gensynth"\nversion = "0.1.0"\n')
    out = subprocess.run([sys.executable, "-c", "import gensynth.version as v; print(v.code_version())"], cwd=repo,
                         env={**GIT_ENV, "PYTHONPATH": str(repo)}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{__version__}+{sha}"
    (repo / "README").write_text("changed\n")
    out = subprocess.run([sys.executable, "-c", "import gensynth.version as v; print(v.code_version())"], cwd=repo,
                         env={**GIT_ENV, "PYTHONPATH": str(repo)}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{__version__}+{sha}.dirty"
