"""Run one measured subprocess: wall time, peak RSS of its whole process tree, a hard timeout.

The peers spawn children (dlt normalizes in workers, Airbyte's entry point is a wrapper), so memory is
summed over the tree, sampled from /proc every 50 ms; the largest VmHWM of any one process is kept too,
because a short spike between two samples still shows there.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.05


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and where its output is."""


@dataclass(frozen=True)
class Measured:
    wall_seconds: float
    peak_tree_rss_mb: float  # max over samples of the summed RSS of the tree
    peak_process_hwm_mb: float  # max VmHWM of any single process seen in the tree
    returncode: int
    cpu_seconds: float = float("nan")  # user + system CPU of the tree (every process waited for by its parent)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def process_tree(root: int) -> list[int]:
    """root and all its descendants alive right now."""
    seen, stack = [], [root]
    while stack:
        pid = stack.pop()
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


def _status_kb(pid: int, fields: tuple[str, ...] = ("VmRSS:", "VmHWM:")) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(fields):
                    name, value = line.split(":", 1)
                    found[name] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return found


class TreeMemory:
    """Polls a process tree's memory in a thread until stopped."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_tree_kb = 0
        self.peak_hwm_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rss-poll", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in process_tree(self.root):
                status = _status_kb(pid)
                total += status.get("VmRSS", 0)
                self.peak_hwm_kb = max(self.peak_hwm_kb, status.get("VmHWM", 0))
            self.peak_tree_kb = max(self.peak_tree_kb, total)
            self._stop.wait(SAMPLE_SECONDS)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started and everything it started (it runs in its own session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def run_measured(argv: Sequence[str], env: Mapping[str, str], log_dir: Path, name: str, timeout: float,
                 stdout_path: Path | None = None, check: bool = True, cwd: Path | None = None) -> Measured:
    """Run argv to completion with a timeout; stdout goes to stdout_path (or a log), stderr to a log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path = stdout_path or log_dir / f"{name}.stdout.log"
    err_path = log_dir / f"{name}.stderr.log"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        cpu_before = _children_cpu()
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=dict(env), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=cwd)
        try:
            with TreeMemory(proc.pid) as memory:
                try:
                    returncode = proc.wait(timeout=timeout)
                    wall = time.perf_counter() - started
                except subprocess.TimeoutExpired as exc:
                    kill_tree(proc)
                    raise BenchError(f"{name} timed out after {timeout:.0f} s; see {err_path}") from exc
        finally:
            kill_tree(proc)
    cpu = _children_cpu() - cpu_before  # only the measured tree ends meanwhile (the fake server runs on)
    if check and returncode != 0:
        tail = err_path.read_text(errors="replace")[-2000:]
        raise BenchError(f"{name} exited with {returncode}; see {err_path}:\n{tail}")
    return Measured(wall, memory.peak_tree_kb / 1024, memory.peak_hwm_kb / 1024, returncode, cpu)
