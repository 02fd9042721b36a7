"""Stage 5: analysis views, nearest-training-program proximity, the report."""
