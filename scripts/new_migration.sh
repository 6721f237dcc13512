#!/usr/bin/env bash
# Autogenerate a migration against a scratch PostgreSQL database at the current head.
# Usage: bash scripts/new_migration.sh "add payments"
set -euo pipefail
cd "$(dirname "$0")/.."
msg=${1:?message}
scratch="mall_migrate_$$"
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $scratch" >/dev/null
trap 'psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $scratch" >/dev/null' EXIT
export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$scratch"
.venv/bin/flask --app wsgi db upgrade >/dev/null
n=$(find migrations/versions -maxdepth 1 -name "*.py" | wc -l)
rev=$(printf "%04d" $((n + 1)))
.venv/bin/flask --app wsgi db migrate -m "$msg" --rev-id "$rev"
