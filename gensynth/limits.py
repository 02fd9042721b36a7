"""Documented caps and default limits, in one place with no heavy imports (the CLI reads
them for its help text without loading DuckDB)."""

QUERY_SECONDS = 300.0
"""Default --time-limit: wall-clock seconds a command's user SQL (a split) may run."""

QUERY_MEMORY = "6GB"
"""Default --memory-limit: DuckDB's memory_limit while user SQL runs."""

MAX_BEYOND_TASKS = 100_000
"""Most tasks `gensynth beyond --tasks N` draws (each draw round evaluates 4 N random programs)."""
