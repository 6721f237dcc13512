#!/usr/bin/env bash
# Autogenerate a migration against a scratch PostgreSQL database upgraded to all heads.
# Usage: bash scripts/new_migration.sh "add payments" [REV_ID] [PARENT_REV]
# REV_ID defaults to the highest existing id plus one; PARENT_REV defaults to the single head. A
# PARENT_REV that is not a head starts a new branch (alembic --splice); edit down_revision to
# a tuple by hand when the migration depends on several branches.
set -euo pipefail
cd "$(dirname "$0")/.."
msg=${1:?message}
scratch="mall_migrate_$$"
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $scratch" >/dev/null
trap 'psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $scratch" >/dev/null' EXIT
export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$scratch"
.venv/bin/flask --app wsgi db upgrade heads >/dev/null
last=$(find migrations/versions -maxdepth 1 -name "[0-9]*.py" -printf "%f\n" | cut -c1-4 | sort -n | tail -1)
rev=${2:-$(printf "%04d" $((10#${last:-0} + 1)))}
if [ -n "${3:-}" ]; then
  .venv/bin/flask --app wsgi db migrate -m "$msg" --rev-id "$rev" --head "$3" --splice
else
  .venv/bin/flask --app wsgi db migrate -m "$msg" --rev-id "$rev"
fi
