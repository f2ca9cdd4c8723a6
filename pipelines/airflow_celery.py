"""Distributed Airflow on one machine: the production shape, started and stopped from Python.

:class:`CeleryAirflow` runs the components a production deployment runs, each as its own
process (and process group) on loopback, with an isolated ``AIRFLOW_HOME``:

- ``airflow api-server`` on a free port: the REST API (v2) and the execution API the
  task processes report to;
- ``airflow scheduler`` with the ``CeleryExecutor`` (tasks go to a Redis broker, states
  come back through a PostgreSQL result backend, ``db+postgresql+psycopg://``);
- ``airflow dag-processor`` parsing ``dags/``;
- ``airflow celery worker`` consuming one queue of its own (small concurrency: the
  tasks are heavy and CI machines small).

It is what the Celery test uses and what a developer can use to watch the real thing:
``python -m pipelines.airflow_celery 2026-03-01 --metadata-url postgresql+psycopg://...
--broker-url redis://127.0.0.1:6379/1`` starts the stack, runs that day with the
``XOFLOW_*`` settings of the shell, prints the task states and stops everything.

Nothing here imports Airflow: the components are subprocesses, driven through the REST
API with a token from the simple auth manager (``POST /auth/token``), so Airflow's
configuration in the calling process does not matter.

The scheduler does not create scheduled runs (``[scheduler] use_job_schedule = False``):
only the runs triggered through :meth:`CeleryAirflow.trigger_day` run, so a stack
started today does not also load yesterday on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import sqlalchemy as sa

from pipelines.airflow_env import DAG_ID, DAGS_FOLDER, logical_date_for_day

USER = "xoflow"
FINISHED = frozenset({"success", "failed"})


class StackError(RuntimeError):
    """A component did not start, died, or a run did not finish in time (with log tails)."""


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Component:
    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class CeleryAirflow:
    """Scheduler, dag-processor, api-server and one Celery worker on loopback.

    ``metadata_url`` is a SQLAlchemy URL of an (empty or migrated) PostgreSQL database,
    also used as the Celery result backend; ``broker_url`` a Redis URL.
    ``task_environment`` is what the tasks need (``XOFLOW_*``), given to every component.
    Use as a context manager: everything started is stopped on exit, also on failure.
    """

    home: Path
    metadata_url: str
    broker_url: str
    task_environment: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = 2
    queue: str = field(default_factory=lambda: f"xoflow_{secrets.token_hex(4)}")
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    components: dict[str, Component] = field(default_factory=dict)
    _token: str | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def worker_name(self) -> str:
        return f"{self.queue}@{socket.gethostname()}"

    # ------------------------------------------------------------------ configuration

    def environment(self) -> dict[str, str]:
        """The process environment of every component: ours replaces any inherited AIRFLOW_*/XOFLOW_*."""
        metadata = sa.make_url(self.metadata_url)
        if metadata.get_backend_name() != "postgresql":
            raise ValueError("the metadata DB of a distributed Airflow must be PostgreSQL")
        metadata = metadata.set(drivername="postgresql+psycopg")
        metadata_text = metadata.render_as_string(hide_password=False)
        home = Path(self.home).resolve()
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("AIRFLOW_", "AIRFLOW__", "XOFLOW_"))}
        return {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_text,
            # psycopg 3 is async too; Airflow would otherwise look for asyncpg
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_text,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_text}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            # one secret for every component: the scheduler signs task tokens, the API checks them
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
            "AIRFLOW__API__SECRET_KEY": self._secret("api"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            **dict(self.task_environment),
        }

    def _secret(self, purpose: str) -> str:
        path = Path(self.home) / f".{purpose}_secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text()

    def _airflow(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).with_name("airflow")), *args]

    # ------------------------------------------------------------------ lifecycle

    def migrate(self, timeout: float = 300) -> None:
        """``airflow db migrate`` against the metadata DB."""
        log = Path(self.home) / "logs" / "db-migrate.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            done = subprocess.run(self._airflow("db", "migrate"), env=self.environment(), stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if done.returncode != 0:
            raise StackError(f"airflow db migrate failed ({done.returncode}):\n"
                             + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))

    def start(self) -> None:
        """Start the four components, each in its own process group, logging to ``home/logs``."""
        home = Path(self.home)
        (home / "logs").mkdir(parents=True, exist_ok=True)
        (home / "passwords.json").write_text(json.dumps({USER: self.password}))
        env = self.environment()
        commands = {
            "api-server": self._airflow("api-server", "--host", "127.0.0.1", "--port", str(self.port),
                                        "--workers", "1"),
            "scheduler": self._airflow("scheduler"),
            "dag-processor": self._airflow("dag-processor"),
            "celery-worker": self._airflow(
                "celery", "worker", "--concurrency", str(self.concurrency), "--queues", self.queue,
                "--celery-hostname", self.worker_name, "--skip-serve-logs",
                "--without-gossip", "--without-mingle"),
        }
        for name, argv in commands.items():
            component = Component(name, argv, home / "logs" / f"{name}.log")
            with component.log.open("wb") as out:
                component.process = subprocess.Popen(
                    argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, cwd=home)
            self.components[name] = component

    def stop(self, grace: float = 15) -> None:
        """Stop the components in reverse start order (the worker first, the API last).

        Each process group gets SIGTERM and ``grace`` seconds, then SIGKILL, which also
        ends anything it left behind (task processes). One at a time: a worker or
        scheduler whose API server is already gone spends its grace retrying it.
        """
        for component in reversed(list(self.components.values())):
            process = component.process
            if process is None:
                continue
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace)
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if self.components:
            self.forget_queue()

    def forget_queue(self) -> None:
        """Delete the broker's keys for this stack's queue (its bindings and any messages left)."""
        import redis

        keys = [self.queue, *(f"_kombu.{kind}.{self.queue}" for kind in ("binding", "binding_permanent"))]
        client = redis.Redis.from_url(self.broker_url, socket_timeout=5)
        with contextlib.suppress(redis.RedisError), contextlib.closing(client):  # no broker: nothing to tidy
            client.delete(*keys)

    def __enter__(self) -> CeleryAirflow:
        try:
            self.migrate()
            self.start()
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def check_alive(self) -> None:
        """Raise :class:`StackError` with its log tail when any component has exited."""
        for component in self.components.values():
            code = component.process.poll() if component.process else None
            if code is not None:
                raise StackError(f"{component.name} exited with {code}:\n{component.tail()}")

    def wait_until_ready(self, timeout: float = 180) -> None:
        """Until the API answers, the DAG is parsed and the worker listens on its queue."""
        deadline = time.monotonic() + timeout
        worker_log = self.components["celery-worker"].log
        waiting_for = "the api-server"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if waiting_for == "the api-server":
                    httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).raise_for_status()
                    waiting_for = f"the DAG {DAG_ID} to be parsed"
                if waiting_for.startswith("the DAG"):
                    if self.request("GET", f"/api/v2/dags/{DAG_ID}", expect=(200, 404)).status_code == 404:
                        raise httpx.TransportError("not parsed yet")
                    waiting_for = "the celery worker"
                if waiting_for == "the celery worker":
                    if b" ready." not in worker_log.read_bytes():
                        raise httpx.TransportError("worker not ready")
                    return
            except httpx.TransportError:
                time.sleep(1)
        raise StackError(f"gave up after {timeout:.0f} s waiting for {waiting_for}:\n"
                         + "\n".join(f"--- {c.name}\n{c.tail(15)}" for c in self.components.values()))

    # ------------------------------------------------------------------ REST API

    def token(self) -> str:
        """A JWT from the simple auth manager (``POST /auth/token``)."""
        if self._token is None:
            response = httpx.post(f"{self.api_url}/auth/token", timeout=30,
                                  json={"username": USER, "password": self.password})
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,),
                **kwargs: Any) -> httpx.Response:
        response = httpx.request(method, f"{self.api_url}{path}", timeout=30,
                                 headers={"Authorization": f"Bearer {self.token()}"}, **kwargs)
        if response.status_code not in expect:
            raise StackError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response

    def trigger_day(self, day: date, dag_id: str = DAG_ID) -> dict[str, Any]:
        """Unpause the DAG and trigger the manual run that loads the UTC day ``day``.

        A manual run's data interval is the whole day before its logical date, so the
        logical date is the midnight after ``day`` (see ``logical_date_for_day``).
        """
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        body = {"logical_date": logical_date_for_day(day).isoformat(), "conf": {}}
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body).json()

    def wait_for_run(self, run_id: str, timeout: float = 600, dag_id: str = DAG_ID) -> dict[str, Any]:
        """Poll the run until it has finished; returns the run as the API shows it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            run = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()
            if run["state"] in FINISHED:
                return run
            time.sleep(2)
        states = {t["task_id"]: t["state"] for t in self.task_instances(run_id, dag_id)}
        raise StackError(f"run {run_id} not finished after {timeout:.0f} s; tasks: {states}\n"
                         + "\n".join(f"--- {c.name}\n{c.tail(15)}" for c in self.components.values()))

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.request("GET", path, params={"limit": 100}).json()["task_instances"]


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # start_new_session: the group id is the leader's pid


def main(argv: list[str] | None = None) -> int:
    """Run one day of the nightly DAG on a local distributed Airflow, then stop it."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m pipelines.airflow_celery", description=main.__doc__)
    parser.add_argument("day", type=date.fromisoformat, help="UTC day to load, YYYY-MM-DD (a past day)")
    parser.add_argument("--metadata-url", required=True, help="PostgreSQL URL of the Airflow metadata DB")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/1", help="Redis URL of the broker")
    parser.add_argument("--home", type=Path, help="AIRFLOW_HOME for the stack (default: a new temp dir)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the run")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="xoflow-celery-"))
    task_env = {k: v for k, v in os.environ.items() if k.startswith("XOFLOW_")}
    stack = CeleryAirflow(home=home, metadata_url=args.metadata_url, broker_url=args.broker_url,
                          task_environment=task_env, concurrency=args.concurrency)
    started = time.monotonic()
    with stack:
        print(f"Airflow API at {stack.api_url} (user {USER}), logs in {home / 'logs'}")
        run = stack.wait_for_run(stack.trigger_day(args.day)["dag_run_id"], timeout=args.timeout)
        for task in stack.task_instances(run["dag_run_id"]):
            label = task["task_id"] + (f"[{task['rendered_map_index']}]" if task["map_index"] >= 0 else "")
            print(f"  {label:<45} {task['state'] or '-':<16} try {task['try_number']}")
    print(f"{DAG_ID} {run['dag_run_id']}: {run['state']} in {time.monotonic() - started:.0f} s")
    return 0 if run["state"] == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())
