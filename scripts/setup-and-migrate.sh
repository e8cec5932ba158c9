#!/usr/bin/env bash
# Fresh machine set-up: a virtualenv with tributestore (and tox), then the main job:
# copy the bundled sample legacy THGBot data directory into SQLite, verified.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,dev,postgres,discord]"
rm -rf sample-config thg.db
.venv/bin/tributestore sample-legacy sample-config
.venv/bin/tributestore copy thgbot:///sample-config sqlite:///thg.db
.venv/bin/tributestore stats sqlite:///thg.db
