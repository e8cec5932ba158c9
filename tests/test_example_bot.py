"""examples/thgbot_inventory.py runs unchanged against every backend, chosen by configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pytest

from tributestore import open_store

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "thgbot_inventory.py"
SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"


def _urls(tmp_path: Path) -> dict[str, str]:
    with resources.as_file(SAMPLE) as sample:
        legacy = shutil.copytree(sample, tmp_path / "legacy")
    primary = quote(f"sqlite:///{tmp_path}/window.db", safe="")
    fallback = quote(f"thgbot:///{legacy}", safe="")
    return {
        "sqlite": f"sqlite:///{tmp_path}/thg.db",
        "json": f"json:///{tmp_path}/store",
        "composite": f"composite:?primary={primary}&fallback={fallback}",
    }


@pytest.mark.parametrize("backend", ["sqlite", "json", "composite"])
def test_example_bot_against_each_backend(tmp_path: Path, backend: str) -> None:
    url = _urls(tmp_path)[backend]
    env = {"TRIBUTESTORE_URL": url, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "1395951775160340551", "d99f"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    replies = result.stdout.splitlines()
    assert replies[0] == "Created tribute D99F (Example Tribute)"
    assert "Removed 'Canteen'" in replies
    assert "1. Meat (2/2 uses.)" in replies and "2. Hunting knife" in replies
    assert "D99F #2: Hunting knife" in replies
    assert replies[-1] == "Saved prompt for D99F with D99F_1700000000.png"
    with open_store(url) as store:
        assert store.get_prompt(1395951775160340551, "D99F").files == ["D99F_1700000000.png"]
        assert store.read_file(1395951775160340551, "D99F", "D99F_1700000000.png") == b"\x89PNG\r\n"
