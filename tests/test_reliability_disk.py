"""Disk full and read-only destinations: a clear one-line error, the source untouched,
the destination not corrupted.

- *file too large*: the child runs with ``RLIMIT_FSIZE`` lowered (Python ignores
  SIGXFSZ, so a write past the limit fails with ``EFBIG``); works anywhere, no privilege.
- *disk full*: a 384 KiB tmpfs is mounted as the destination (real ``ENOSPC``);
  skipped where ``mount`` is not permitted.
- *read-only*: the destination's files and directory are made read-only; when
  the tests run as root (whom modes do not stop) the child runs as ``nobody``
  instead; skipped when that is not possible either.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest

from tributestore import open_store
from tributestore.copier import verify_stores
from tributestore.digest import bundle_digest
from tributestore.errors import StorageError

SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"
CLI = [sys.executable, "-c", "from tributestore.cli import main; main()"]
GUILD = 77
LIMIT = 256 * 1024
NOBODY = 65534


def make_source(url: str) -> None:
    """Twenty tributes; one owns a file larger than every limit used here."""
    with open_store(url) as store, store.transaction():
        for n in range(20):
            tid = f"T{n:02d}"
            store.create_tribute(GUILD, tid, name=f"tribute {n}")
            store.add_item(GUILD, tid, f"item of {tid}")
            size = 600 * 1024 if n == 12 else 20 * 1024
            store.add_file(GUILD, tid, f"{tid}.bin", hashlib.sha256(tid.encode()).digest() * (size // 32))


def logical_digest(url: str) -> list[str]:
    with open_store(url) as store:
        return [bundle_digest(b) for b in store.iter_bundles()]


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
        digest.update(str(path).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and " note: " not in line]
    assert len(lines) == 1 and lines[0].startswith("tributestore: error: "), result.stderr


def assert_destination_sound(src_url: str, dst_url: str) -> int:
    """The destination opens, ``check()`` finds nothing, and each tribute it holds is whole."""
    with open_store(src_url) as src, open_store(dst_url) as dst:
        assert dst.check() == []
        held = 0
        for bundle in dst.iter_bundles():
            key = (bundle.tribute.guild_id, bundle.tribute.tribute_id)
            assert bundle_digest(bundle) == bundle_digest(src.export_tribute(*key))
            held += 1
        return held


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def run(
    args: list[str], cwd: Path, preexec: Callable[[], None] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        preexec_fn=preexec,
        env=env,
        **kw,  # type: ignore[call-overload]
    )


DESTINATIONS = [
    pytest.param("json", marks=pytest.mark.backend("json")),
    pytest.param("sqlite", marks=pytest.mark.backend("sqlite")),
]


def dst_url_of(kind: str, directory: Path) -> str:
    return f"json:///{directory}/dst" if kind == "json" else f"sqlite:///{directory}/dst.db"


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_copy_past_the_file_size_limit(tmp_path: Path, destination: str) -> None:
    src_url = f"sqlite:///{tmp_path}/src.db"
    make_source(src_url)
    before, src_bytes = logical_digest(src_url), (tmp_path / "src.db").read_bytes()
    dst_url = dst_url_of(destination, tmp_path)
    result = run(["copy", src_url, dst_url, "--no-backup", "--batch-size", "1"], tmp_path, limit_file_size)
    assert_clean_failure(result)
    assert result.returncode == StorageError.exit_code
    print(f"\nfile size limit, {destination}: {result.stderr.strip()}")
    assert logical_digest(src_url) == before and (tmp_path / "src.db").read_bytes() == src_bytes
    held = assert_destination_sound(src_url, dst_url)
    assert held < 20
    # With room again, re-running the same command finishes the copy.
    again = run(["copy", src_url, dst_url, "--no-backup", "--batch-size", "1"], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    with open_store(src_url) as src, open_store(dst_url) as dst:
        assert verify_stores(src, dst) == []


WRITER = """
import sys
from tributestore import open_store, StorageError
with open_store(sys.argv[1]) as store:
    store.add_item(77, "T00", "small write fits")
    try:
        store.add_file(77, "T00", "huge.bin", b"x" * (1024 * 1024))
    except StorageError as error:
        print("refused:", error)
    else:
        print("accepted")
    store.add_item(77, "T00", "small write after the failure")
"""


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_library_write_past_the_file_size_limit(tmp_path: Path, destination: str) -> None:
    url = dst_url_of(destination, tmp_path)
    with open_store(url) as store:
        store.create_tribute(GUILD, "T00")
    result = subprocess.run(
        [sys.executable, "-c", WRITER, url],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused:") and "\n" not in result.stdout.strip(), result.stdout
    with open_store(url) as store:
        assert store.check() == []
        assert store.list_files(GUILD, "T00") == []
        assert store.get_inventory(GUILD, "T00").items == [
            "small write fits",
            "small write after the failure",
        ]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mount_point)],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("mount is not available here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], timeout=30, check=False)


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_copy_to_a_full_disk(tmp_path: Path, small_disk: Path, destination: str) -> None:
    src_url = f"json:///{tmp_path}/src"
    make_source(src_url)
    before = tree_digest(tmp_path / "src")
    dst_url = dst_url_of(destination, small_disk)
    result = run(["copy", src_url, dst_url, "--no-backup", "--batch-size", "4"], tmp_path)
    assert_clean_failure(result)
    assert result.returncode == StorageError.exit_code
    print(f"\nfull disk, {destination}: {result.stderr.strip()}")
    assert tree_digest(tmp_path / "src") == before
    if (small_disk / "dst").exists() or (small_disk / "dst.db").exists():
        assert assert_destination_sound(src_url, dst_url) < 20


def can_run_as_nobody() -> bool:
    try:
        probe = [sys.executable, "-c", "import tributestore"]
        return subprocess.run(probe, user=NOBODY, group=NOBODY, timeout=60, cwd="/").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bind_read_only(path: Path) -> bool:
    """Make ``path`` a read-only bind mount of itself (stops root too); whether it worked."""
    steps = [["mount", "--bind", str(path), str(path)], ["mount", "-o", "remount,bind,ro", str(path)]]
    for number, step in enumerate(steps):
        try:
            done = subprocess.run(step, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return False
        if done.returncode != 0:
            if number:
                subprocess.run(["umount", str(path)], capture_output=True, timeout=30, check=False)
            return False
    return True


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="tributestore-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path / "dest")], capture_output=True, timeout=30, check=False)
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                os.chmod(os.path.join(dirpath, name), 0o755, follow_symlinks=False)
        shutil.rmtree(path)


def make_read_only(path: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_copy_to_a_read_only_destination(shared_dir: Path, destination: str) -> None:
    with resources.as_file(SAMPLE) as sample:
        legacy = Path(shutil.copytree(sample, shared_dir / "legacy"))
    make_read_only(legacy)
    before_source = tree_digest(legacy)
    home = shared_dir / "dest"
    home.mkdir()
    dst_url = dst_url_of(destination, home)
    with open_store(dst_url) as dst:
        dst.create_tribute(1, "KEEP", name="was here")
    make_read_only(home)
    as_other: dict[str, int] = {}
    if os.geteuid() == 0 and not bind_read_only(home):  # modes do not stop root
        if not can_run_as_nobody():
            pytest.skip("root, no read-only bind mount, cannot run as nobody: nothing makes it read-only")
        as_other = {"user": NOBODY, "group": NOBODY}
    before_destination = tree_digest(home)
    option = "?lock_timeout=5" if destination == "json" else "?timeout=5"
    result = run(["copy", f"thgbot:///{legacy}", dst_url + option, "--no-backup"], shared_dir, **as_other)
    assert_clean_failure(result)
    assert tree_digest(legacy) == before_source
    assert tree_digest(home) == before_destination
    print(f"\nread-only {destination}: {result.stderr.strip()}")
