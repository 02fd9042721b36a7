"""Program text: parsing and printing prefix and infix forms, and exact evaluation of
arbitrary program texts (predictions, search candidates) with the build's evaluator.

A tree is a tuple ``(symbol_id, child, ...)``; a leaf is ``(symbol_id,)``.
"""

from __future__ import annotations

import re

import numpy as np

from gensynth.errors import GensynthError
from gensynth.universe.functions import leaf_values
from gensynth.universe.grammar import Grammar
from gensynth.universe.rational import Evaluator, Values

Tree = tuple


class ParseError(GensynthError):
    """A program text that is not a well-formed program of the grammar."""


def parse_prefix(text: str, grammar: Grammar) -> Tree:
    """Parse space-separated prefix tokens into a tree; ParseError if malformed."""
    index = {tok: i for i, tok in enumerate(grammar.symbols)}
    arity = grammar.arities
    tokens = text.split()
    pos = 0

    def node() -> Tree:
        nonlocal pos
        if pos >= len(tokens):
            raise ParseError(f"prefix program {text!r} ends early: an operator is missing an argument")
        tok = tokens[pos]
        if tok not in index:
            raise ParseError(f"prefix program {text!r}: unknown token {tok!r}")
        pos += 1
        sym = index[tok]
        return (sym, *[node() for _ in range(arity[sym])])

    tree = node()
    if pos != len(tokens):
        raise ParseError(f"prefix program {text!r} has {len(tokens) - pos} extra token(s) after a complete program")
    return tree


def to_prefix(tree: Tree, grammar: Grammar) -> str:
    """Space-separated prefix text of a tree."""
    return " ".join(grammar.symbols[sym] for sym in _preorder(tree))


def _preorder(tree: Tree):
    yield tree[0]
    for child in tree[1:]:
        yield from _preorder(child)


def to_infix(tree: Tree, grammar: Grammar) -> str:
    """Infix text: binary children wrapped in parentheses, unary operators as ``tok(a)``."""
    sym, *kids = tree
    tok = grammar.symbols[sym]
    if not kids:
        return tok
    if len(kids) == 1:
        return f"{tok}({to_infix(kids[0], grammar)})"
    parts = [f"({to_infix(k, grammar)})" if len(k) == 3 else to_infix(k, grammar) for k in kids]
    return f"{parts[0]} {tok} {parts[1]}"


_INFIX_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def parse_infix(text: str, grammar: Grammar) -> Tree:
    """Parse the infix form written by ``to_infix`` (fully parenthesised binary children)."""
    index = {tok: i for i, tok in enumerate(grammar.symbols)}
    arity = grammar.arities
    tokens = _INFIX_TOKEN.findall(text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise ParseError(f"infix program {text!r}: expected {expected or 'a token'} at token {pos}, got {tok!r}")
        pos += 1
        return tok

    def operand() -> Tree:
        tok = take()
        if tok == "(":
            tree = expression()
            take(")")
            return tree
        if tok not in index:
            raise ParseError(f"infix program {text!r}: unknown token {tok!r}")
        sym = index[tok]
        if arity[sym] == 1:
            take("(")
            inner = expression()
            take(")")
            return (sym, inner)
        if arity[sym] != 0:
            raise ParseError(f"infix program {text!r}: binary operator {tok!r} where an operand was expected")
        return (sym,)

    def expression() -> Tree:
        left = operand()
        tok = peek()
        if tok is not None and tok in index and arity[index[tok]] == 2:
            take()
            return (index[tok], left, operand())
        return left

    tree = expression()
    if pos != len(tokens):
        raise ParseError(f"infix program {text!r}: unexpected {tokens[pos]!r} at token {pos}")
    return tree


def evaluate_trees(trees: list[Tree], grammar: Grammar, evaluator: Evaluator | None = None) -> Values:
    """Exact value matrix (len(trees), grid points) of arbitrary trees.

    Distinct subtrees are evaluated once, deepest first, one operator batch at a time, so
    thousands of predictions cost a handful of vectorised calls.
    """
    evaluator = evaluator or Evaluator()
    ids: dict[Tree, int] = {}
    order: list[Tree] = []

    def visit(t: Tree) -> int:
        if t not in ids:
            for child in t[1:]:
                visit(child)
            ids[t] = len(order)
            order.append(t)
        return ids[t]

    roots = [visit(t) for t in trees]
    leaves = leaf_values(grammar)
    g = leaves.num.shape[1]
    out = Values(np.zeros((len(order), g), np.int64), np.ones((len(order), g), np.int64), np.zeros((len(order), g)))
    height = {}
    for t in order:
        height[t] = 0 if len(t) == 1 else 1 + max(height[c] for c in t[1:])
    by_level: dict[tuple[int, int], list[int]] = {}
    for t in order:
        by_level.setdefault((height[t], t[0]), []).append(ids[t])
    for (h, sym), rows in sorted(by_level.items()):
        rows_arr = np.array(rows)
        if h == 0:
            part = leaves.take(np.full(len(rows), sym))
        else:
            op = grammar.operators[sym - grammar.n_leaves]
            kids = [np.array([ids[order[r][k]] for r in rows]) for k in range(1, op.arity + 1)]
            part = evaluator.apply(op, *[out.take(k) for k in kids])
        out.num[rows_arr], out.den[rows_arr], out.flt[rows_arr] = part.num, part.den, part.flt
    return out.take(np.array(roots, dtype=np.int64))


def evaluate_float(tree: Tree, grammar: Grammar, points: np.ndarray) -> np.ndarray:
    """float64 value of one tree at arbitrary points (P, n_vars): for off-grid checks."""
    sym, *kids = tree
    n_vars = len(grammar.variables)
    if not kids:
        if sym < n_vars:
            return points[:, sym].astype(np.float64)
        return np.full(len(points), float(grammar.constants[sym - n_vars]))
    op = grammar.operators[sym - grammar.n_leaves]
    with np.errstate(all="ignore"):
        return op.ufunc(*[evaluate_float(k, grammar, points) for k in kids])
