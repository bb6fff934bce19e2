"""The Airflow DAG of orchestration/airflow_dag.py run by a real Airflow (`dag.test()`) against the fake
server into DuckDB: every table equals the server's truth, and a second run, in a fresh task folder as on
any worker, continues from the cursor dlt restored from the destination instead of reading everything again.

Airflow lives in its own virtualenv, .venv-airflow (`./dev test` makes it from requirements-airflow.lock):
with Airflow importable, dlt reads every setting from Airflow Variables too, which would need an Airflow
database in every process of the main suite. The DAG therefore runs in a subprocess; the fake server and the
comparison stay here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_events import assert_events_exact, assert_persons_exact
from tests.integration.test_exactness import assert_cohort_people_exact, assert_sessions_exact
from tests.integration.test_metadata import assert_tables_match_server

pytestmark = pytest.mark.orchestration

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = Path(os.environ.get("POSTHOG_AIRFLOW_VENV", ROOT / ".venv-airflow")) / "bin" / "python"
DAG_FILE = ROOT / "orchestration" / "airflow_dag.py"
RUNNER = Path(__file__).with_name("airflow_run.py")


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    if not AIRFLOW_PYTHON.exists():
        reason = f"{AIRFLOW_PYTHON.parent.parent} is missing (`./dev test` makes it from requirements-airflow.lock)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return AIRFLOW_PYTHON


def airflow_env(server: Any, tmp_path: Path) -> dict[str, str]:
    """A throw-away Airflow home, and the pipeline's settings the way a deployment gives them: env vars."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOURCES__", "DESTINATION__", "AIRFLOW", "DLT_", "PYTEST", "POSTHOG_"))}
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
        "SOURCES__POSTHOG__API_KEY": server.world.keys["full"],
        "SOURCES__POSTHOG__HOST": server.url,
        "SOURCES__POSTHOG__START_DATE": "2025-06-01",
        "SOURCES__POSTHOG__INGESTION_LAG": "0",
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "warehouse.duckdb"),
        "PYTHONPATH": str(ROOT),
    })
    return env


class DagRuns:
    """One Airflow process running the DAG `runs` times with `dag.test()`; `next()` lets the next run go and
    returns its result (Airflow starts once: importing it and its in-process API takes most of a run)."""

    def __init__(self, python: Path, env: dict[str, str], workdir: Path, runs: int) -> None:
        self.workdir, self.number, self.log = workdir, 0, workdir / "airflow.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([str(python), str(RUNNER), str(DAG_FILE), str(workdir), str(runs)],
                                            env=env, cwd=workdir, stdin=subprocess.PIPE, stdout=log,
                                            stderr=subprocess.STDOUT, text=True)

    def next(self, timeout: float = 240) -> dict[str, Any]:
        self.number += 1
        if self.number > 1:
            assert self.process.stdin is not None
            self.process.stdin.write("next\n")
            self.process.stdin.flush()
        result = self.workdir / f"run-{self.number}.json"
        deadline = time.monotonic() + timeout
        while not result.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(f"the Airflow run {self.number} did not finish:\n{self.log.read_text()[-8000:]}")
            time.sleep(0.2)
        answer: dict[str, Any] = json.loads(result.read_text())
        assert answer["state"] == "success" and answer["tasks"], (answer, self.log.read_text()[-8000:])
        assert all(state == "success" for state in answer["tasks"].values()), answer
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


def test_the_dag_loads_every_table_exactly_and_the_next_run_continues_from_the_restored_cursor(
    airflow_python, make_fake_server, tmp_path
):
    server = make_fake_server(seed=31, events=3_000)
    world = server.world
    runs = DagRuns(airflow_python, airflow_env(server, tmp_path), tmp_path, runs=2)
    try:
        first = runs.next()
        assert first["dag_id"] == "posthog_dlt" and list(first["tasks"]) == ["posthog_airflow.posthog_airflow"]
        assert_events_exact(world, tmp_path)
        assert_persons_exact(world, tmp_path)
        assert_tables_match_server(world, tmp_path)
        assert_sessions_exact(world, tmp_path)
        assert_cohort_people_exact(world, tmp_path)
        scanned_first = server.rows_scanned_by_key["full"]

        world.add_events(1, 40)
        world.add_persons(2, 3)
        runs.next()
        assert runs.process.wait(timeout=60) == 0
    finally:
        runs.close()
    assert_events_exact(world, tmp_path)
    assert_persons_exact(world, tmp_path)
    assert_sessions_exact(world, tmp_path)
    # The task's pipeline folder is wiped after each run: a run that lost the cursor would read every
    # event again instead of the few days around the watermark.
    assert server.rows_scanned_by_key["full"] - scanned_first < scanned_first / 3
