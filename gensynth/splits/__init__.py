"""Stage 3: train/test splits as SQL: validation, registry, sampling, statistics, export."""
