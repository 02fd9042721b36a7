"""Enumerative synthesis to 10 operators: a bank, meet in the middle, and deduction along a spine.

Given only a grammar and a task's examples (exact values at some grid points), find a
smallest program consistent with them. It never reads a warehouse.

The search goes by program size n = 0, 1, 2, ...; each size is settled before the next,
so the first program found is a smallest one, and a search stopped by its budget still
says how far it proved that nothing smaller exists (``exact_up_to``).

* **Bank.** Every observationally distinct value of the programs up to k operators on
  the shown points (``gensynth.synthesis.bank``): residue levels up to R, and possibly a
  key level R + 1 holding only hashes. Size n <= k is one lookup.
* **Meet in the middle.** A program of size n is ``op(a, r)``: for every root operator,
  every side and every banked sibling ``a`` of size s, the value ``r = op^-1(t, a)`` the
  other child needs is computed (vectorised over the whole bank level: for + and - the
  keys of r are sums of keys, for * and / one matrix product) and looked up by key among
  banked values of size n - 1 - s. This settles every program whose root children both
  fit the bank (up to 2k + 1 operators).
* **Deduction along a spine.** When the needed child is larger than the bank, it is
  itself a requirement: ``r = op'^-1(r, a')`` again, with small siblings, to any depth,
  keeping only requirements that are defined and deduplicating equal ones. Always
  recursing into the larger child reaches every program of size n <= 2R + 2 with sibling
  sizes <= R, so each size is settled exhaustively; it reaches Horner-form polynomials
  and other long programs with small siblings at little cost.
* **Exactness.** Cells where a requirement is not determined (``t = a * r`` where ``a``
  is 0) are left out of its key (a care mask), never guessed; every hit is re-evaluated
  exactly (``gensynth.universe.rational``) and compared cell by cell with the target.
* **Cost-driven plan.** Before settling size n the search estimates the candidates with
  the current bank and with one more level (its build cost included) and takes the
  cheaper, within the memory budget.

Grammars with other operators (sqrt, abs, max, float ufuncs), and targets undefined at a
shown point, go to the exact bottom-up engine (``gensynth.synthesis.bottom_up``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gensynth.synthesis import field
from gensynth.synthesis.bank import PAIRS, Bank, bank_for
from gensynth.synthesis.bottom_up import SearchResult, exact_target, solve_bottom_up, tree_size
from gensynth.synthesis.budget import Budget, Meter, OutOfBudget
from gensynth.synthesis.field import P
from gensynth.synthesis.methods import Attempt, Problem, SolveContext, register
from gensynth.universe.grammar import Grammar
from gensynth.universe.rational import Values

__all__ = ["Budget", "DeductiveSearch", "SearchResult", "exact_target", "solve_enumerative", "tree_size"]

MEMORY_BYTES = 2.5e9  # default bank memory budget of one search
LEFT, RIGHT = 0, 1  # where the banked sibling sits
FILL_HITS = 4096  # a hole's lookup verifies at most this many banked programs (few care cells match many)


def _identity(tree: tuple) -> tuple:
    return tree


@dataclass
class State:
    """Requirements that share a care mask and a remaining size: 'a program of size m with these values'."""

    rows: np.ndarray  # (F, G) residues the subprogram must take (0 off the care cells)
    care: np.ndarray  # (G,) bool: cells the requirement determines
    m: int  # operators the subprogram has
    trail: int  # index of this state in DeductiveSearch.trail (how its rows were derived)


class Found(Exception):
    """A verified program: unwinds the search."""

    def __init__(self, tree: tuple, how: str) -> None:
        self.tree, self.how = tree, how


class DeductiveSearch:
    """Size-by-size search for one target on one grammar (field operators only) and set of points."""

    def __init__(self, grammar: Grammar, points: np.ndarray, meter: Meter, memory_bytes: float = MEMORY_BYTES) -> None:
        self.grammar = grammar
        self.points = np.asarray(points, np.int64)
        self.meter = meter
        self.bank: Bank = bank_for(grammar, self.points, memory_bytes)
        self.paid = 0  # bank levels charged to this task
        self.ops = [(grammar.n_leaves + k, op) for k, op in enumerate(grammar.operators)]
        self.exact_up_to: int | None = None
        self.complete = True
        self.outer = _identity  # wraps a found subprogram into the whole program (hole filling)
        self.deep = True  # deduction along spines (False: meet in the middle only)

    # --- the size loop --------------------------------------------------------------

    def start(self, target: Values) -> None:
        """Set the target (exact, one row, defined at every shown point); bank level 0."""
        self.target = target
        self.t_res = field.residues(target)
        if self.paid == 0:
            self.paid = self.bank.charge(0, 0, self.meter)

    def solve(self, target: Values) -> SearchResult:
        """Smallest program equal to ``target`` (exact, one row, defined at every shown point)."""
        self.start(target)
        self.outer, self.deep = _identity, True
        try:
            for n in range(self.meter.budget.max_ops + 1):
                self._plan(n)
                tree, how = self._settle(n)
                if tree is not None:
                    return self._result(tree, "solved", how)
                if self.complete:
                    self.exact_up_to = n
        except OutOfBudget as stop:
            return self._result(None, stop.status)
        except Found as hit:
            return self._result(hit.tree, "solved", hit.how)
        return self._result(None, "exhausted")

    def _result(self, tree, status: str, how: str = "") -> SearchResult:
        from gensynth.universe.syntax import to_prefix

        prefix = to_prefix(tree, self.grammar) if tree is not None else None
        return SearchResult(prefix, status, self.meter.candidates, self.meter.elapsed(),
                            tree_size(tree) if tree is not None else None, exact_up_to=self.exact_up_to, how=how)

    @property
    def K(self) -> int:
        """Largest size banked for this task."""
        return self.paid - 1

    @property
    def R(self) -> int:
        """Largest size banked with residues (siblings come from these levels)."""
        return min(self.K, self.bank.residue_levels - 1)

    def _settle(self, n: int) -> tuple[tuple | None, str]:
        if n <= self.K:
            gid = self.bank.find(self._keys(self.t_res, None))
            self.meter.spend(1)
            if gid[0] >= 0 and self.bank.level_of(gid)[0] == n:
                return self.bank.tree(int(gid[0])), "bank"
            return None, ""
        self.complete = True
        self.trail = [None]
        self.seen: dict[tuple, np.ndarray] = {}
        self._expand(State(self.t_res, np.ones(len(self.points), bool), n, 0))
        return None, ""

    # --- planning -----------------------------------------------------------------------

    def _sizes(self, k: int) -> list[int]:
        """Level sizes up to k: exact where banked, the upper bound 'operator applications' beyond."""
        sizes = [len(lv) for lv in self.bank.levels[: k + 1]]
        return sizes

    def _cost(self, n: int, sizes: list[int], R: int) -> float:
        """Upper bound on the candidates settling size n takes with these level sizes (no dedup, no pruning)."""
        K = len(sizes) - 1
        memo: dict[int, float] = {}

        def cost(m: int) -> float:
            if m in memo:
                return memo[m]
            total = 0.0
            for _, op in self.ops:
                if op.arity == 1:
                    total += 1 + (cost(m - 1) if m - 1 > K else 0)
                    continue
                sides = 1 if op.commutative else 2
                for s in range(min(R, (m - 1) // 2) + 1):
                    u = m - 1 - s
                    total += sides * sizes[s] * (1 + (cost(u) if u > K else 0))
            memo[m] = total
            return total

        return 1.0 if n <= K else cost(n)

    def bank_up_to(self, k: int) -> None:
        """Make bank levels up to size k available (built or charged), within the memory budget."""
        while self.K < k:
            nxt = self.K + 1
            residues = nxt < len(self.bank.levels) and self.bank.levels[nxt].res is not None or \
                nxt >= len(self.bank.levels) and self.R == self.K and self.bank.fits(nxt, residues=True)
            if not residues:
                return
            self.paid = self.bank.charge(nxt, self.paid, self.meter)

    def fill(self, rows: np.ndarray, care: np.ndarray, max_m: int, outer, deep: bool) -> tuple | None:
        """A program for a hole: a subprogram of at most ``max_m`` operators with these values on the care cells
        such that ``outer(subprogram)`` equals the target exactly; None if there is none that this search reaches.

        Sizes up to the bank by one lookup, larger ones by meet in the middle (and spines if ``deep``).
        """
        self.outer, self.deep = outer, deep
        try:
            if max_m >= 0:
                q, gid = self.bank.find_all(self._keys(rows, care), care, min(max_m, self.K))
                self.meter.spend(1)
                trees = [self.outer(self.bank.tree(int(g))) for g in gid[:FILL_HITS]]
                ok = self._verify(trees)
                if ok.any():
                    return trees[int(np.argmax(ok))]
            for m in range(self.K + 1, max_m + 1):
                self.trail, self.seen = [None], {}
                self._expand(State(rows, care, m, 0))
        except Found as hit:
            return hit.tree
        finally:
            self.outer, self.deep = _identity, True
        return None

    def lookup_many(self, rows: np.ndarray, cares: np.ndarray, limits: np.ndarray, outers: list) -> tuple | None:
        """Holes at once: the first i (in order) with a banked program of size <= limits[i] matching rows[i] on
        cares[i] such that outers[i](program) equals the target; one candidate per hole, up to that one."""
        granted = self.meter.grant(len(rows))
        hits_q, hits_g = [], []
        patterns, inverse = np.unique(cares[:granted], axis=0, return_inverse=True)
        for k, care in enumerate(patterns):
            idx = np.flatnonzero(inverse.ravel() == k)
            q, gid = self.bank.find_all(self._keys(rows[idx], care), care, self.K)
            ok = self.bank.level_of(gid) <= limits[idx[q]]
            hits_q.append(idx[q[ok]])
            hits_g.append(gid[ok])
        q, gid = np.concatenate(hits_q), np.concatenate(hits_g)
        order = np.argsort(q, kind="stable")
        q, gid = q[order][:FILL_HITS], gid[order][:FILL_HITS]
        for lo in range(0, len(q), 256):
            trees = [outers[int(i)](self.bank.tree(int(g))) for i, g in zip(q[lo:lo + 256], gid[lo:lo + 256])]
            ok = self._verify(trees)
            if ok.any():
                k = int(np.argmax(ok))
                self.meter.settle(granted, int(q[lo + k]) + 1)
                return trees[k]
        if granted < len(rows):
            raise OutOfBudget("budget")
        return None

    def _plan(self, n: int) -> None:
        """Bank more levels while that is cheaper (in candidates) for settling size n, within memory."""
        while n > self.K:
            nxt, levels = self.K + 1, self.bank.levels
            if nxt < len(levels):
                residues, apps = levels[nxt].res is not None, levels[nxt].cost
            elif self.R == self.K and self.bank.fits(nxt, residues=True):
                residues, apps = True, self.bank.applications(nxt)
            elif self.R == self.K and self.bank.fits(nxt, residues=False):
                residues, apps = False, self.bank.applications(nxt)
            else:
                return  # out of memory budget: settle with what is banked
            sizes = self._sizes(self.K)
            now = self._cost(n, sizes, self.R)
            later = apps + self._cost(n, sizes + [self._estimate(nxt, apps)], self.R + 1 if residues else self.R)
            if later >= now:
                return
            self.paid = self.bank.charge(nxt, self.paid, self.meter, residues=residues)

    def _estimate(self, n: int, apps: int) -> int:
        """Size of level n: exact if banked, else the distinct share measured one level below."""
        if n < len(self.bank.levels):
            return len(self.bank.levels[n])
        below = self.bank.levels[n - 1]
        share = len(below) / max(below.cost, 1)
        return int(apps * share)

    # --- keys --------------------------------------------------------------------------

    def _keys(self, rows: np.ndarray, care: np.ndarray | None) -> np.ndarray:
        return self.bank.forms.keys(rows, care)

    def _side_keys(self, s: int, care: np.ndarray) -> np.ndarray:
        lv = self.bank.levels[s]
        return lv.keys if care.all() else self.bank.forms.keys(lv.res, care)

    # --- expansion ---------------------------------------------------------------------

    def _limit(self, care: np.ndarray) -> int:
        """Largest size a requirement with this care mask can be looked up at."""
        return self.K if care.all() else self.R

    def _expand(self, state: State) -> None:
        """Settle 'a program of size state.m with value state.rows[f]' for every f: terminals first."""
        m = state.m
        if (m - 1) // 2 > self.R:
            self.complete = False  # siblings larger than the residue levels are not tried
        moves = []
        for sym, op in self.ops:
            if op.arity == 1:
                moves.append((sym, op, LEFT, None, m - 1))
                continue
            for s in range(min(self.R, (m - 1) // 2) + 1):
                for pos in ((LEFT,) if op.commutative else (LEFT, RIGHT)):
                    moves.append((sym, op, pos, s, m - 1 - s))
        limit = self._limit(state.care)
        for sym, op, pos, s, u in moves:  # first every move whose needed child is banked
            if u <= limit:
                self._terminal(state, sym, op, pos, s, u)
        for sym, op, pos, s, u in moves:
            if u > limit:
                if not self.deep:
                    self.complete = False
                    continue
                self._deeper(state, sym, op, pos, s, u)

    def _blocks(self, n_rows: int, n_side: int):
        """Row blocks of a state so that one block times the sibling level is about PAIRS pairs."""
        step = max(1, PAIRS // max(n_side, 1))
        for lo in range(0, n_rows, step):
            yield np.arange(lo, min(n_rows, lo + step))

    def _terminal(self, state: State, sym: int, op, pos: int, s: int | None, u: int) -> None:
        """Every (requirement, sibling) pair: the needed child's key, looked up among sizes <= u."""
        name = op.numpy
        if name == "negative":
            rows = np.where(state.care, (P - state.rows) % P, 0)
            self._lookup(state, sym, pos, None, np.arange(len(rows)), np.zeros(len(rows), np.int64),
                         self._keys(rows, state.care), state.care, u)
            return
        for group, sides, care in self._side_groups(state, name, pos, s):
            for block in self._blocks(len(group), len(sides)):
                f = group[block]
                keys = self._pair_keys(state, name, pos, s, f, sides, care)  # (len(f) * len(sides), L)
                fi = np.repeat(f, len(sides))
                ai = np.tile(sides, len(f))
                self._lookup(state, sym, pos, s, fi, ai, keys, care, u)

    def _lookup(self, state, sym, pos, s, fi, ai, keys, care, u) -> None:
        granted = self.meter.grant(len(keys))
        q, gid = self.bank.find_all(keys[:granted], care, u)
        order = np.argsort(q, kind="stable")  # in pair order: charged up to the first verified hit
        q, gid = q[order], gid[order]
        for lo in range(0, len(q), 256):
            trees = [self._assemble(state, int(fi[i]), sym, pos, s, int(ai[i]), self.bank.tree(int(g)))
                     for i, g in zip(q[lo:lo + 256], gid[lo:lo + 256])]
            ok = self._verify(trees)
            if ok.any():
                k = int(np.argmax(ok))
                self.meter.settle(granted, int(q[lo + k]) + 1)
                raise Found(trees[k], "meet-in-the-middle" if state.trail == 0 else "spine")
        if granted < len(keys):
            raise OutOfBudget("budget")

    def _side_groups(self, state: State, name: str, pos: int, s: int):
        """(requirement rows, sibling rows, care of the needed child) groups for which one key formula holds."""
        lv = self.bank.levels[s]
        everything = np.arange(len(state.rows))
        if name in ("add", "subtract"):
            yield everything, np.arange(len(lv)), state.care
            return
        zeros = lv.zeros() & state.care  # sibling zeros on the care cells
        if name in ("divide", "true_divide") and pos == RIGHT:  # t = r / a: a may have no zero at all
            yield everything, np.flatnonzero(lv.zero_free()), state.care
            return
        t_zero = (state.rows == 0) & state.care
        if name == "multiply":  # t = a * r: where a is 0, t must be 0 and r is free
            clean = ~zeros.any(axis=1)
            yield everything, np.flatnonzero(clean), state.care
            patterns, inverse = np.unique(zeros[~clean], axis=0, return_inverse=True)
            dirty = np.flatnonzero(~clean)
            for k, pat in enumerate(patterns):
                ok = np.flatnonzero(~(pat & ~t_zero).any(axis=1))
                if len(ok):
                    yield ok, dirty[inverse.ravel() == k], state.care & ~pat
            return
        # t = a / r: a is 0 exactly where t is 0 (on the care cells), r is free there
        patterns, inverse = np.unique(t_zero, axis=0, return_inverse=True)
        for k, pat in enumerate(patterns):
            rows = np.flatnonzero(inverse.ravel() == k)
            sides = np.flatnonzero((zeros == pat).all(axis=1))
            if len(sides):
                yield rows, sides, state.care & ~pat

    def _pair_keys(self, state: State, name: str, pos: int, s: int, f: np.ndarray, sides: np.ndarray,
                   care: np.ndarray) -> np.ndarray:
        """Keys (over ``care``) of the child each (requirement f, sibling a) pair needs, f-major."""
        lv = self.bank.levels[s]
        t = state.rows[f]
        if name in ("add", "subtract"):
            kt = self._keys(t, care)[:, None, :]
            ka = self._side_keys(s, care)[sides][None, :, :]
            if name == "add" or pos == RIGHT:  # t = a + r, t = r - a  ->  r = t - a, r = t + a
                k = kt - ka if name == "add" else kt + ka
            else:  # t = a - r  ->  r = a - t
                k = ka - kt
            return (k % P).reshape(-1, field.FORMS)
        if name == "multiply":  # r = t / a
            w, other = self.bank.forms.weighted(t, care), lv.inv()[sides]
        elif pos == LEFT:  # t = a / r  ->  r = a / t
            w, other = self.bank.forms.weighted(field.inverse(t), care), lv.res[sides]
        else:  # t = r / a  ->  r = t * a
            w, other = self.bank.forms.weighted(t, care), lv.res[sides]
        k = field.dot(other, field.halves(w.T))  # (A, F * L)
        return k.reshape(len(sides), len(f), field.FORMS).transpose(1, 0, 2).reshape(-1, field.FORMS)

    def _deeper(self, state: State, sym: int, op, pos: int, s: int | None, u: int) -> None:
        """Form the needed child's values explicitly, deduplicate, and settle them as requirements of size u."""
        name = op.numpy
        if name == "negative":
            groups = [(np.arange(len(state.rows)), None, state.care)]
        else:
            groups = self._side_groups(state, name, pos, s)
        for group, sides, care in groups:
            n_side = 1 if sides is None else len(sides)
            for block in self._blocks(len(group), n_side):
                f = np.repeat(group[block], n_side)
                a = np.zeros(len(f), np.int64) if sides is None else np.tile(sides, len(block))
                granted = self.meter.grant(len(f))
                if granted < len(f):
                    raise OutOfBudget("budget")
                rows = self._needed(state, name, pos, s, f, a, care)
                keep = self._fresh(rows, care, u)
                if keep.any():
                    self.trail.append((state.trail, f[keep], sym, pos, s, a[keep]))
                    self._expand(State(rows[keep], care, u, len(self.trail) - 1))

    def _needed(self, state: State, name: str, pos: int, s, f, a, care) -> np.ndarray:
        """Residue rows of the child each (requirement, sibling) pair needs (0 off the care cells)."""
        t = state.rows[f]
        if name == "negative":
            r = (P - t) % P
        else:
            lv = self.bank.levels[s]
            if name == "add":
                r = field.sub(t, lv.res[a])
            elif name == "subtract":
                r = field.add(t, lv.res[a]) if pos == RIGHT else field.sub(lv.res[a], t)
            elif name == "multiply":
                r = field.mul(t, lv.inv()[a])
            elif pos == LEFT:
                r = field.mul(lv.res[a], field.inverse(t))
            else:
                r = field.mul(t, lv.res[a])
        return np.where(care, r, 0)

    def _fresh(self, rows: np.ndarray, care: np.ndarray, u: int) -> np.ndarray:
        """Rows not seen before as requirements of size u with this care (and unique among themselves)."""
        keys = self._keys(rows, care)
        packed = field.pack(keys) ^ (keys[:, 2] << np.int64(1))
        _, first = np.unique(packed, return_index=True)
        keep = np.zeros(len(rows), bool)
        keep[first] = True
        slot = (u, np.packbits(care).tobytes())
        seen = self.seen.get(slot, np.empty(0, np.int64))
        keep &= ~np.isin(packed, seen)
        self.seen[slot] = np.union1d(seen, packed[keep])
        return keep

    # --- programs ---------------------------------------------------------------------

    def _assemble(self, state: State, f: int, sym: int, pos: int, s, a: int, child: tuple) -> tuple:
        """The whole program: the found child under (sym, sibling), then up the trail to the root."""
        node = self._node(sym, pos, s, a, child)
        trail = state.trail
        while trail:
            parent, rows, psym, ppos, ps, pa = self.trail[trail]
            node = self._node(psym, ppos, ps, int(pa[f]), node)
            f = int(rows[f])
            trail = parent
        return self.outer(node)

    def _node(self, sym: int, pos: int, s, a: int, child: tuple) -> tuple:
        if s is None:
            return (sym, child)
        side = self.bank.tree(self.bank.levels[s].start + a)
        return (sym, side, child) if pos == LEFT else (sym, child, side)

    def _verify(self, trees: list[tuple]) -> np.ndarray:
        """Exact check at the shown points: every cell's state equal to the target's."""
        from gensynth.universe.syntax import evaluate_trees

        if not trees:
            return np.zeros(0, bool)
        v = evaluate_trees(trees, self.grammar)
        return (v.num[:, self.points] == self.target.num).all(axis=1) & (v.den[:, self.points] == self.target.den).all(axis=1)


def solve_enumerative(grammar: Grammar, points: np.ndarray, target, budget: Budget | None = None,
                      meter: Meter | None = None, memory_bytes: float = MEMORY_BYTES) -> SearchResult:
    """Smallest program of ``grammar`` whose values at grid ``points`` equal ``target``.

    ``target``: exact Values (one row) or float64 values (NaN = undefined, recovered as
    exact rationals). Field grammars with a target defined at every shown point get the
    deductive search; anything else the exact bottom-up engine.
    """
    from gensynth.errors import GensynthError

    meter = meter or Meter(budget or Budget())
    points = np.asarray(points, np.int64)
    if not isinstance(target, Values):
        if len(target) != len(points):
            raise GensynthError(f"The target has {len(target)} values but {len(points)} example points were given; "
                                f"pass the target's values at exactly those points.")
        target = exact_target(np.asarray(target, np.float64))
        if target is None:
            return SearchResult(None, "exhausted", 0, meter.elapsed(), how="not a rational target")
    if field.is_field_grammar(grammar) and (target.den > 0).all() and (field.residues(target) < P).all():
        return DeductiveSearch(grammar, points, meter, memory_bytes).solve(target)
    return solve_bottom_up(grammar, points, target, meter)


@register
class Enumerative:
    """Bank + meet in the middle + deduction along a spine, size by size (smallest program first)."""

    name = "enumerative"
    needs_model = False

    def __init__(self, context: SolveContext) -> None:
        self.grammar = context.grammar
        self.memory_bytes = getattr(context.config, "memory_gb", MEMORY_BYTES / 1e9) * 1e9

    def solve(self, problem: Problem, meter: Meter) -> Attempt:
        from gensynth.universe.syntax import parse_prefix

        result = solve_enumerative(self.grammar, problem.points, problem.target, meter=meter, memory_bytes=self.memory_bytes)
        tree = parse_prefix(result.prefix, self.grammar) if result.prefix else None
        return Attempt(tree, result.status, exact_up_to=result.exact_up_to, how=result.how)
