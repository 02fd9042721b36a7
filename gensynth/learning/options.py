"""The options of `gensynth train`, read from the run configuration's dataclasses (one source).

Each field of ``DataSettings``, ``ModelSpec``, ``TrainSettings``, ``EvalSettings`` and
``RuntimeSettings`` (``gensynth.learning.config``) is one option: its name is the field's
(``--max-steps`` for ``max_steps``), except where two groups share a field name
(``--eval-limit`` for the evaluation's ``limit``); its help is the field's docstring and
its shown default the field's default (a docstring that explains a computed default
says so itself, in ``(default: ...)``). ``gensynth train`` builds its flags from
``train_options()``, and ``gensynth sweep`` builds run configurations with
``run_config`` without going through the command line. Loads no torch.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gensynth.errors import GensynthError
from gensynth.learning import config as cfg

GROUPS = (("data", cfg.DataSettings), ("model", cfg.ModelSpec), ("training", cfg.TrainSettings),
          ("eval", cfg.EvalSettings), ("runtime", cfg.RuntimeSettings))
# Option names that differ from their field (two groups share the field name, or the old flag stays).
RENAMED = {("eval", "roles"): "eval_roles", ("eval", "limit"): "eval_limit", ("eval", "seed"): "eval_seed",
           ("eval", "batch_size"): "eval_batch_size"}


@dataclass(frozen=True)
class Option:
    """One `gensynth train` option."""

    name: str  # config name, e.g. max_steps (sweep files use it); the flag is --max-steps
    group: str  # data, model, training, eval, runtime
    field: str  # the dataclass field it sets
    type: type  # what the command line parses: int, float or str
    kind: str  # 'scalar', 'int_list' or 'str_list' (comma-separated on the command line)
    help: str
    default: Any

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value):
        """A command-line or sweep-file value as the field takes it."""
        if value is None:
            return value
        if self.kind == "scalar":
            return self._scalar(value)
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        items = [str(x).strip() for x in items if str(x).strip()]
        if self.kind == "str_list":
            return tuple(items)
        try:
            return tuple(int(x) for x in items)
        except ValueError:
            raise GensynthError(f"{self.flag} takes comma-separated whole numbers, e.g. {self.flag} 1,5,10; "
                                f"got '{value}'.") from None

    def _scalar(self, value):
        """A value of this option's type (a sweep file's TOML may hold anything): ints pass as
        floats, anything else of another type is refused with what was expected."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, self.type) and not (isinstance(value, bool) and self.type is not bool):
            return value
        what = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}.get(self.type, self.type.__name__)
        raise GensynthError(f"{self.flag} ({self.name} in a sweep file) takes {what}, got {value!r}; "
                            f"e.g. {self.name} = {self._example()}.")

    def _example(self) -> str:
        return {int: "1000", float: "0.003", bool: "true"}.get(self.type, '"micro"') if self.default is None else (
            f'"{self.default}"' if isinstance(self.default, str) else str(self.default).lower()
            if isinstance(self.default, bool) else str(self.default))


def field_docs(cls) -> dict[str, str]:
    """Each field's docstring (the string literal under it), from the class's source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _kind(hint) -> tuple[type, str]:
    base = hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        base = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(base) is tuple:
        return str, "int_list" if typing.get_args(base)[0] is int else "str_list"
    if base not in (int, float, str):
        raise TypeError(f"no command-line type for {hint}")
    return base, "scalar"


@lru_cache(maxsize=1)
def train_options() -> tuple[Option, ...]:
    """Every configuration option of `gensynth train`, in the order the groups and fields are declared."""
    out = []
    for group, cls in GROUPS:
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            typ, kind = _kind(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else None
            text = docs.get(f.name, "")
            if "(default:" not in text and default is not None:
                shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
                text += f" (default: {shown})"
            out.append(Option(RENAMED.get((group, f.name), f.name), group, f.name, typ, kind, text, default))
    names = [o.name for o in out]
    assert len(names) == len(set(names)), f"two options share a name: {names}"
    return tuple(out)


def option_names() -> tuple[str, ...]:
    return tuple(o.name for o in train_options())


def run_config(options: dict[str, Any]) -> cfg.RunConfig:
    """A RunConfig from option values by config name (None or absent: the field's default).

    ``options`` come from the command line or a sweep file; list options may be lists or
    comma-separated text. With --samples N and no --k, k is {1, min(10, N), N}.
    """
    by_name = {o.name: o for o in train_options()}
    unknown = sorted(set(options) - set(by_name))
    if unknown:
        raise GensynthError(f"Unknown training option(s): {', '.join(unknown)}. Options: {', '.join(by_name)}.")
    if options.get("view") is None:
        raise GensynthError("Missing --view: name the split to train on, e.g. --view split_random (or --resume RUN_ID).")
    groups: dict[str, dict] = {g: {} for g, _ in GROUPS}
    for name, value in options.items():
        if value is not None:
            o = by_name[name]
            groups[o.group][o.field] = o.parse(value)
    ev = groups["eval"]
    if ev.get("samples") and "k" not in ev:
        ev["k"] = tuple(sorted({1, min(10, ev["samples"]), ev["samples"]}))
    return cfg.RunConfig(data=cfg.DataSettings(**groups["data"]), model=cfg.ModelSpec(**groups["model"]),
                         training=cfg.TrainSettings(**groups["training"]), eval=cfg.EvalSettings(**ev),
                         runtime=cfg.RuntimeSettings(**groups["runtime"]))


def eval_settings(options: dict[str, Any], base: cfg.EvalSettings) -> cfg.EvalSettings:
    """``base`` with the evaluation options given in ``options`` (by config name) replaced."""
    by_name = {o.name: o for o in train_options() if o.group == "eval"}
    kw = {by_name[n].field: by_name[n].parse(v) for n, v in options.items() if v is not None}
    if kw.get("samples") and "k" not in kw:
        kw["k"] = tuple(sorted({1, min(10, kw["samples"]), kw["samples"]}))
    return dataclasses.replace(base, **kw)
