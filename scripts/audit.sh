#!/usr/bin/env bash
# Dependency audit: pip-audit over the installed environment. It queries PyPI's (or OSV's)
# vulnerability data over the network, so it is not part of the CI test run. Fails when a
# vulnerability is found, and also when any dependency could not be checked (an audit that
# reached no vulnerability database must not look clean). Results go in docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pip-audit ] || .venv/bin/pip install -q "pip-audit>=2.7,<3"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# The project itself is not on PyPI: skip it (editable), audit everything it pulls in.
.venv/bin/pip-audit --skip-editable --progress-spinner off "$@" 2>&1 | tee "$out" || status=$?
unchecked=$(grep -c "could not be audited" "$out" || true)
if [ "$unchecked" -gt 0 ]; then
  echo "audit: $unchecked dependencies could not be checked (no vulnerability data reached)" >&2
  [ "$status" -ne 0 ] || status=3
fi
exit $status
