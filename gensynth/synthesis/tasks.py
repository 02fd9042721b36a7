"""Targets for the synthesizers: writes ``tasks_beyond`` (sql/beyond_tables.sql) and ``tasks`` (sql/tasks.sql).

* **Beyond the universe.** Programs with N operators (default: the warehouse's max_ops + 1,
  up to 10) are drawn uniformly — every tree of that size equally likely, decoded top
  down for a whole batch at once (operator and split chosen with probability
  proportional to the number of trees each leads to) — evaluated exactly, and kept when
  defined at every grid point and function-disjoint from the warehouse (so no program of
  the universe solves them; their smallest program has more than max_ops operators, at
  most N).
* **Targets users bring** (``gensynth solve --tasks FILE``): formulas (one per line,
  ``name: formula`` or bare) or explicit values per grid point (CSV/Parquet), parsed
  completely before anything is written (``gensynth.synthesis.task_files``), stored in
  ``tasks`` with their exact values and the source file's hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gensynth.errors import GensynthError
from gensynth.limits import MAX_BEYOND_TASKS
from gensynth.universe.functions import PairIndex, leaf_values, row_hashes
from gensynth.universe.grammar import Grammar
from gensynth.universe.programs import count_programs
from gensynth.universe.rational import Evaluator, Values
from gensynth.warehouse import relation_exists, run_sql

@dataclass
class Task:
    """One synthesis task: its exact values on the whole grid and where they came from."""

    program_id: int
    """predictions.program_id: the program (split roles) or task id (tasks_beyond, tasks)."""
    prefix: str
    """The program that defined the task ('' for a task given by values)."""
    exact: Values
    """Exact values at every grid point, one row (den == 0 where undefined)."""
    function_id: int = -1
    """functions.function_id for tasks of a split (seeds the shown points), else -1."""
    offgrid: np.ndarray | None = None
    """float64 values at the run's off-grid points, when the task has a formula; None otherwise."""
    formula: str = ""
    """The formula of a user task ('' otherwise)."""

    @property
    def outputs(self) -> np.ndarray:
        """float64 values on the grid, NaN where undefined."""
        return self.exact.flt[0]



MAX_BEYOND_OPS = 10
USER_VIEW = "tasks"  # predictions.view of runs on user tasks
USER_ROLE = "test_tasks"  # predictions.role of runs on user tasks


# --- uniform random trees, a batch at a time -------------------------------------------

def draw_programs(grammar: Grammar, n_ops: int, count: int, rng: np.random.Generator):
    """``count`` uniformly random trees with exactly ``n_ops`` operators, as node arrays.

    Returns ((sym, left, right, size) over all nodes, children -1 where absent; the root
    node of each tree). Nodes are decoded size class by size class, largest first: every
    node of a class draws its (operator, split) at once, with probability proportional to
    the number of trees each choice leads to, so every tree is equally likely.
    """
    counts = [float(c) for c in count_programs(grammar, n_ops)]
    cap = count * (2 * n_ops + 1)
    sym, size = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    left, right = np.full(cap, -1, np.int64), np.full(cap, -1, np.int64)
    size[:count] = n_ops
    used = count
    for m in range(n_ops, -1, -1):
        nodes = np.flatnonzero(size[:used] == m)
        if m == 0:
            sym[nodes] = rng.integers(0, grammar.n_leaves, len(nodes))
            continue
        table, weights = _ways(grammar, m, counts)
        pick = np.minimum(np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(len(nodes)), side="right"),
                          len(table) - 1)
        sym[nodes] = table[pick, 0]
        for col, child in ((1, left), (2, right)):
            sizes = table[pick, col]
            has = sizes >= 0
            ids = used + np.arange(int(has.sum()))
            used += len(ids)
            child[nodes[has]] = ids
            size[ids] = sizes[has]
    return (sym[:used], left[:used], right[:used], size[:used]), np.arange(count)


def _ways(grammar: Grammar, m: int, counts: list[float]):
    """Every (symbol, left size, right size) building a tree of size m, with its number of trees."""
    choices, weights = [], []
    for k, op in enumerate(grammar.operators):
        s = grammar.n_leaves + k
        if op.arity == 1:
            choices.append((s, m - 1, -1))
            weights.append(counts[m - 1])
        else:
            for i in range(m):
                choices.append((s, i, m - 1 - i))
                weights.append(counts[i] * counts[m - 1 - i])
    return np.array(choices, np.int64), np.array(weights)


def evaluate_nodes(grammar: Grammar, nodes) -> Values:
    """Exact values of every node (on the whole grid), smallest nodes first, one batch per operator and size."""
    sym, left, right, size = nodes
    leaves = leaf_values(grammar)
    g = leaves.num.shape[1]
    out = Values(np.zeros((len(sym), g), np.int64), np.ones((len(sym), g), np.int64), np.zeros((len(sym), g)))
    ev = Evaluator()
    for m in range(int(size.max()) + 1):
        at = np.flatnonzero(size == m)
        for s in np.unique(sym[at]):
            rows = at[sym[at] == s]
            if m == 0:
                part = leaves.take(np.full(len(rows), s))
            else:
                op = grammar.operators[int(s) - grammar.n_leaves]
                args = [out.take(left[rows])] + ([out.take(right[rows])] if op.arity == 2 else [])
                part = ev.apply(op, *args)
            out.num[rows], out.den[rows], out.flt[rows] = part.num, part.den, part.flt
    return out


def prefix_texts(grammar: Grammar, nodes, roots: np.ndarray) -> list[str]:
    """Prefix text of each root, built size class by size class with vectorised string joins."""
    sym, left, right, size = nodes
    tokens = np.array(grammar.symbols, dtype=object)
    text = np.empty(len(sym), dtype=object)
    for m in range(int(size.max()) + 1):
        at = np.flatnonzero(size == m)
        t = tokens[sym[at]]
        if m > 0:
            t = t + " " + text[left[at]]
            two = right[at] >= 0
            t[two] = t[two] + " " + text[right[at][two]]
        text[at] = t
    return list(text[roots])


def check_task_count(n_tasks: int) -> None:
    """Refuse, before any work, a task count below 1 or above ``MAX_BEYOND_TASKS`` (gensynth.limits)."""
    if n_tasks < 1:
        raise GensynthError(f"--tasks must be >= 1, got {n_tasks}.")
    if n_tasks > MAX_BEYOND_TASKS:
        raise GensynthError(
            f"--tasks {n_tasks:,} is more than the cap of {MAX_BEYOND_TASKS:,} tasks beyond the universe (each draw "
            f"round evaluates 4 random programs per task). Use --tasks {MAX_BEYOND_TASKS:,} or fewer."
        )


def make_beyond_tasks(con, grammar: Grammar, n_tasks: int, seed: int = 0, n_ops: int | None = None) -> int:
    """Draw up to ``n_tasks`` tasks of ``n_ops`` operators (default max_ops + 1) into ``tasks_beyond``; return how many."""
    max_ops = int(con.execute("SELECT value FROM meta WHERE key = 'max_ops'").fetchone()[0])
    n_ops = max_ops + 1 if n_ops is None else n_ops
    check_task_count(n_tasks)
    if not max_ops < n_ops <= MAX_BEYOND_OPS:
        raise GensynthError(f"--ops must be more than the warehouse's max_ops ({max_ops}) and at most {MAX_BEYOND_OPS}, "
                            f"got {n_ops}: tasks beyond the universe have more operators than any program in it.")
    cols = con.execute("SELECT value_hash, value_hash2 FROM functions").fetchnumpy()
    known = np.stack([np.asarray(cols["value_hash"], np.int64), np.asarray(cols["value_hash2"], np.int64)], 1)
    prefixes, outputs, hashes = draw_beyond(grammar, n_ops, n_tasks, known, seed)
    run_sql(con, "beyond_tables.sql")
    if prefixes:  # a small grammar may have no new function of that size
        con.executemany("INSERT INTO tasks_beyond VALUES (?, ?, ?, ?, ?, ?)",
                        [(i, p, n_ops, o, h1, h2) for i, (p, o, (h1, h2)) in enumerate(zip(prefixes, outputs, hashes))])
    return len(prefixes)


def draw_beyond(grammar: Grammar, n_ops: int, n_tasks: int, known: np.ndarray, seed: int = 0):
    """(prefixes, outputs, (value_hash, value_hash2) pairs) of up to n_tasks defined, distinct functions not in ``known``.

    ``known`` is an (F, 2) int64 array of both hash halves of the warehouse's functions: a
    function's identity is the pair, so both halves are compared.
    """
    rng = np.random.default_rng([seed, n_ops])
    known_index = PairIndex()
    known_index.add(np.ascontiguousarray(known[:, 0]).view(np.uint64), np.ascontiguousarray(known[:, 1]).view(np.uint64),
                    np.arange(len(known), dtype=np.int64))
    kept_h1, kept_h2, prefixes, outputs = np.empty(0, np.int64), np.empty(0, np.int64), [], []
    for _ in range(50):  # rounds of draws; most draws are new functions at these sizes
        nodes, roots = draw_programs(grammar, n_ops, 4 * n_tasks, rng)
        values = evaluate_nodes(grammar, nodes).take(roots)
        h1, h2 = (h.view(np.int64) for h in row_hashes(values))
        in_universe = known_index.lookup(h1.view(np.uint64), h2.view(np.uint64)) >= 0
        cand = np.flatnonzero((values.den > 0).all(axis=1) & ~in_universe)
        # distinct functions (both hash halves compared), not drawn before, in draw order
        pairs = np.concatenate([np.stack([kept_h1, kept_h2], 1), np.stack([h1[cand], h2[cand]], 1)])
        _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        fresh = first[inverse.ravel()][len(kept_h1):] == np.arange(len(kept_h1), len(pairs))
        take = cand[fresh][: n_tasks - len(prefixes)]
        prefixes += prefix_texts(grammar, nodes, roots[take])
        outputs += values.flt[take].tolist()
        kept_h1, kept_h2 = np.concatenate([kept_h1, h1[take]]), np.concatenate([kept_h2, h2[take]])
        if len(prefixes) >= n_tasks:
            break
    return prefixes, outputs, list(zip(kept_h1.tolist(), kept_h2.tolist()))


# --- reading tasks for solve -----------------------------------------------------------

def beyond_rows(con, limit: int) -> list[tuple]:
    """(task_id, prefix, -1) of the first ``limit`` tasks of ``tasks_beyond``, in hashed order."""
    if not relation_exists(con, "tasks_beyond", kind="table"):
        raise GensynthError("This warehouse has no `tasks_beyond` table; create it with `gensynth beyond --tasks 200`.")
    return con.execute("SELECT task_id, prefix, -1 FROM tasks_beyond ORDER BY hash(task_id), task_id LIMIT ?",
                       [limit]).fetchall()


def tasks_of_programs(rows: list[tuple], grammar: Grammar) -> list:
    """Tasks of (id, prefix, function_id) rows: each program evaluated exactly on the whole grid."""
    from gensynth.universe.syntax import evaluate_trees, parse_prefix

    if not rows:
        return []
    values = evaluate_trees([parse_prefix(r[1], grammar) for r in rows], grammar)
    return [Task(int(r[0]), r[1], values.take(np.array([i])), int(r[2])) for i, r in enumerate(rows)]


def offgrid_values(tasks: list, grammar: Grammar, points: np.ndarray) -> None:
    """Fill each task's float64 values at the off-grid points, where it has a defining program or formula."""
    from gensynth.synthesis.formulas import evaluate_formula_float, parse_formula
    from gensynth.universe.syntax import evaluate_float, parse_prefix

    for task in tasks:
        if task.offgrid is not None:
            continue
        if task.prefix:
            task.offgrid = evaluate_float(parse_prefix(task.prefix, grammar), grammar, points)
        elif getattr(task, "formula", ""):
            task.offgrid = evaluate_formula_float(parse_formula(task.formula, grammar), points)


def role_of(config) -> str:
    """predictions.role of a solve run's tasks: the split's role, test_beyond or test_tasks."""
    if config.view == "tasks_beyond":
        return "test_beyond"
    return USER_ROLE if config.view == USER_VIEW else config.role
