#!/usr/bin/env bash
# mypy --strict on the source tree. mypy cannot follow the editable install's folder mapping
# (core/ -> tributestore, backends/ -> tributestore.backends), so build that mapping as a
# symlink tree and point MYPYPATH at it. (tox -e type checks the installed wheel instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/tributestore"
for entry in core/*; do ln -s "$PWD/$entry" "$tree/tributestore/"; done
ln -s "$PWD/backends" "$tree/tributestore/backends"
MYPYPATH="$tree" "${MYPY:-.venv/bin/mypy}" -p tributestore "$@"
