#!/usr/bin/env bash
# The Debian packages the test suite needs beyond the venv, so no test skips for want of a tool:
#   chromium (+ a font)  the nightly HTML report rendered headless (tests/nightly/test_report_browser.py)
#   postgresql           a throwaway server for the fleet history (tests/nightly/test_history_regression.py)
#   systemd              systemd-analyze verifies the nightly units (tests/nightly/test_docker_systemd.py)
# Idempotent: installs only what is missing; as a non-root user it uses sudo.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if ((${#need[@]} == 0)); then
  echo "ci: system packages present (chromium, postgresql, systemd-analyze)"
  exit 0
fi
SUDO=()
[[ $(id -u) == 0 ]] || SUDO=(sudo)
echo "ci: installing ${need[*]}"
"${SUDO[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
command -v chromium >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  && command -v systemd-analyze >/dev/null || { echo "ci: ${need[*]} did not install" >&2; exit 1; }
