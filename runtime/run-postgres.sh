#!/usr/bin/env bash
# Start `sopdsl run` against a local PostgreSQL: creates the database if it is missing, then runs
# the playbooks given (default: playbooks/) with the example executors, in the foreground.
#
#   runtime/run-postgres.sh                      # playbooks/, database sopdsl on 127.0.0.1:5432
#   SOPDSL_DB=shop PORT=8081 runtime/run-postgres.sh playbooks/J1_welcome_ritual.sop
#
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), SOPDSL_DB (sopdsl),
# PORT (8080), WORKERS (1: worker processes sharing the port and the database; several let
# executors that wait on a platform overlap), SOPDSL (the sopdsl command; default: .venv/bin/sopdsl, else sopdsl on PATH),
# EXECUTORS (runtime/executors.yaml), SOPDSL_TOKENS (the bearer tokens, `TOKEN SHARD[,SHARD...]`
# a line: `sopdsl run` refuses to start without them), WORKER (the workers' name, default the host
# name: they are WORKER-1 ... WORKER-N, the same at every start, so a worker started again after a
# crash takes its leases back at once instead of waiting them out; give each machine sharing the
# database its own). Extra `sopdsl run` options go in SOPDSL_RUN_OPTIONS (`--insecure-no-auth` to
# try it out on this machine without tokens).
set -euo pipefail
cd "$(dirname "$0")/.."
host="${PGHOST:-127.0.0.1}" port="${PGPORT:-5432}" user="${PGUSER:-postgres}" db="${SOPDSL_DB:-sopdsl}"
if [[ -z "${SOPDSL:-}" ]]; then
    if [[ -x .venv/bin/sopdsl ]]; then SOPDSL=.venv/bin/sopdsl; else SOPDSL=sopdsl; fi
fi
if [[ ! "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "run-postgres.sh: SOPDSL_DB must be a plain name (letters, digits, _), got '$db'" >&2
    exit 2
fi
exists=$(psql -h "$host" -p "$port" -U "$user" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")
if [[ "$exists" != 1 ]]; then
    psql -h "$host" -p "$port" -U "$user" -d postgres -qc "CREATE DATABASE \"$db\""
    echo "run-postgres.sh: created database $db" >&2
fi
if [[ $# -eq 0 ]]; then set -- playbooks/; fi
workers="${WORKERS:-1}" worker="${WORKER:-${HOSTNAME:-$(uname -n)}}"
# `--workers N` names its workers NAME-1 ... NAME-N; one worker is named NAME-1 here too, so
# going from one worker to several keeps the first one's leases.
if [[ "$workers" == 1 ]]; then worker="$worker-1"; fi
# shellcheck disable=SC2086  # the options are words on purpose
exec "$SOPDSL" run "$@" --store "postgresql://$user@$host:$port/$db" \
    --executors "${EXECUTORS:-runtime/executors.yaml}" --port "${PORT:-8080}" \
    --workers "$workers" --worker "$worker" ${SOPDSL_RUN_OPTIONS:-}
