"""restic (Debian package) backing up to Coffre through its S3 backend.

The whole life of a repository: init, backup, check --read-data, restore and compare, a second
backup after changes, forget --keep-last 1 --prune, check again, restore the survivor.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from client_command import ClientCommand
from file_tree import MIB, make_tree, tree_content

BUCKET = "restic-repo"


@pytest.fixture
def restic(server, server_log, client_env, tmp_path) -> ClientCommand:
    env = dict(client_env)
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_DEFAULT_REGION="us-east-1",
        RESTIC_REPOSITORY=f"s3:{server.endpoint}/{BUCKET}",
        RESTIC_PASSWORD="correct horse battery staple",
        RESTIC_CACHE_DIR=str(tmp_path / "restic-cache"),
    )
    return ClientCommand("restic", server_log, env, tmp_path)


def snapshots(restic: ClientCommand) -> list[str]:
    """The repository's snapshot ids, oldest first."""
    listed = json.loads(restic("snapshots", "--json").stdout)
    return [s["id"] for s in sorted(listed, key=lambda s: s["time"])]


def backup(restic: ClientCommand, source: Path) -> str:
    """Backs up `source` and returns the new snapshot's full id."""
    output = restic("backup", "--json", source).stdout
    summary = [json.loads(line) for line in output.splitlines() if '"message_type":"summary"' in line]
    assert len(summary) == 1, output[-2000:]
    # restic 0.14 reports the short id, later releases the full one.
    short = summary[0]["snapshot_id"][:8]
    matching = [id for id in snapshots(restic) if id.startswith(short)]
    assert len(matching) == 1, (short, matching)
    return matching[0]


def restored(restic: ClientCommand, snapshot: str, source: Path, target: Path) -> Path:
    restic("restore", snapshot, "--target", target)
    # restic keeps the absolute path of what it backed up, under the target.
    return target / source.relative_to(source.anchor)


def test_backup_check_restore_forget_prune(restic, tmp_path):
    source = make_tree(tmp_path / "source", seed=7, with_symlink=True)
    rng = random.Random(8)
    (source / "big").mkdir()
    (source / "big/archive.tar").write_bytes(rng.randbytes(6 * MIB + 123))
    first_state = tree_content(source)

    restic("init")
    first = backup(restic, source)
    restic("check", "--read-data")
    assert snapshots(restic) == [first]

    assert tree_content(restored(restic, first, source, tmp_path / "restore-1")) == first_state

    # Second backup: a changed file, a deleted one, a new directory, a renamed one.
    (source / "README.txt").write_bytes(b"changed after the first backup\n")
    (source / "src/main.rs").unlink()
    (source / "new/nested").mkdir(parents=True)
    (source / "new/nested/fresh.bin").write_bytes(rng.randbytes(1 * MIB))
    (source / "photos/2024/img_0001.jpg").rename(source / "photos/2024/renamed.jpg")
    second_state = tree_content(source)
    second = backup(restic, source)
    assert snapshots(restic) == [first, second]

    restic("forget", "--keep-last", "1", "--prune")
    assert snapshots(restic) == [second]
    restic("check", "--read-data")

    assert tree_content(restored(restic, second, source, tmp_path / "restore-2")) == second_state

    # Restoring into a fresh place again, from a cold cache, still works after the prune.
    shutil.rmtree(restic.env["RESTIC_CACHE_DIR"])
    assert tree_content(restored(restic, "latest", source, tmp_path / "restore-3")) == second_state
    assert os.readlink(tmp_path / "restore-3" / source.relative_to(source.anchor) / "latest-report") == (
        "docs/report 2024.pdf"
    )
