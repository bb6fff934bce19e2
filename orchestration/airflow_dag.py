"""Airflow DAG example (not tested here: apache-airflow is not a dependency): an incremental PostHog run every
30 minutes through dlt's Airflow helper.

The source is handed to PipelineTasksGroup as a callable, so it is built when the task runs: calling
`posthog_source()` discovers the key's projects over HTTP, which must not happen each time the scheduler
parses this file. Credentials come from Airflow's environment (DESTINATION__..., SOURCES__POSTHOG__API_KEY)
or from Airflow variables (dlt reads the `dlt_secrets_toml` variable). `use_data_folder=False` keeps the
pipeline's working folder (its cursor) between runs; the state is also restored from the destination.
"""

from __future__ import annotations

import pendulum
from airflow.decorators import dag  # type: ignore[import-not-found]
from dlt.common.pipeline import SupportsPipeline
from dlt.helpers.airflow_helper import PipelineTasksGroup

from pipelines.runner import RunOptions, make_pipeline
from posthog_source import posthog_source


def posthog_tables() -> object:
    """Every table of every project the key reads (evaluated in the task, not at parse time)."""
    return posthog_source()


@dag(
    schedule="*/30 * * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one run of the pipeline at a time: its state is not shared between runs at once
    default_args={"owner": "data", "retries": 0},
)
def posthog_dlt() -> None:
    tasks = PipelineTasksGroup("posthog", use_data_folder=False, wipe_local_data=False, use_task_logger=True)
    pipeline: SupportsPipeline = make_pipeline(RunOptions(destination="postgres"))
    tasks.add_run(pipeline, posthog_tables, decompose="none", trigger_rule="all_done", retries=0)


posthog_dlt()
