"""Runs the DAG of orchestration/airflow_dag.py with Airflow's `dag.test()`, once or several times.

Started by test_airflow_dag.py with .venv-airflow's Python: Airflow is kept out of the main environment
(with Airflow importable, dlt reads every setting from Airflow Variables too). AIRFLOW_HOME points at a
throw-away folder whose database is created here. After each run, the run's state goes to
`<results>/run-N.json`; before the next one it waits for a line on stdin (the test changes the fake's data
in between). Exit code 0 when every run succeeded.

    python airflow_run.py DAG_FILE RESULTS_DIR RUNS
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pendulum


def parse(dag_file: str) -> Any:
    """The DAG from a fresh parse of its file, as a worker parses it before each task (a new task group,
    so a new dlt data folder and pipeline object)."""
    spec = importlib.util.spec_from_file_location("posthog_airflow_dag", dag_file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {dag_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.posthog_dag


def main(dag_file: str, results: str, runs: int) -> int:
    from airflow.utils import db

    db.initdb()  # a fresh database, as `airflow db migrate` makes it
    ok = True
    for number in range(1, runs + 1):
        if number > 1:
            sys.stdin.readline()
        dag = parse(dag_file)
        run = dag.test(logical_date=pendulum.now("UTC"))
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        ok = ok and str(run.state) == "success"
        answer = {"dag_id": dag.dag_id, "state": str(run.state), "tasks": states}
        path = Path(results) / f"run-{number}.json"
        path.with_suffix(".tmp").write_text(json.dumps(answer))
        path.with_suffix(".tmp").rename(path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
