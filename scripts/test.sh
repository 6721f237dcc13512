#!/usr/bin/env bash
# Set everything up and run the whole suite: lint, types, then the tests on SQLite and,
# when a PostgreSQL server is reachable, on PostgreSQL too. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"; ruff check .
echo "== mypy"; mypy
echo "== import contracts"; lint-imports --no-cache

PG_URL=${TEST_DATABASE_URL_PG:-postgresql://postgres@127.0.0.1:5432/test}
pg_ok=0
python - "$PG_URL" <<'PY' && pg_ok=1 || true
import sys, psycopg
psycopg.connect(sys.argv[1].replace("postgresql+psycopg", "postgresql"), connect_timeout=3).close()
PY

status=0
echo "== tests on SQLite"
TEST_DATABASE_URL=sqlite pytest -p no:cacheprovider "$@" || status=$?
if [ "$pg_ok" = 1 ]; then
  echo "== tests on PostgreSQL"
  TEST_DATABASE_URL="$PG_URL" pytest -p no:cacheprovider "$@" || status=$?
else
  echo "== PostgreSQL not reachable at $PG_URL: PostgreSQL-only tests were not run" >&2
  if [ "${CI:-}" = "true" ]; then status=1; fi
fi
exit $status
