"""The package's shape, checked statically: the rules of docs/architecture.md and STYLE.

* the import graph of ``gensynth/`` and ``models/`` has no cycle (every import counts,
  module-level or inside a function);
* only ``gensynth/cli/`` imports ``gensynth.cli`` (and ``gensynth/__main__.py``, which is
  ``python -m gensynth``: the command line's second entry point, not a stage);
* no module uses another module's underscore names (``from x import _y``, or ``x._y``
  through an imported module);
* nothing of ``benchmarks/`` or ``tests/`` is inside the installed package, and the
  package list in pyproject.toml is every package folder of the tree;
* no module over 600 lines, no function over 80;
* ``gensynth --help`` and the help of ``solve``, ``split``, ``runs``, ``report``, ``train``, ``eval`` and ``sweep`` import
  neither torch nor lightning nor sklearn nor ray.

Each rule is a function over a source tree, so ``test_each_rule_catches_what_it_forbids``
shows on a small tree written for the purpose that every rule fails when broken.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOPS = ("gensynth", "models")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
HEAVY = ("torch", "lightning", "pytorch_lightning", "sklearn", "ray")

# ---------------------------------------------------------------------------------------
# The allow-list: known violations, each one exact case. Empty since area-learning merged;
# an entry that no longer occurs fails test_the_allow_list_holds_only_live_cases, so the
# list can only shrink.
ALLOWED: set[tuple[str, str, str]] = set()


# ---------------------------------------------------------------------------------------
# Reading a tree
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    """One imported name: ``target`` is the module it resolves to, ``name`` the name taken
    from it ('' for ``import target``), ``line`` where."""

    target: str
    name: str
    line: int


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int
    imports: list[Import]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_tree(root: Path, tops=TOPS) -> dict[str, Module]:
    """Every module under ``root/<top>/`` with its imports resolved to modules of the tree
    (imports of other packages are kept with their dotted name)."""
    paths = {module_name(root, p): p for top in tops for p in sorted((root / top).rglob("*.py"))}
    modules = {}
    for name, path in paths.items():
        text = path.read_text()
        tree = ast.parse(text, filename=str(path))
        modules[name] = Module(name, path, tree, len(text.splitlines()), _imports(name, path, tree, paths))
    return modules


def _imports(name: str, path: Path, tree: ast.Module, known: dict) -> list[Import]:
    out = []
    for node in ast.walk(tree):  # every import, at any depth (function-level ones included)
        if isinstance(node, ast.Import):
            out += [Import(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(name, path, node)
            for a in node.names:
                sub = f"{source}.{a.name}"
                out.append(Import(sub, "", node.lineno) if sub in known else Import(source, a.name, node.lineno))
    return out


def _absolute(name: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


# ---------------------------------------------------------------------------------------
# The rules: each returns violations as (rule, module, detail, where)
# ---------------------------------------------------------------------------------------

def import_cycles(modules: dict[str, Module]) -> list[tuple]:
    """Strongly connected components of the import graph with more than one module (or a self-import)."""
    edges = {m: sorted({i.target for i in mod.imports if i.target in modules}) for m, mod in modules.items()}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan (recursive: the graph has under 100 modules)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                found.append(sorted(comp))

    for v in sorted(modules):
        if v not in index:
            visit(v)
    out = []
    for comp in found:
        arrows = [f"{a} -> {b}" for a in comp for b in edges[a] if b in comp]
        out.append(("cycle", comp[0], " ".join(comp), "; ".join(arrows)))
    return out


def is_cli(name: str) -> bool:
    return name == "gensynth.cli" or name.startswith("gensynth.cli.")


def cli_imports(modules: dict[str, Module]) -> list[tuple]:
    """Modules outside gensynth/cli/ (and gensynth/__main__.py, the `python -m` entry point) importing the CLI."""
    out = []
    for m, mod in modules.items():
        if is_cli(m) or m == "gensynth.__main__":
            continue
        for target in sorted({i.target for i in mod.imports if is_cli(i.target)}):
            line = min(i.line for i in mod.imports if i.target == target)
            out.append(("imports-cli", m, target, f"{mod.path.name}:{line}"))
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_names(modules: dict[str, Module]) -> list[tuple]:
    """Underscore names one module takes from another: ``from x import _y`` and ``x._y``."""
    out = []
    for m, mod in modules.items():
        for i in mod.imports:
            if i.target in modules and i.target != m and _private(i.name):
                out.append(("private-name", m, f"{i.target}.{i.name}", f"{mod.path.name}:{i.line}"))
        bound = _module_aliases(mod, modules)
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = _dotted_module(node.value, bound, modules)
                if owner is not None and owner != m:
                    out.append(("private-name", m, f"{owner}.{node.attr}", f"{mod.path.name}:{node.lineno}"))
    return sorted(set(out))


def _module_aliases(mod: Module, modules: dict[str, Module]) -> dict[str, str]:
    """Local names bound to modules of the tree (``import a.b as c``, ``from a import b``)."""
    bound = {}
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules:
                    bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(mod.name, mod.path, node)
            for a in node.names:
                if f"{source}.{a.name}" in modules:
                    bound[a.asname or a.name] = f"{source}.{a.name}"
    return bound


def _dotted_module(node: ast.expr, bound: dict[str, str], modules: dict[str, Module]) -> str | None:
    """The module an expression like ``x`` or ``pkg.sub`` names, through the file's imports."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in bound:
        return None
    dotted = ".".join([bound[node.id], *reversed(parts)])
    return dotted if dotted in modules else None


def benchmarks_in_package(modules: dict[str, Module], packages: list[str]) -> list[tuple]:
    """Benchmark modules inside the package, package modules importing benchmarks or tests,
    and a pyproject package list that ships benchmarks or misses a package folder."""
    out = []
    for m, mod in modules.items():
        if "bench" in m.rsplit(".", 1)[-1]:
            out.append(("benchmark-in-package", m, "a benchmark module inside the package", str(mod.path)))
        for i in mod.imports:
            if i.target.split(".")[0] in ("benchmarks", "tests"):
                out.append(("benchmark-in-package", m, f"imports {i.target}", f"{mod.path.name}:{i.line}"))
    for p in packages:
        if p.split(".")[0] in ("benchmarks", "tests"):
            out.append(("benchmark-in-package", p, "listed in pyproject.toml's packages", "pyproject.toml"))
    folders = {m for m, mod in modules.items() if mod.path.name == "__init__.py"}
    for missing in sorted(folders - set(packages)):
        out.append(("package-list", missing, "package folder missing from pyproject.toml's packages", "pyproject.toml"))
    return out


def long_code(modules: dict[str, Module]) -> list[tuple]:
    """Modules over MAX_MODULE_LINES lines; functions (methods, nested ones) over MAX_FUNCTION_LINES."""
    out = []
    for m, mod in modules.items():
        if mod.lines > MAX_MODULE_LINES:
            out.append(("module-lines", m, "", f"{mod.lines} lines"))
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(("function-lines", m, node.name, f"{mod.path.name}:{node.lineno}, {n} lines"))
    return out


def all_violations(root: Path, tops=TOPS, packages: list[str] | None = None) -> list[tuple]:
    modules = read_tree(root, tops)
    packages = packages if packages is not None else sorted(m for m, mod in modules.items() if mod.path.name == "__init__.py")
    return (import_cycles(modules) + cli_imports(modules) + private_names(modules)
            + benchmarks_in_package(modules, packages) + long_code(modules))


def shipped_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return [p for p in config["packages"] if p not in config.get("package-dir", {})]


def not_allowed(found: list[tuple]) -> list[str]:
    return [f"{rule}: {module}: {detail} ({where})" for rule, module, detail, where in found
            if (rule, module, detail) not in ALLOWED]


# ---------------------------------------------------------------------------------------
# The tree as it is
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree() -> dict[str, Module]:
    return read_tree(ROOT)


def test_the_tree_is_read(tree):
    assert {"gensynth.pipeline", "gensynth.cli.main", "gensynth.warehouse", "models"} <= set(tree)
    assert any(i.target == "gensynth.warehouse" for i in tree["gensynth.pipeline"].imports)


def test_the_import_graph_has_no_cycle(tree):
    assert not_allowed(import_cycles(tree)) == []


def test_only_the_cli_imports_the_cli(tree):
    assert not_allowed(cli_imports(tree)) == []


def test_no_module_uses_another_modules_private_names(tree):
    problems = not_allowed(private_names(tree))
    assert problems == [], "make the name public in the module that owns it:\n" + "\n".join(problems)


def test_no_benchmark_or_test_code_inside_the_installed_package(tree):
    assert not_allowed(benchmarks_in_package(tree, shipped_packages())) == []
    assert (ROOT / "benchmarks" / "__init__.py").is_file()  # benchmarks live beside the package


def test_modules_and_functions_stay_short(tree):
    problems = not_allowed(long_code(tree))
    assert problems == [], "split them:\n" + "\n".join(problems)


def test_the_allow_list_holds_only_live_cases(tree):
    live = {(rule, module, detail) for rule, module, detail, _ in
            import_cycles(tree) + cli_imports(tree) + private_names(tree)
            + benchmarks_in_package(tree, shipped_packages()) + long_code(tree)}
    assert sorted(ALLOWED - live) == [], "these allow-list entries no longer occur: remove them from ALLOWED"


# ---------------------------------------------------------------------------------------
# Every rule fails when broken
# ---------------------------------------------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))


def test_each_rule_catches_what_it_forbids(tmp_path):
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    _write(tmp_path, {
        "gensynth/__init__.py": "",
        "gensynth/cli/__init__.py": "from gensynth.cli.main import app\n",
        "gensynth/cli/main.py": "from gensynth.stage.c import VALUE as app\n",
        "gensynth/stage/__init__.py": "from .a import work\n",
        "gensynth/stage/a.py": "def work():\n    from gensynth.stage import b  # a function-level import closes a cycle\n",
        "gensynth/stage/b.py": "from gensynth.stage.a import work\nfrom gensynth.other import _secret\n",
        "gensynth/stage/c.py": "VALUE = 1\n_hidden = 2\n",
        "gensynth/other.py": ("import gensynth.stage.c as sc\n_secret = 1\n\ndef f():\n    from gensynth.cli import app\n"
                              "    return sc._hidden\n"),
        "gensynth/bench_speed.py": "import benchmarks.build\n",
        "gensynth/big.py": "def long():\n" + long_body + "\n" + "\n" * MAX_MODULE_LINES,
        "models/__init__.py": "",
    })
    found = {(r, m, d) for r, m, d, _ in all_violations(tmp_path, packages=["gensynth", "gensynth.cli", "models"])}
    assert ("cycle", "gensynth.stage.a", "gensynth.stage.a gensynth.stage.b") in found
    assert ("imports-cli", "gensynth.other", "gensynth.cli") in found
    assert not any(r == "imports-cli" and m.startswith("gensynth.cli") for r, m, _ in found)
    assert ("private-name", "gensynth.stage.b", "gensynth.other._secret") in found
    assert ("private-name", "gensynth.other", "gensynth.stage.c._hidden") in found
    assert ("benchmark-in-package", "gensynth.bench_speed", "a benchmark module inside the package") in found
    assert ("benchmark-in-package", "gensynth.bench_speed", "imports benchmarks.build") in found
    assert ("package-list", "gensynth.stage", "package folder missing from pyproject.toml's packages") in found
    assert ("module-lines", "gensynth.big", "") in found
    assert ("function-lines", "gensynth.big", "long") in found
    assert len([r for r, _, _ in found if r == "cycle"]) == 1


# ---------------------------------------------------------------------------------------
# Help stays light
# ---------------------------------------------------------------------------------------

HELP_PROBE = """
import json, sys
sys.argv = ["gensynth", *json.loads(sys.argv[1])]
from gensynth.cli import run
code = 0
try:
    run()
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("PROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize("args", [[], ["solve"], ["split"], ["runs"], ["report"], ["train"], ["eval"], ["sweep"]], ids=lambda a: " ".join(a) or "top")
def test_help_imports_no_heavy_library(args):
    code = HELP_PROBE.replace("set(HEAVY)", repr(set(HEAVY)))
    out = subprocess.run([sys.executable, "-c", code, json.dumps([*args, "--help"])], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "200"})
    probe = [line for line in out.stdout.splitlines() if line.startswith("PROBE ")]
    assert probe, out.stdout + out.stderr
    result = json.loads(probe[-1].removeprefix("PROBE "))
    assert result["code"] == 0 and "Usage" in out.stdout, out.stdout + out.stderr
    assert result["heavy"] == [], f"`gensynth {' '.join(args)} --help` imported {result['heavy']}"
