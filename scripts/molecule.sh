#!/usr/bin/env bash
# Run the Molecule scenarios on podman test hosts (root; builds the image on first use).
# Usage: scripts/molecule.sh [scenario...]      default: default ha hsm
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-test-image.sh
export CONTAINERS_CONF=${XDG_CACHE_HOME:-$HOME/.cache}/strongroom-test-hosts/containers.conf
export PATH="$PWD/.venv/bin:$PATH"   # molecule calls ansible-playbook by name
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(default ha hsm)
for scenario in "${scenarios[@]}"; do
    started=$SECONDS
    .venv/bin/molecule test -s "$scenario"
    echo "molecule scenario $scenario passed in $((SECONDS - started)) s"
done
