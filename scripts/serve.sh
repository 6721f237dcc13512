#!/usr/bin/env bash
# Set up, migrate, load the demo county (first run only) and serve on http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p instance
flask --app wsgi db upgrade heads
if [ ! -f instance/demo-manifest.json ]; then
  flask --app wsgi demo --manifest instance/demo-manifest.json
fi
python - <<'PY'
import json
m = json.load(open("instance/demo-manifest.json"))
admin = m["admins"][0]
print("\nCredit Mall is starting on http://127.0.0.1:8000")
print(f"  admin:  http://127.0.0.1:8000/admin/   user {admin['username']}  password {admin['password']}")
print("  farmer: http://127.0.0.1:8000/m/       cashier: http://127.0.0.1:8000/cashier/")
print("  API docs: http://127.0.0.1:8000/docs   everything a tester needs: instance/demo-manifest.json\n")
PY
exec gunicorn -c gunicorn.conf.py --bind "${BIND:-127.0.0.1:8000}" --workers "${WORKERS:-2}" wsgi:app
