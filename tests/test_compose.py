"""docker-compose.yml: the production-shaped stack is complete and agrees with the code.

There is no Docker engine here, so the file is read with PyYAML (anchors and merge keys
resolved as Compose resolves them), its ``${VAR:-default}`` / ``${VAR:?error}`` references
filled from a test environment, and every service, command, mount and variable is checked
against what the code reads: the settings through ``Settings.from_env`` itself, the Airflow
version and the code's own folder layout. When Debian's ``docker-compose`` (v1.29) is
installed, it validates the file too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import yaml

from pipelines.airflow_env import DAGS_FOLDER
from pipelines.settings import REPO_ROOT, Settings

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
SECRETS = {"AIRFLOW_JWT_SECRET": "jwt-Secret-1", "XOFLOW_PSEUDONYM_KEY": "pseudonym-Key-2",
           "XOFLOW_WAREHOUSE_PASSWORD": "warehouse-Pw-3", "XOFLOW_SURVEY_API_KEY": "survey-Key-4"}
AIRFLOW_COMMANDS = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                    "airflow-worker": "celery worker"}
CODE_FOLDERS = ("dags", "pipelines", "schemas", "warehouse")
REFERENCE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(LookupError):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Fill ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` the way Compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        given = env.get(name)
        unset = given is None or (given == "" and op and op.startswith(":"))
        if op and op.endswith("?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op and op.endswith("-") and unset:
            return arg
        return given or ""

    return REFERENCE.sub(fill, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(raw) -> dict[str, dict[str, Any]]:
    return interpolate(raw["services"], SECRETS)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "AIRFLOW__CORE__EXECUTOR" in environment(s)}


def long_running(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if name != "airflow-init"}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a host path or a named volume), without the mode."""
    out = {}
    for spec in service.get("volumes", []):
        source, target, *_ = spec.split(":")
        out[target] = source
    return out


def worker_settings(services: dict[str, dict[str, Any]]) -> Settings:
    return Settings.from_env(environment(services["airflow-worker"]))


# ------------------------------------------------------------------ services and commands


def test_every_service_of_the_production_shape_is_defined(services) -> None:
    assert set(services) >= {"postgres", "warehouse-db", "redis", "airflow-init", *AIRFLOW_COMMANDS}
    for name, command in AIRFLOW_COMMANDS.items():
        assert services[name]["command"] == command, name
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["warehouse-db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    init_env = environment(services["airflow-init"])
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true"  # the image's entrypoint migrates the metadata DB


def test_the_executor_is_celery_with_broker_and_backends_on_services_of_this_file(services) -> None:
    airflow = airflow_services(services)
    assert set(airflow) >= set(AIRFLOW_COMMANDS) | {"airflow-init"}
    metadata = environment(services["postgres"])
    for name, service in airflow.items():
        env = environment(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname == "redis", name
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            url = sa.make_url(env[key].removeprefix("db+"))
            assert url.get_backend_name() == "postgresql", (name, key)
            assert (url.host, url.username, url.password, url.database) == (
                "postgres", metadata["POSTGRES_USER"], metadata["POSTGRES_PASSWORD"],
                metadata["POSTGRES_DB"]), (name, key)
        execution_api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert execution_api.hostname == "airflow-apiserver" and execution_api.path == "/execution/"
        published = [p.split(":")[-1] for p in services["airflow-apiserver"]["ports"]]
        assert str(execution_api.port) in published
        assert int(env["AIRFLOW__CELERY__WORKER_CONCURRENCY"]) <= 4  # the tasks are heavy
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS["AIRFLOW_JWT_SECRET"]


def test_image_is_the_installed_airflow_with_the_project_installed_from_the_mounted_code(services) -> None:
    dockerfile = DOCKERFILE.read_text()
    image = re.search(r"^ARG AIRFLOW_IMAGE=(\S+)$", dockerfile, re.M).group(1)
    assert image == f"apache/airflow:{version('apache-airflow')}-python3.11"
    for name, service in airflow_services(services).items():
        assert service["build"] == ".", name  # the Dockerfile next to the compose file
    pipelines_target = PurePosixPath(next(t for t, s in mounts(services["airflow-worker"]).items()
                                          if s == "./pipelines"))
    assert f"-e {pipelines_target.parent}" in dockerfile
    assert f"COPY --chown=airflow:0 pipelines {pipelines_target}" in dockerfile


# ------------------------------------------------------------------ mounts and settings


def test_code_folders_are_mounted_read_only_where_the_code_looks_for_them(raw, services) -> None:
    for name, service in airflow_services(services).items():
        volumes = mounts(service)
        targets = {source.removeprefix("./"): PurePosixPath(target) for target, source in volumes.items()
                   if source.removeprefix("./") in CODE_FOLDERS}
        assert set(targets) == set(CODE_FOLDERS), name
        for folder in CODE_FOLDERS:
            assert (REPO_ROOT / folder).is_dir()
            assert f"./{folder}:{targets[folder]}:ro" in service["volumes"], (name, folder)
        # REPO_ROOT inside the container is the folder pipelines/ is mounted in
        root = targets["pipelines"].parent
        assert targets["warehouse"] == root / "warehouse"
        assert targets["dags"] == root / DAGS_FOLDER.name
        env = environment(service)
        assert PurePosixPath(env["AIRFLOW__CORE__DAGS_FOLDER"]) == targets["dags"]
        assert PurePosixPath(env["XOFLOW_SCHEMAS_DIR"]) == targets["schemas"]
        home = PurePosixPath(env["XOFLOW_HOME"])
        assert volumes[str(home)] in raw["volumes"]  # a named volume every worker shares
        landing = PurePosixPath(env["XOFLOW_LANDING_DIR"])
        assert any(landing.is_relative_to(target) for target in volumes), name


def test_every_xoflow_variable_set_is_a_setting_the_pipeline_reads(services) -> None:
    for name, service in airflow_services(services).items():
        env = environment(service)
        baseline = Settings.from_env(env)
        ours = [key for key in env if key.startswith("XOFLOW_")]
        assert ours, name
        for key in ours:
            changed = Settings.from_env({**env, key: env[key] + "/changed"})
            assert changed != baseline, f"{name}: {key} is not read by Settings.from_env"


def test_every_airflow_connection_set_is_one_the_pipeline_reads(services) -> None:
    env = environment(services["airflow-worker"])
    connections = [key for key in env if key.startswith("AIRFLOW_CONN_")]
    assert set(connections) >= {"AIRFLOW_CONN_XOFLOW_WAREHOUSE", "AIRFLOW_CONN_XOFLOW_CASE_DB",
                                "AIRFLOW_CONN_XOFLOW_SURVEY_API", "AIRFLOW_CONN_XOFLOW_PSEUDONYM_KEY"}
    baseline = Settings.from_env(env)
    for key in connections:
        without = Settings.from_env({k: v for k, v in env.items() if k != key})
        assert without != baseline, f"{key} is not read by Settings.from_env"


def test_settings_in_the_containers_point_at_the_services_and_secrets_given(services) -> None:
    settings = worker_settings(services)
    warehouse = sa.make_url(settings.warehouse_url)
    owner = environment(services["warehouse-db"])
    assert warehouse.get_backend_name() == "postgresql" and warehouse.host == "warehouse-db"
    assert (warehouse.username, warehouse.password, warehouse.database) == (
        owner["POSTGRES_USER"], owner["POSTGRES_PASSWORD"], owner["POSTGRES_DB"])
    assert owner["POSTGRES_PASSWORD"] == SECRETS["XOFLOW_WAREHOUSE_PASSWORD"]
    assert settings.pseudonym_key == SECRETS["XOFLOW_PSEUDONYM_KEY"]
    assert settings.survey_api_key == SECRETS["XOFLOW_SURVEY_API_KEY"]
    assert urlsplit(settings.survey_api_url).hostname == "demo-survey-api"
    assert services["demo-survey-api"]["profiles"] == ["demo"]
    # the demo case DB lies in the sources mount, as ./dev demo writes it
    case_db = PurePosixPath(sa.make_url(settings.case_db_url).database)
    sources = next(PurePosixPath(t) for t, s in mounts(services["airflow-worker"]).items()
                   if s.endswith(".xoflow/sources"))
    assert case_db == sources / "case_db.sqlite"
    assert Settings.from_env({"XOFLOW_HOME": "/x"}).case_db_url.endswith("sources/case_db.sqlite")


def test_the_case_db_connection_can_name_a_mariadb_or_postgresql_server(raw) -> None:
    for uri, backend in (("mysql://etl:pw@cases.agency.gov:3306/cases", "mysql"),
                         ("postgresql://etl:pw@cases.agency.gov:5432/cases", "postgresql")):
        services = interpolate(raw["services"], {**SECRETS, "XOFLOW_CASE_DB_CONNECTION": uri})
        url = sa.make_url(worker_settings(services).case_db_url)
        assert (url.get_backend_name(), url.host, url.database) == (backend, "cases.agency.gov", "cases")
        sa.create_engine(url).dispose()  # its driver is installed (pymysql, psycopg)


def test_secrets_have_no_default_in_the_file(raw) -> None:
    text = COMPOSE_FILE.read_text()
    for name in SECRETS:
        assert f"${{{name}:?" in text and f"${{{name}:-" not in text and f"${{{name}}}" not in text
        missing = {k: v for k, v in SECRETS.items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            interpolate(raw["services"], missing)


def _size_bytes(text: str) -> int:
    """A Compose size ("1gb", "512m", "2g") in bytes."""
    number, unit = re.fullmatch(r"(\d+)\s*([kmgt]?)b?", text.strip().lower()).groups()
    return int(number) * 1024 ** " kmgt".index(unit or " ")


def test_the_warehouse_server_has_room_for_the_marts_parallel_workers(raw, services) -> None:
    assert _size_bytes(services["warehouse-db"]["shm_size"]) >= 2**30  # not Docker's 64 MB /dev/shm
    sized = interpolate(raw["services"], {**SECRETS, "XOFLOW_WAREHOUSE_SHM_SIZE": "2gb"})["warehouse-db"]
    assert _size_bytes(sized["shm_size"]) == 2 * 2**30


# ------------------------------------------------------------------ health and start order


def test_every_long_running_service_has_a_health_check(services) -> None:
    for name, service in long_running(services).items():
        check = service.get("healthcheck", {})
        assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "healthcheck" not in services["airflow-init"]  # a one-shot job: it completes


def test_services_start_after_what_they_need(services) -> None:
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, (name, target)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
    for name in AIRFLOW_COMMANDS:
        needs = {target: rule["condition"] for target, rule in services[name]["depends_on"].items()}
        assert needs["postgres"] == needs["redis"] == "service_healthy", name
        assert needs["airflow-init"] == "service_completed_successfully", name
    worker_needs = services["airflow-worker"]["depends_on"]
    assert worker_needs["warehouse-db"]["condition"] == "service_healthy"
    assert worker_needs["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"


# ------------------------------------------------------------------ docker-compose itself


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file_and_insists_on_the_secrets(tmp_path: Path) -> None:
    def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
        return subprocess.run(
            ["docker-compose", "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE),
             "--profile", "demo", "config"],
            env={**clean, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)

    accepted = config(SECRETS)
    assert accepted.returncode == 0, accepted.stderr
    rendered = yaml.safe_load(accepted.stdout)
    assert set(rendered["services"]) >= {"postgres", "warehouse-db", "redis", "airflow-init",
                                         "demo-survey-api", *AIRFLOW_COMMANDS}
    assert rendered["services"]["airflow-worker"]["environment"]["XOFLOW_HOME"] == "/opt/xoflow/data"

    refused = config({k: v for k, v in SECRETS.items() if k != "XOFLOW_PSEUDONYM_KEY"})
    assert refused.returncode != 0 and "XOFLOW_PSEUDONYM_KEY" in refused.stderr
