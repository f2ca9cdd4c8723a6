# The Airflow image docker-compose.yml runs: the official image plus xoflow's dependencies.
# The code itself (dags/, pipelines/, schemas/, warehouse/) is mounted by the compose file,
# so a code change needs no rebuild; a change of pyproject.toml does (docker-compose build).
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

COPY --chown=airflow:0 pyproject.toml /opt/xoflow/pyproject.toml
COPY --chown=airflow:0 pipelines /opt/xoflow/pipelines
# Editable: the package resolves to /opt/xoflow/pipelines, where the compose file mounts the code.
# Pinning apache-airflow to the image's version keeps pip from replacing Airflow itself.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -e /opt/xoflow \
 && mkdir -p /opt/xoflow/data /opt/xoflow/sources
