"""Targets users write: infix formulas over a grammar's variables, evaluated exactly on its grid.

A formula uses the grammar's variables, ``+ - * /``, parentheses, unary minus, integer
powers (``x^3``, ``(x + 1)^-2``) and rational literals (``3``, ``1/2``, ``0.5``, ``-3``,
``2.5e-1``); literals need not be constants of the grammar. It is evaluated exactly with
``gensynth.universe.rational`` on every grid point: undefined where a denominator is
exactly zero there. Precedence: ``^`` (right-associative, exponent an integer literal),
then unary minus, then ``* /``, then ``+ -`` (left-associative).

Problems are reported with the line and column, e.g. "line 3, column 7: unknown
variable 'z' (the grammar's variables are x, y)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gensynth.errors import GensynthError
from gensynth.universe.grammar import Grammar, Operator
from gensynth.universe.rational import Evaluator, Values

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<op>[-+*/^()]))")
MAX_POWER = 64  # |exponent| at most: x^64 is already far beyond any grid value the search reaches


class FormulaError(GensynthError):
    """A formula that is not well formed for the grammar; the message names the column."""


@dataclass(frozen=True)
class Node:
    """A parsed formula: op in {'num', 'var', 'neg', '+', '-', '*', '/', '^'}."""

    op: str
    value: Fraction | int | None = None  # literal value, variable index or exponent
    args: tuple = ()


def tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, column) tokens; kinds 'num', 'name', 'op'."""
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise FormulaError(f"column {col}: unexpected character {text[col - 1]!r}; formulas use variables, "
                               f"numbers, + - * / ^ and parentheses")
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, grammar: Grammar) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.variables = list(grammar.variables)
        self.end_col = len(text) + 1

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise FormulaError(f"column {self.end_col}: the formula ends early (an operand or ')' is missing)")
        self.pos += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise FormulaError("column 1: the formula is empty")
        node = self.sum()
        tok = self.peek()
        if tok is not None:
            if tok[1] == ")":
                raise FormulaError(f"column {tok[2]}: unbalanced parentheses: ')' without a matching '('")
            raise FormulaError(f"column {tok[2]}: unexpected {tok[1]!r} after a complete formula (an operator is missing)")
        return node

    def sum(self) -> Node:
        node = self.product()
        while (tok := self.peek()) is not None and tok[1] in "+-" and tok[0] == "op":
            self.take()
            node = Node(tok[1], None, (node, self.product()))
        return node

    def product(self) -> Node:
        node = self.unary()
        while (tok := self.peek()) is not None and tok[1] in "*/" and tok[0] == "op":
            self.take()
            right = self.unary()
            if tok[1] == "/" and _constant(right) == 0:
                raise FormulaError(f"column {tok[2]}: division by a literal zero")
            node = Node(tok[1], None, (node, right))
        return node

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in "+-":
            self.take()
            inner = self.unary()
            return inner if tok[1] == "+" else Node("neg", None, (inner,))
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        tok = self.peek()
        if tok is None or tok[1] != "^":
            return base
        self.take()
        sign, exp = 1, self.take()
        if exp[1] in "+-" and exp[0] == "op":
            sign, exp = (-1 if exp[1] == "-" else 1), self.take()
        if exp[0] != "num" or not exp[1].isdigit():
            raise FormulaError(f"column {exp[2]}: the exponent after '^' must be an integer literal, got {exp[1]!r}")
        k = sign * int(exp[1])
        if abs(k) > MAX_POWER:
            raise FormulaError(f"column {exp[2]}: exponent {k} is too large (at most {MAX_POWER} in absolute value)")
        if k < 0 and _constant(base) == 0:
            raise FormulaError(f"column {exp[2]}: division by a literal zero (0 to a negative power)")
        return Node("^", k, (base,))

    def atom(self) -> Node:
        kind, text, col = self.take()
        if kind == "num":
            return Node("num", Fraction(text))
        if kind == "name":
            if text not in self.variables:
                raise FormulaError(f"column {col}: unknown variable {text!r} (the grammar's variables are "
                                   f"{', '.join(self.variables)})")
            return Node("var", self.variables.index(text))
        if text == "(":
            node = self.sum()
            close = self.peek()
            if close is None or close[1] != ")":
                raise FormulaError(f"column {col}: unbalanced parentheses: '(' is never closed")
            self.take()
            return node
        if text == ")":
            raise FormulaError(f"column {col}: unbalanced parentheses: ')' without a matching '('")
        raise FormulaError(f"column {col}: {text!r} where an operand was expected")


def _constant(node: Node) -> Fraction | None:
    """The exact value of a formula without variables, None if it has any (or is undefined)."""
    if node.op == "num":
        return node.value
    if node.op == "var":
        return None
    vals = [_constant(a) for a in node.args]
    if any(v is None for v in vals):
        return None
    if node.op == "neg":
        return -vals[0]
    if node.op == "^":
        return None if vals[0] == 0 and node.value < 0 else vals[0] ** node.value
    a, b = vals
    if node.op == "/":
        return None if b == 0 else a / b
    return a + b if node.op == "+" else a - b if node.op == "-" else a * b


def parse_formula(text: str, grammar: Grammar) -> Node:
    """Parse one formula; FormulaError names the column of the first problem."""
    return _Parser(text, grammar).parse()


_EXACT = {name: Operator(token=name, arity=1 if name == "negative" else 2, numpy=name)
          for name in ("add", "subtract", "multiply", "divide", "negative")}
_BINARY = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


def evaluate_formula(node: Node, grammar: Grammar) -> Values:
    """Exact values (one row) of a formula at every grid point of the grammar."""
    points = grammar.grid_points
    g = len(points)
    ev = Evaluator()

    def const(c: Fraction) -> Values:
        num = np.full((1, g), c.numerator, np.int64)
        den = np.full((1, g), c.denominator, np.int64)
        return Values(num, den, num / den)

    def rec(n: Node) -> Values:
        if n.op == "num":
            return const(n.value)
        if n.op == "var":
            col = [p[n.value] for p in points]
            num = np.array([[c.numerator for c in col]], np.int64)
            den = np.array([[c.denominator for c in col]], np.int64)
            return Values(num, den, num / den)
        if n.op == "neg":
            return ev.apply(_EXACT["negative"], rec(n.args[0]))
        if n.op == "^":
            base = rec(n.args[0])
            out = const(Fraction(1))
            for _ in range(abs(n.value)):
                out = ev.apply(_EXACT["multiply"], out, base)
            if n.value < 0:
                out = ev.apply(_EXACT["divide"], const(Fraction(1)), out)
            elif n.value == 0:  # x^0 is 1 where x is defined
                out = Values(np.where(base.den == 0, 0, out.num), np.where(base.den == 0, 0, out.den),
                             np.where(base.den == 0, np.nan, out.flt))
            return out
        return ev.apply(_EXACT[_BINARY[n.op]], rec(n.args[0]), rec(n.args[1]))

    return rec(node)


def evaluate_formula_float(node: Node, points: np.ndarray) -> np.ndarray:
    """float64 values of a formula at arbitrary points (P, n_vars): for off-grid checks."""
    with np.errstate(all="ignore"):
        if node.op == "num":
            return np.full(len(points), float(node.value))
        if node.op == "var":
            return points[:, node.value].astype(np.float64)
        if node.op == "neg":
            return -evaluate_formula_float(node.args[0], points)
        if node.op == "^":
            return evaluate_formula_float(node.args[0], points) ** float(node.value)
        a, b = (evaluate_formula_float(x, points) for x in node.args)
        return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[node.op](a, b)
