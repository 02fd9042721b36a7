"""Stage 4b: search-based and hybrid synthesizers, and tasks beyond the universe."""
