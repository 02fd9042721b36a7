"""One accounting for every synthesizer: the budget of a task and the meter that charges it.

Every method (enumerative search, model sampling, hybrids, a new module) is charged the
same way, through one :class:`Meter` per task that ``gensynth.synthesis.solve`` creates
when the task starts:

* **Candidates.** Every candidate evaluated on the examples counts once: a program
  applied forwards to value rows (one row = one program), a required value computed by
  running an operator backwards (one row stands for every program with that sibling),
  a model sample (duplicates included: a sample drawn twice is evaluated twice). A
  vectorised batch is charged up to and including its first hit, as if its rows were
  evaluated one at a time in the method's order: the rest was not needed. So "solved
  within c candidates" means the same thing for every method, and a run with budget c
  solves exactly the tasks that a larger run solved within c candidates.
* **Seconds.** The wall clock runs from the task's start: sampling, repair, bank
  building and search are all inside it. Work shared by all tasks of a run (loading a
  model) is charged in equal shares: each task's clock starts that share earlier
  (``Meter(charged_seconds=...)``); the run records the shared seconds
  (``runs.config.accounting``).
* **Limits.** ``--budget-candidates`` and ``--budget-seconds`` bound every method:
  :meth:`Meter.grant` never hands out more than is left and raises
  :class:`OutOfBudget` once either is spent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gensynth.errors import GensynthError


@dataclass(frozen=True)
class Budget:
    """Limits of one task: candidate evaluations, wall seconds, program size."""

    candidates: int = 20_000_000
    """Candidates evaluated on the examples, at most (--budget-candidates)."""
    seconds: float = 60.0
    """Wall seconds from the task's start, at most (--budget-seconds)."""
    max_ops: int = 10
    """Largest program searched, in operators (--max-ops)."""

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.seconds <= 0 or self.max_ops < 0:
            raise GensynthError(
                f"The search budget must be positive: got candidates={self.candidates}, seconds={self.seconds}, "
                f"max_ops={self.max_ops}. Use e.g. --budget-candidates 1000000 --budget-seconds 10."
            )


class OutOfBudget(Exception):
    """Raised by the meter when the candidates ('budget') or the seconds ('timeout') are spent."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class Meter:
    """Charges one task's work against its budget; shared by every part of a method."""

    def __init__(self, budget: Budget, charged_seconds: float = 0.0, clock=time.perf_counter) -> None:
        self.budget = budget
        self.clock = clock
        self.started = clock() - charged_seconds
        self.candidates = 0

    def elapsed(self) -> float:
        """Seconds since the task started (shared work's share included)."""
        return self.clock() - self.started

    @property
    def left(self) -> int:
        """Candidates still available."""
        return self.budget.candidates - self.candidates

    def check_time(self) -> None:
        """Raise OutOfBudget('timeout') when the seconds are spent."""
        if self.elapsed() > self.budget.seconds:
            raise OutOfBudget("timeout")

    def grant(self, rows: int) -> int:
        """Charge up to ``rows`` candidates; return how many may be evaluated (>= 1 when rows >= 1).

        Raises OutOfBudget when nothing is left or the time is up. Callers evaluate only
        the first granted rows, in their own order.
        """
        self.check_time()
        if rows <= 0:
            return 0
        if self.left <= 0:
            raise OutOfBudget("budget")
        n = min(rows, self.left)
        self.candidates += n
        return n

    def spend(self, rows: int) -> None:
        """Charge exactly ``rows`` candidates, or raise OutOfBudget without charging any."""
        self.check_time()
        if rows > self.left:
            raise OutOfBudget("budget")
        self.candidates += rows

    def charge_seconds(self, seconds: float) -> None:
        """Charge work done earlier on this task's behalf (a cached bank level's build time)."""
        self.started -= seconds
        self.check_time()

    def settle(self, granted: int, used: int) -> None:
        """A batch of ``granted`` rows stopped at a hit after ``used`` rows: the rest is not charged."""
        if not 0 <= used <= granted:
            raise ValueError(f"used {used} of {granted} granted rows")
        self.candidates -= granted - used
