"""Airflow DAG: an incremental PostHog run of every table every 30 minutes, through dlt's Airflow helper.

dlt's `PipelineTasksGroup` runs the pipeline in a task with the task's logger and a throw-away working
folder; the cursor lives in the destination (dlt stores the pipeline state with each load and restores it
when the folder is new), so every run continues where the last one stopped, on any worker. The source is
handed over as a callable: it is built when the task runs, so the DAG processor parses this file without the
PostHog key.

Configure it the dlt way in the workers' environment (or in the Airflow variable `dlt_secrets_toml`, which
dlt reads): SOURCES__POSTHOG__API_KEY, SOURCES__POSTHOG__HOST and any other `[sources.posthog]` setting;
the destination is POSTHOG_AIRFLOW_DESTINATION (default duckdb) with its DESTINATION__... settings (for
DuckDB, DESTINATION__DUCKDB__CREDENTIALS=/path/posthog.duckdb). Install with `pip install ".[airflow]"` into
Airflow's environment and put this file (or a copy) in the dags folder with this repository on PYTHONPATH.
Tested with Airflow 3.3 (tests/orchestration/test_airflow_dag.py runs it with `dag.test()`).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag
from dlt.extract.source import DltSource
from dlt.helpers.airflow_helper import PipelineTasksGroup

from pipelines.runner import DEFAULT_DATASET, RunOptions, make_pipeline
from posthog_source import posthog_source

DAG_ID = "posthog_dlt"
PIPELINE_NAME = os.environ.get("POSTHOG_AIRFLOW_PIPELINE_NAME", "posthog_airflow")


def posthog_tables() -> DltSource:
    """Every table of every project the key reads, settings from dlt config (built in the task)."""
    return posthog_source()


@dag(
    dag_id=DAG_ID,
    schedule="*/30 * * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one run of the pipeline at a time: two would race on its state
    default_args={"owner": "data", "retries": 0},
    tags=["posthog", "dlt"],
)
def posthog_dlt() -> None:
    # The task group first: it points dlt at a fresh data folder, where the pipeline below must live.
    tasks = PipelineTasksGroup(PIPELINE_NAME, use_data_folder=False, wipe_local_data=True, use_task_logger=True)
    pipeline = make_pipeline(RunOptions(
        pipeline_name=PIPELINE_NAME,
        destination=os.environ.get("POSTHOG_AIRFLOW_DESTINATION", "duckdb"),
        dataset_name=os.environ.get("POSTHOG_AIRFLOW_DATASET", DEFAULT_DATASET),
    ))
    tasks.add_run(pipeline, posthog_tables, decompose="none", trigger_rule="all_done", retries=0)


posthog_dag = posthog_dlt()
