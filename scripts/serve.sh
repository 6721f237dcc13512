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
export BIND=${BIND:-127.0.0.1:8000}
python - <<'PY'
import json, os
m = json.load(open("instance/demo-manifest.json"))
admin = m["admins"][0]
url = "http://" + os.environ["BIND"]
print(f"\nCredit Mall is starting on {url}")
print(f"  admin:  {url}/admin/   user {admin['username']}  password {admin['password']}")
print(f"  farmer: {url}/m/       cashier: {url}/cashier/")
print(f"  API docs: {url}/docs   everything a tester needs: instance/demo-manifest.json\n")
PY
exec gunicorn -c gunicorn.conf.py --bind "$BIND" --workers "${WORKERS:-2}" wsgi:app
