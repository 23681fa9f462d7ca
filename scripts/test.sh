#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Usage: scripts/test.sh [pytest args...]   (run as root for the system packages)
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use (openssl for test certificates, ps for worker pids).
apt_packages=(openssl procps gnupg)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "missing system packages (run as root to install): ${missing[*]}" >&2
        exit 1
    fi
fi

# Consul 1.8.7 from Debian bullseye, without touching the system's apt sources.
scripts/install-consul.sh

# A private virtualenv keeps the project's pins away from the system Python.
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'

.venv/bin/ruff check server tests bench ansible_collections molecule
.venv/bin/mypy
.venv/bin/ansible-lint -q
# One pytest worker per CPU, each test file kept on one worker (its servers and
# clusters are module fixtures): 6.5 min instead of 11 on 2 cores.
.venv/bin/python -m pytest -n "${STRONGROOM_PYTEST_WORKERS:-auto}" --dist loadfile "$@"

# Deployment scenarios on podman test hosts (DESIGN.md §6): `default` (one node) and `ha`
# (3 Consul + 3 Strongroom hosts, failover). STRONGROOM_SKIP_MOLECULE=1 skips them;
# STRONGROOM_MOLECULE_SCENARIOS picks some.
if [[ "${STRONGROOM_SKIP_MOLECULE:-0}" != 1 ]]; then
    scripts/molecule.sh ${STRONGROOM_MOLECULE_SCENARIOS:-default ha}
fi
