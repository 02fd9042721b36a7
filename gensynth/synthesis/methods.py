"""The synthesizer interface: a method is one module implementing :class:`Synthesizer`.

A method solves one task at a time within a shared :class:`~gensynth.synthesis.budget.Meter`
(every method is charged the same way, see ``gensynth.synthesis.budget``) and returns an
:class:`Attempt`. It registers itself by name with :func:`register`; ``gensynth solve
--method NAME`` and the analysis views (which read ``runs.config.method``) pick it up
with no other edit. Methods are found in three places: every module of the
``gensynth.synthesis`` package (the built-ins: ``enumerative``, ``sample_verify``,
``hybrid``), the ``gensynth.synthesizers`` entry-point group of installed packages, and
anything registered in-process before ``gensynth.synthesis.solve.solve`` runs.

A minimal method::

    from gensynth.synthesis.methods import Attempt, register

    @register
    class Leaves:
        name = "leaves"           # --method leaves
        needs_model = False       # True: gets context.model (a gensynth.synthesis.neural.Proposer)

        def __init__(self, context):
            self.grammar = context.grammar

        def solve(self, problem, meter):
            n = meter.grant(self.grammar.n_leaves)   # charge the candidates it evaluates
            ...
            return Attempt(tree=None, status="exhausted")
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from gensynth.errors import GensynthError
from gensynth.synthesis.budget import Meter
from gensynth.universe.grammar import Grammar
from gensynth.universe.rational import Values

ENTRY_POINT_GROUP = "gensynth.synthesizers"


@dataclass
class Problem:
    """What a method may see of one task: the examples, never the answer."""

    task_id: int
    """predictions.program_id of the task."""
    grammar: Grammar
    """The grammar programs are written in."""
    points: np.ndarray
    """Indices of the shown grid points (the examples), ascending."""
    target: Values
    """The target's exact values at the shown points (one row; den == 0 where undefined)."""
    outputs: np.ndarray
    """float64 values at every grid point, NaN where undefined or not shown (what a model reads)."""

    @property
    def shown(self) -> np.ndarray:
        """Boolean mask of the shown points over the whole grid."""
        mask = np.zeros(len(self.outputs), bool)
        mask[self.points] = True
        return mask


@dataclass
class Attempt:
    """A method's answer for one task."""

    tree: tuple | None
    """The program found (a tree of gensynth.universe.syntax), None if none."""
    status: str
    """'solved', or why not: 'budget', 'timeout', 'exhausted', ... (a method may add its own)."""
    exact_up_to: int | None = None
    """No program with at most this many operators fits the examples, except a returned one of
    that size or smaller: the returned program is smallest if its size <= exact_up_to + 1. None: no claim."""
    how: str = ""
    """How the answer was reached ('sampled', 'repaired', 'bank', 'meet-in-the-middle', 'spine', ...)."""


@dataclass
class SolveContext:
    """What a method is built with, once per run."""

    config: Any
    """The run's gensynth.synthesis.solve.SolveConfig."""
    grammar: Grammar
    """The warehouse's grammar."""
    model: Any = None
    """A gensynth.synthesis.neural.Proposer for methods with needs_model, else None."""
    cache: dict = field(default_factory=dict)
    """Shared by the run's tasks, for work that depends on no task (a method documents what it keeps)."""


@runtime_checkable
class Synthesizer(Protocol):
    """Solve one task within the meter's budget."""

    name: ClassVar[str]
    needs_model: ClassVar[bool]

    def solve(self, problem: Problem, meter: Meter) -> Attempt:
        """Find a program consistent with ``problem``'s examples; charge ``meter`` for every candidate.

        May raise OutOfBudget (the meter's), which counts as an attempt with that status.
        """
        ...


_REGISTRY: dict[str, type] = {}
_DISCOVERED = False


def register(cls: type) -> type:
    """Class decorator: make a Synthesizer available as ``--method cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise GensynthError(f"Synthesizer {cls.__qualname__} needs a class attribute `name` that is an identifier "
                            f"(used as --method NAME); got {name!r}.")
    if not callable(getattr(cls, "solve", None)) or not isinstance(getattr(cls, "needs_model", None), bool):
        raise GensynthError(f"Synthesizer {cls.__qualname__} must define solve(problem, meter) and a bool `needs_model`.")
    other = _REGISTRY.get(name)
    if other is not None and other is not cls and other.__qualname__ != cls.__qualname__:
        raise GensynthError(f"Two synthesizers are called '{name}': {other.__module__}.{other.__qualname__} and "
                            f"{cls.__module__}.{cls.__qualname__}; rename one.")
    _REGISTRY[name] = cls
    return cls


def _discover() -> None:
    """Import the built-in method modules and installed plugins (once)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    import gensynth.synthesis as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def method_names() -> list[str]:
    """Every registered method, sorted."""
    _discover()
    return sorted(_REGISTRY)


def get_method(name: str) -> type:
    """The registered Synthesizer class called ``name``; a clear error if there is none."""
    _discover()
    if name not in _REGISTRY:
        raise GensynthError(f"--method must be one of {', '.join(sorted(_REGISTRY))} (got {name!r}); "
                            f"a new method is a module that registers a Synthesizer (gensynth.synthesis.methods).")
    return _REGISTRY[name]


def consistent(trees: list[tuple], problem: Problem) -> np.ndarray:
    """Which trees equal the target exactly at every shown point (cell states compared, not hashes)."""
    from gensynth.universe.syntax import evaluate_trees

    if not trees:
        return np.zeros(0, bool)
    v = evaluate_trees(trees, problem.grammar)
    num, den = v.num[:, problem.points], v.den[:, problem.points]
    return (num == problem.target.num).all(axis=1) & (den == problem.target.den).all(axis=1)
