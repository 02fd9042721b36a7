"""The one error type for gensynth's own failures.

Every message says what was wrong, where (file, flag, table) and how to fix it. The CLI
catches ``GensynthError`` in one place and prints ``Error: <message>`` with a non-zero
exit and no traceback (unless ``--debug``).
"""


class GensynthError(Exception):
    """A failure the user can fix: bad input, a missing stage, a wrong version."""
