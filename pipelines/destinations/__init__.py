"""What one kind of destination needs beyond dlt's own loading, each in one place: DuckDB's loading around
dlt's load (duckdb.py) and the reading rule of plain parquet files (lake.py). `pipelines/runner.py` decides
which applies to a run."""
