"""The split contract, checked on a split's rows after it runs.

A split is run once into the TEMP table ``__gensynth_split_rows`` and checked with the
queries of ``sql/split_checks/``: no program in two roles, no program twice in a role,
no NULLs, ``train`` non-empty, roles named ``train``, ``val`` or ``test_<name>``, program
ids that exist; a ``support`` split may share no function between ``train`` and any
``test_*`` role. Roles smaller than their ``params`` asked for are kept, with a notice.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import duckdb

from gensynth.errors import GensynthError
from gensynth.splits.validate import REGISTER, ROLE_RE, SplitSQL, first_line, refusal
from gensynth.warehouse import sql_text

ROWS = "__gensynth_split_rows"  # the TEMP table sql/split_checks/*.sql read


@dataclass
class SplitReport:
    """What running a split produced: roles, their sizes, and notices for the user."""

    name: str
    kind: str
    roles: dict[str, int]  # role -> programs
    functions: dict[str, int]  # role -> distinct functions
    train_overlap: dict[str, int]  # test_* role -> functions shared with train
    requested: dict[str, int]
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    revivable: bool = False  # `split check` of a stale split that passes again (registry.revive_split)


def materialise_and_check(con: duckdb.DuckDBPyConnection, relation: str, split: SplitSQL,
                          action: str = REGISTER) -> SplitReport:
    """Run the split once into a TEMP table and check its rows; raises on any violation."""
    start = time.perf_counter()
    where = f"Split '{split.name}'" + (f" ({split.source})" if split.source != "builtin" else "")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ROWS} AS SELECT program_id, role FROM {relation}")
    except (duckdb.InterruptException, duckdb.OutOfMemoryException):
        raise  # the query limits (gensynth.warehouse.limited) say what happened
    except duckdb.Error as exc:
        fix = "Fix the SQL and retry; nothing was changed." if action == REGISTER else \
            "Fix the SQL and re-add it (`gensynth split add FILE --name NAME --replace`)."
        raise GensynthError(f"{where} {action}: it failed when run: {first_line(exc)} {fix}") from None
    try:
        report = role_counts(con)
        report.name, report.kind, report.requested = split.name, split.kind, split.requested
        report.roles = {r: report.roles[r] for r in role_order(report.roles, split.declared_roles) if r in report.roles}
        problems = _contract_problems(con, split, report)
        if problems:
            raise refusal(where, problems, ran=True, action=action)
        report.notices += _size_notices(split, report)
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction is rolled back by the caller
            con.execute(f"DROP TABLE IF EXISTS temp.{ROWS}")
    report.seconds = time.perf_counter() - start
    return report


def _contract_problems(con: duckdb.DuckDBPyConnection, split: SplitSQL, report: SplitReport) -> list[str]:
    problems = []
    nulls, shared, example, unknown = con.execute(sql_text("split_checks/violations.sql")).fetchone()
    if nulls:
        problems.append(f"{nulls:,} rows have a NULL program_id or role")
    bad = sorted(r for r in report.roles if r is not None and not ROLE_RE.match(r))
    if bad:
        problems.append(f"roles {', '.join(repr(b) for b in bad)} are not train, val or test_<name> (lowercase letters, digits, _)")
    if not report.roles.get("train"):
        problems.append("train is empty; a split needs training programs")
    for role, extra in con.execute(sql_text("split_checks/duplicates.sql")).fetchall():
        problems.append(f"role {role} lists {extra:,} programs more than once (use SELECT DISTINCT)")
    if shared:
        what = "a density split draws every role from disjoint programs" if split.kind == "density" else "every program has one role"
        problems.append(f"{shared:,} programs are in more than one role (e.g. program {example['id']} in {' and '.join(example['roles'])}); {what}")
    if unknown:
        problems.append(f"{unknown:,} program_id values are not in programs")
    if split.kind == "support":
        for role, n in sorted(report.train_overlap.items()):
            if n:
                problems.append(f"role {role} shares {n:,} functions with train; a support split's test roles must be function-disjoint from train")
    return problems


def _size_notices(split: SplitSQL, report: SplitReport) -> list[str]:
    clipped, empty = [], []
    for role in role_order(report.roles, split.declared_roles):
        asked = requested(split.requested, role)
        got = report.roles.get(role, 0)
        if got == 0:
            empty.append(role)
        elif asked is not None and got < asked:
            param = f"n_{role}" if f"n_{role}" in split.requested else ("n_test" if role.startswith("test_") else f"n_{role}")
            clipped.append(f"{role} {got:,} of {asked:,} ({param})")
    notices = []
    if clipped:
        notices.append(f"clipped to what the pools hold on this universe: {'; '.join(clipped)}")
    if empty:
        notices.append(f"empty on this universe: {', '.join(empty)}")
    return notices


def role_counts(con: duckdb.DuckDBPyConnection) -> SplitReport:
    """Programs, functions and train overlap per role of the rows in ``__gensynth_split_rows``."""
    counts, functions, overlap = {}, {}, {}
    for role, n, nf, shared in con.execute(sql_text("split_checks/role_counts.sql")).fetchall():
        counts[role], functions[role] = n, nf
        if isinstance(role, str) and role.startswith("test_"):
            overlap[role] = shared
    return SplitReport(name="", kind="", roles=counts, functions=functions, train_overlap=overlap, requested={})


def requested(params: dict[str, int], role: str) -> int | None:
    """The size a split's params CTE asks for ``role`` (n_<role>, else n_test for test roles)."""
    if f"n_{role}" in params:
        return params[f"n_{role}"]
    if role.startswith("test_"):
        return params.get("n_test")
    return None


def role_order(counts: dict[str, int], declared: list[str]) -> list[str]:
    """train, val, then the other roles in the order the SQL declares them."""
    roles = list(declared) + sorted(r for r in counts if r not in declared and r is not None)
    rank = {"train": 0, "val": 1}
    return sorted(roles, key=lambda r: (rank.get(r, 2), roles.index(r)))
