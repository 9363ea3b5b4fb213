#!/bin/sh
# Container entry point: the Airflow UI login from the environment, then the command itself.
# Airflow's simple auth manager reads passwords from a JSON file. When AIRFLOW_ADMIN_PASSWORD is set
# (docker/.env, api-server only) the file is written at each start, inside the container only.
set -eu
if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]; then
    umask 077
    python -c 'import json, os; print(json.dumps({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}))' \
        > "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-${AIRFLOW_HOME}/simple_auth_manager_passwords.json.generated}"
fi
exec "$@"
