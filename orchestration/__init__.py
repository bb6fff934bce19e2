"""Orchestrator examples: Dagster definitions (tested), an Airflow DAG and a GitHub Actions schedule."""
