"""Reading a split's SQL text: its header (kind, description), params, declared roles,
column docs, and where a fragment sits in it (line, column) for messages."""

from __future__ import annotations

import re

from sqlglot import exp

from gensynth.sqldoc import select_column_docs


def kind_of(text: str) -> str | None:
    """The kind named on the `-- kind:` line, lowercased, or None."""
    m = re.search(r"^\s*--\s*kind\s*:\s*([A-Za-z_]+)", text, re.M)
    return m.group(1).lower() if m else None


def description(text: str) -> str:
    """The leading comment block, without the kind line, as one string per paragraph."""
    lines = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            lines.append("")
            continue
        if not s.startswith("--"):
            break
        body = s[2:].strip()
        if not re.match(r"kind\s*:", body):
            lines.append(body)
    paragraphs = " ".join(l if l else "\n" for l in lines).split("\n")
    return "\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def leftmost_select(root):
    node = root
    while isinstance(node, exp.SetOperation):
        node = node.this
    if isinstance(node, exp.Subquery):
        node = node.this
    return node if isinstance(node, exp.Select) else None


def top_selects(root) -> list:
    """The SELECTs whose rows a (UNION ALL of) SELECT(s) returns, left to right."""
    if isinstance(root, exp.SetOperation):
        return top_selects(root.this) + top_selects(root.expression)
    if isinstance(root, exp.Subquery):
        return top_selects(root.this)
    return [root] if isinstance(root, exp.Select) else []


def declared_roles(root) -> list[str]:
    roles = []
    for select in top_selects(root):
        if len(select.expressions) == 2:
            proj = select.expressions[1]
            value = proj.this if isinstance(proj, exp.Alias) else proj
            if isinstance(value, exp.Literal) and value.is_string and value.this not in roles:
                roles.append(value.this)
    return roles


def column_docs(root) -> dict[str, str]:
    """Selected column -> its trailing comment, for the leftmost top-level SELECT."""
    return select_column_docs(leftmost_select(root))


def params_of(root) -> dict[str, int]:
    """Integer literals of the `params` CTE (n_train, n_val, n_test, n_<role>, seed, ...)."""
    for cte in root.find_all(exp.CTE):
        if cte.alias_or_name.lower() == "params" and isinstance(cte.this, exp.Select):
            out = {}
            for proj in cte.this.expressions:
                value = proj.this if isinstance(proj, exp.Alias) else proj
                if isinstance(value, exp.Literal) and not value.is_string:
                    with_int = value.this
                    if re.fullmatch(r"\d+", with_int):
                        out[proj.alias_or_name.lower()] = int(with_int)
            return out
    return {}


# ----------------------------------------------------------------------------------------
# Locations and messages
# ----------------------------------------------------------------------------------------

def func_name(node) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def spellings(node) -> list[str]:
    """Names a function node may have been written with (sqlglot maps random() to RAND)."""
    if isinstance(node, exp.Anonymous):
        return [str(node.this).lower()]
    names = [n.lower() for n in type(node).sql_names()] or [node.sql_name().lower()]
    return names + [alias for name in names for alias in WRITTEN_AS.get(name, ())]


# DuckDB spellings sqlglot parses into a function of another name (version() is CURRENT_VERSION).
WRITTEN_AS = {"current_version": ("version",)}


def statements(tokens) -> list[list]:
    from sqlglot.tokens import TokenType

    out, cur = [], []
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        out.append(cur)
    return out


def call_location(text: str, tokens, names: list[str], used: dict[str, int]) -> tuple[int, str]:
    """Offset and text of the next not-yet-reported call of any of ``names(...)``."""
    from sqlglot.tokens import TokenType

    seen, key = 0, "call:" + names[0]
    for i, tok in enumerate(tokens):
        if tok.text.lower() in names and i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN:
            if seen == used.get(key, 0):
                used[key] = seen + 1
                depth, end = 0, tok.end
                for t in tokens[i + 1:]:
                    depth += t.token_type == TokenType.L_PAREN
                    depth -= t.token_type == TokenType.R_PAREN
                    end = t.end
                    if depth == 0:
                        break
                return tok.start, fragment(text, tok.start, end + 1)
            seen += 1
    return word_location(text, tokens, names[0], used)


def word_location(text: str, tokens, word: str, used: dict[str, int]) -> tuple[int, str]:
    key = "word:" + word.lower()
    hits = [t for t in tokens if t.text.lower() == word.lower()]
    if not hits:
        return 0, word
    tok = hits[min(used.get(key, 0), len(hits) - 1)]
    used[key] = used.get(key, 0) + 1
    return tok.start, fragment(text, tok.start, tok.end + 1)


def node_location(text: str, tokens, node, used: dict[str, int]) -> tuple[int, str]:
    keyword = node.key.split("_")[0]
    off, _ = word_location(text, tokens, keyword, used)
    return off, fragment(text, off, off + 60)


def loc(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def fragment(text: str, start: int, end: int, limit: int = 70) -> str:
    frag = " ".join(text[start:end].split())
    return frag if len(frag) <= limit else frag[: limit - 1] + "…"


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", re.sub(r"--[^\n]*", "", text), flags=re.S)
