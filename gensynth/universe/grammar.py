"""Grammar files: a declarative TOML description of the program language.

A grammar names the leaves (variables and rational constants), the operators (token,
arity, the numpy ufunc that evaluates them) and the input grid. ``load_grammar`` reads
and validates a file; every problem found is reported together in one error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path

import numpy as np

from gensynth.errors import GensynthError
from gensynth.universe.exact_ops import EXTENDED_UFUNCS

# Operators (by the ufunc's own name: np.true_divide is divide, np.mod is remainder) whose
# value at rational inputs gensynth computes exactly (gensynth.universe.rational and
# .exact_ops, which justifies each); any other numpy ufunc is evaluated in float64 and
# its values classed by rounding.
EXACT_UFUNCS = frozenset(
    {"add", "subtract", "multiply", "divide", "negative", "absolute", "square", "sqrt"}
) | EXTENDED_UFUNCS
# Operators whose two arguments may be swapped without changing the value: the
# evaluator computes op(a, b) and op(b, a) once (fmax/fmin too: each ignores an undefined operand).
COMMUTATIVE_UFUNCS = frozenset({"add", "multiply", "maximum", "minimum", "fmax", "fmin", "hypot"})
# Characters that would make prefix text ambiguous or break the infix parser.
FORBIDDEN_TOKEN_CHARS = set(" \t\n(),")
# The model's special tokens (PAD, BOS, EOS in models/pbe_transformer.py) as text, and the
# placeholder gensynth.learning.predictions writes for one: a grammar token spelled like
# them would make a decoded special token read as a program.
RESERVED_TOKENS = frozenset({"<pad>", "<bos>", "<eos>", "<special>"})
# Keys a grammar file may use, per level.
TOP_KEYS = ("name", "variables", "constants", "operators", "grid")
OPERATOR_KEYS = ("token", "arity", "numpy")
AXIS_KEYS = ("start", "stop", "num", "values")
# Grid points a grammar may have: every function stores one value per point.
MAX_GRID_POINTS = 4096


@dataclass(frozen=True)
class Operator:
    """One operator: its prefix token, arity (1 or 2) and numpy ufunc name."""

    token: str
    arity: int
    numpy: str

    @property
    def ufunc(self) -> np.ufunc:
        """The numpy ufunc that evaluates this operator in float64."""
        return getattr(np, self.numpy)

    @property
    def exact(self) -> bool:
        """Whether gensynth evaluates this operator exactly over the rationals."""
        return self.ufunc.__name__ in EXACT_UFUNCS

    @property
    def commutative(self) -> bool:
        """Whether op(a, b) == op(b, a) for every a, b."""
        return self.arity == 2 and self.ufunc.__name__ in COMMUTATIVE_UFUNCS


@dataclass(frozen=True)
class Grammar:
    """A validated grammar. Symbol ids: variables, then constants, then operators."""

    name: str
    variables: tuple[str, ...]
    constants: tuple[Fraction, ...]
    constant_tokens: tuple[str, ...]
    operators: tuple[Operator, ...]
    grid_axes: tuple[tuple[Fraction, ...], ...]
    source_text: str

    @property
    def leaf_tokens(self) -> tuple[str, ...]:
        """Tokens of the leaves in symbol-id order (variables first)."""
        return self.variables + self.constant_tokens

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every token in symbol-id order: leaves, then operators."""
        return self.leaf_tokens + tuple(op.token for op in self.operators)

    @property
    def arities(self) -> tuple[int, ...]:
        """Arity of each symbol, in symbol-id order (0 for leaves)."""
        return (0,) * len(self.leaf_tokens) + tuple(op.arity for op in self.operators)

    @property
    def n_leaves(self) -> int:
        """Number of leaf symbols."""
        return len(self.leaf_tokens)

    @property
    def grid_points(self) -> list[tuple[Fraction, ...]]:
        """The grid as a list of points, one coordinate per variable (first varies slowest)."""
        return list(itertools.product(*self.grid_axes))

    @property
    def n_points(self) -> int:
        """Number of grid points."""
        return int(np.prod([len(a) for a in self.grid_axes]))

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON form: equal grammars hash equal whatever the file's layout."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def to_json(self) -> str:
        """Canonical JSON of the grammar (what ``meta`` records)."""
        return json.dumps(
            {
                "name": self.name,
                "variables": list(self.variables),
                "constants": [[t, str(v)] for t, v in zip(self.constant_tokens, self.constants)],
                "operators": [[o.token, o.arity, o.numpy] for o in self.operators],
                "grid": {v: [str(p) for p in a] for v, a in zip(self.variables, self.grid_axes)},
            },
            sort_keys=True,
        )

    def grid_json(self) -> str:
        """The grid points as JSON (list of [x, y, ...] float coordinates)."""
        return json.dumps([[float(c) for c in p] for p in self.grid_points])


def default_grammar_path() -> Path:
    """Path of the grammar shipped inside the package."""
    return Path(str(resources.files("gensynth") / "grammars" / "default.toml"))


def load_grammar(path: str | Path | None = None) -> Grammar:
    """Read and validate a grammar TOML file (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else default_grammar_path()
    if not path.is_file():
        raise GensynthError(
            f"Grammar file '{path}' does not exist. Pass an existing TOML file with --grammar, "
            f"or leave the flag out to use the default grammar ({default_grammar_path()})."
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise GensynthError(
            f"Grammar file '{path}' is not UTF-8 text: byte {exc.start} (line {line}) is {raw[exc.start:exc.start + 1]!r}. "
            f"Save the file as UTF-8; see {default_grammar_path()} for a working example."
        ) from None
    # A leading byte-order mark (Windows editors save "UTF-8 with BOM") is an encoding
    # signature, not content: accepted and dropped, so the grammar (and meta's copy of its
    # text) is the same as the file without it. tomllib would call it an invalid statement.
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        stray = text.find("\ufeff")
        hint = (f" Line {text.count(chr(10), 0, stray) + 1} holds an invisible byte-order mark (U+FEFF), which TOML does "
                "not allow inside a file: delete it." if stray >= 0 else "")
        raise GensynthError(
            f"Grammar file '{path}' is not valid TOML: {exc}.{hint} Fix the syntax; "
            f"see {default_grammar_path()} for a working example."
        ) from None
    return parse_grammar(data, text, str(path))


def parse_grammar(data: dict, text: str = "", where: str = "<grammar>") -> Grammar:
    """Validate a parsed grammar dict, collecting every problem into one error."""
    problems: list[str] = []
    _unknown_keys(data, TOP_KEYS, "the grammar", problems)
    variables = _string_list(data.get("variables", []), "variables", problems)
    constant_tokens, constants = _constants(data.get("constants", []), problems)
    operators = _operators(data.get("operators", []), problems)
    grid_axes = _grid(data.get("grid", {}), variables, problems)
    tokens = variables + constant_tokens + [op.token for op in operators]
    for token, count in _counts(tokens).items():
        if count > 1:
            problems.append(f"token '{token}' is defined {count} times; every variable, constant and operator needs its own token")
    for token in tokens:
        if not token or set(token) & FORBIDDEN_TOKEN_CHARS:
            problems.append(f"token {token!r} is empty or contains a space, comma or parenthesis; choose a token without them")
        elif token.lower() in RESERVED_TOKENS:
            problems.append(f"token {token!r} is reserved for the model's special tokens ({', '.join(sorted(RESERVED_TOKENS))}); choose another token")
    _duplicate_values(constant_tokens, constants, "constants", problems)
    n_points = int(np.prod([len(a) for a in grid_axes])) if grid_axes else 0
    if n_points > MAX_GRID_POINTS:
        problems.append(f"the grid has {n_points:,} points, over the cap of {MAX_GRID_POINTS:,} "
                        f"(gensynth.universe.grammar.MAX_GRID_POINTS); use fewer points per variable")
    # Only when none were listed: entries listed but invalid were reported above.
    if not data.get("variables") and not data.get("constants"):
        problems.append("the grammar has no leaves: list at least one entry in `variables` or `constants`")
    if not data.get("operators"):
        problems.append("the grammar has no operators: add at least one [[operators]] table")
    if problems:
        bullet = "\n  - ".join(problems)
        raise GensynthError(f"Grammar '{where}' is invalid:\n  - {bullet}\nFix these entries and run the command again.")
    return Grammar(
        name=str(data.get("name", Path(where).stem)),
        variables=tuple(variables),
        constants=tuple(constants),
        constant_tokens=tuple(constant_tokens),
        operators=tuple(operators),
        grid_axes=tuple(grid_axes),
        source_text=text,
    )


def _unknown_keys(table: dict, known: tuple[str, ...], where: str, problems: list[str]) -> None:
    """Report keys of ``table`` outside ``known``, each with the closest known key."""
    import difflib

    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
            hint = f"did you mean `{close[0]}`?" if close else f"known keys are {', '.join(known)}"
            problems.append(f"unknown key `{key}` in {where}: {hint}")


def _duplicate_values(tokens: list[str], values: list[Fraction], where: str, problems: list[str]) -> None:
    """Report entries of ``where`` that denote a value already listed (e.g. '1' and '2/2')."""
    first: dict[Fraction, str] = {}
    for token, value in zip(tokens, values):
        if value in first:
            problems.append(f"{where} {first[value]!r} and {token!r} are both {value}: keep one of them")
        else:
            first[value] = token


def _counts(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _string_list(value, key: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"`{key}` must be a list of strings, got {value!r}")
        return []
    return list(value)


def _rational(value, where: str, problems: list[str]) -> Fraction | None:
    """Parse an int, a float (taken at its decimal text) or a string like '1/2' into a Fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        problems.append(f"{where}: {value!r} is not a number; write an integer, a decimal or a fraction string like \"1/2\"")
        return None
    try:
        frac = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        problems.append(f"{where}: {value!r} is not a rational number; write an integer, a decimal or a fraction string like \"1/2\"")
        return None
    # Exact evaluation stores numerator and denominator as int64 (gensynth.universe.rational).
    if max(abs(frac.numerator), frac.denominator) >= 2**62:
        problems.append(f"{where}: {value!r} is too large or too finely divided (numerator and denominator must stay below 2**62); use a smaller number")
        return None
    return frac


def _constants(value, problems: list[str]) -> tuple[list[str], list[Fraction]]:
    if not isinstance(value, list):
        problems.append(f"`constants` must be a list of numbers or strings, got {value!r}")
        return [], []
    tokens, values = [], []
    for i, item in enumerate(value):
        frac = _rational(item, f"constants[{i}]", problems)
        if frac is not None:
            tokens.append(str(item))
            values.append(frac)
    return tokens, values


def _operators(value, problems: list[str]) -> list[Operator]:
    if not isinstance(value, list):
        problems.append("`operators` must be an array of tables ([[operators]])")
        return []
    operators = []
    for i, item in enumerate(value):
        where = f"operators[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where} must be a table with token, arity and numpy")
            continue
        _unknown_keys(item, OPERATOR_KEYS, where, problems)
        missing = [k for k in ("token", "arity", "numpy") if k not in item]
        if missing:
            problems.append(f"{where} is missing {', '.join(missing)}")
            continue
        token, arity, name = item["token"], item["arity"], item["numpy"]
        ok = True
        if not isinstance(token, str):
            problems.append(f"{where}.token must be a string, got {token!r}")
            ok = False
        if isinstance(arity, bool) or arity not in (1, 2):
            problems.append(f"{where} ('{token}'): arity must be 1 or 2, got {arity!r}")
            ok = False
        ufunc = getattr(np, name, None) if isinstance(name, str) else None
        if not isinstance(ufunc, np.ufunc):
            problems.append(
                f"{where} ('{token}'): numpy has no ufunc named {name!r}; use a numpy ufunc name such as "
                f"add, subtract, multiply, divide, negative, sqrt, sin, exp"
            )
            ok = False
        elif ok and ufunc.nin != arity:
            problems.append(f"{where} ('{token}'): numpy.{name} takes {ufunc.nin} argument(s) but arity is {arity}")
            ok = False
        elif ok and not _float_elementwise(ufunc):
            problems.append(f"{where} ('{token}'): numpy.{name} is not an elementwise float function returning one value "
                            f"({_ufunc_kind(ufunc)}); use a ufunc with a float64 loop such as add, maximum, floor, sin")
            ok = False
        if ok:
            operators.append(Operator(token=token, arity=int(arity), numpy=name))
    return operators


def _float_elementwise(ufunc: np.ufunc) -> bool:
    """One output, no core dimensions, and a float64 loop (d...d->d)."""
    return ufunc.nout == 1 and ufunc.signature is None and ("d" * ufunc.nin + "->d") in ufunc.types


def _ufunc_kind(ufunc: np.ufunc) -> str:
    if ufunc.nout != 1:
        return f"it returns {ufunc.nout} values"
    if ufunc.signature is not None:
        return f"it works on whole arrays (signature {ufunc.signature})"
    if "d" * ufunc.nin + "->?" in ufunc.types:
        return "it returns booleans"
    return f"it has no float64 loop (its loops: {', '.join(ufunc.types[:6])})"


def _grid(value, variables: list[str], problems: list[str]) -> list[tuple[Fraction, ...]]:
    if not isinstance(value, dict):
        problems.append("`grid` must be a table with one sub-table per variable ([grid.x])")
        return []
    axes = []
    for var in variables:
        spec = value.get(var)
        if not isinstance(spec, dict):
            problems.append(f"grid for variable '{var}' is missing: add a [grid.{var}] table with start, stop, num (or values)")
            continue
        _unknown_keys(spec, AXIS_KEYS, f"grid.{var}", problems)
        axis = _axis(spec, f"grid.{var}", problems)
        if axis is not None and len(set(axis)) < len(axis):
            repeated = sorted({str(a) for a in axis if axis.count(a) > 1})
            problems.append(f"grid.{var} lists the point(s) {', '.join(repeated)} more than once; list each point once")
        if axis is not None and len(axis) == 0:
            problems.append(f"grid.{var} is empty: give num >= 1 or a non-empty `values` list")
        elif axis is not None:
            axes.append(axis)
    extra = set(value) - set(variables)
    if extra:
        problems.append(f"grid has entries for unknown variables {sorted(extra)}; grid keys must be among `variables` {variables}")
    return axes


def _axis(spec: dict, where: str, problems: list[str]) -> tuple[Fraction, ...] | None:
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list):
            problems.append(f"{where}.values must be a list of numbers")
            return None
        parsed = [_rational(v, f"{where}.values[{i}]", problems) for i, v in enumerate(values)]
        return None if None in parsed else tuple(parsed)
    missing = [k for k in ("start", "stop", "num") if k not in spec]
    if missing:
        problems.append(f"{where} needs start, stop and num (or a `values` list); missing {', '.join(missing)}")
        return None
    start = _rational(spec["start"], f"{where}.start", problems)
    stop = _rational(spec["stop"], f"{where}.stop", problems)
    num = spec["num"]
    if isinstance(num, bool) or not isinstance(num, int) or num < 0:
        problems.append(f"{where}.num must be a non-negative integer, got {num!r}")
        return None
    if start is None or stop is None:
        return None
    if num == 1:
        return (start,)
    # numpy.linspace(start, stop, num), computed exactly.
    return tuple(start + (stop - start) * Fraction(i, num - 1) for i in range(num))


def grammar_from_meta(con) -> Grammar:
    """The grammar a warehouse was built from (re-parsed from meta 'grammar_source')."""
    row = con.execute("SELECT value FROM meta WHERE key = 'grammar_source'").fetchone()
    if row is None:
        raise GensynthError("The warehouse's meta has no 'grammar_source'; rebuild it with `gensynth build`.")
    return parse_grammar(tomllib.loads(row[0]), row[0], "<warehouse grammar>")
