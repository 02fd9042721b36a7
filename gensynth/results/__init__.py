"""Results tables (runs, metrics, predictions): migrations, run directories, ingestion."""
