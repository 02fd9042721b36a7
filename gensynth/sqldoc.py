"""Column documentation read from SQL files: the trailing comment of each selected column."""

from __future__ import annotations


def select_column_docs(select) -> dict[str, str]:
    """Output column -> its comment ('' when undocumented) for a sqlglot Select (None: {})."""
    from sqlglot import exp

    docs: dict[str, str] = {}
    if select is None:
        return docs
    for proj in select.expressions:
        comments = list(proj.comments or [])
        if isinstance(proj, exp.Alias):
            comments += proj.this.comments or []
        docs[proj.alias_or_name] = " ".join(c.strip() for c in comments).strip()
    return docs
