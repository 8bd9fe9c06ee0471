"""s3cmd (current release from PyPI) with a path-style, SigV4, plain-HTTP configuration.

mb, put (single and multipart past its 15 MiB chunk size), get, ls, la, info (which reads the
ACLs, bucket policy and CORS configuration), del (single and recursive, the latter through
DeleteObjects), rb, sync up with --delete-removed (including the server-side copy, with its ACL,
that s3cmd makes for a file whose bytes are already stored under another name) and sync down.
"""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from client_command import ClientCommand
from file_tree import MIB, file_sizes, make_tree, tree_content

BUCKET = "s3cmd-bucket"


@pytest.fixture
def s3cmd(server, server_log, client_env, tmp_path) -> ClientCommand:
    host = server.endpoint.removeprefix("http://")
    config = tmp_path / "s3cfg"
    config.write_text(
        "[default]\n"
        f"access_key = {server.access_key}\n"
        f"secret_key = {server.secret_key}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        "bucket_location = us-east-1\n"
        "use_https = False\n"
        "signature_v2 = False\n"
    )
    return ClientCommand("s3cmd", server_log, client_env, tmp_path, ["--config", config, "--no-progress"])


def ls(s3cmd: ClientCommand, url: str) -> dict[str, int]:
    """`s3cmd ls --recursive` as key -> size."""
    listing = {}
    prefix = f"s3://{BUCKET}/"
    for line in s3cmd("ls", "--recursive", url).stdout.splitlines():
        _date, _time, size, url_of_key = line.split(maxsplit=3)
        assert url_of_key.startswith(prefix), line
        listing[url_of_key[len(prefix) :]] = int(size)
    return listing


def info_fields(s3cmd: ClientCommand, url: str) -> dict[str, str]:
    """`s3cmd info` as field -> value (the first line, naming the object, left out)."""
    fields = {}
    for line in s3cmd("info", url).stdout.splitlines()[1:]:
        name, _, value = line.strip().partition(":")
        fields[name] = value.strip()
    return fields


def test_mb_put_get_ls_del(s3cmd, tmp_path):
    s3cmd("mb", f"s3://{BUCKET}")
    assert s3cmd("ls").stdout.split()[-1] == f"s3://{BUCKET}"

    small = os.urandom(200_000)
    big = os.urandom(32 * MIB + 1)  # 3 parts at s3cmd's 15 MiB multipart chunk size
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    s3cmd("put", tmp_path / "small.bin", f"s3://{BUCKET}/dir/small file.bin")
    s3cmd("put", tmp_path / "big.bin", f"s3://{BUCKET}/dir/big.bin")
    assert ls(s3cmd, f"s3://{BUCKET}") == {"dir/small file.bin": len(small), "dir/big.bin": len(big)}
    assert s3cmd("la").stdout.split() == ["DIR", f"s3://{BUCKET}/dir/"]

    # `info` reads the object's ACL and the bucket's policy and CORS configuration too.
    info = info_fields(s3cmd, f"s3://{BUCKET}/dir/small file.bin")
    assert info["File size"] == str(len(small))
    assert info["MD5 sum"] == hashlib.md5(small).hexdigest()
    assert info["Policy"] == "none"
    assert info["CORS"] == "none"
    assert info["ACL"].endswith(": FULL_CONTROL"), info
    info = info_fields(s3cmd, f"s3://{BUCKET}")
    assert info["Location"] == "us-east-1"
    assert info["ACL"].endswith(": FULL_CONTROL"), info

    s3cmd("get", f"s3://{BUCKET}/dir/small file.bin", tmp_path / "small.out")
    s3cmd("get", f"s3://{BUCKET}/dir/big.bin", tmp_path / "big.out")
    assert (tmp_path / "small.out").read_bytes() == small
    assert (tmp_path / "big.out").read_bytes() == big

    s3cmd("del", f"s3://{BUCKET}/dir/small file.bin")
    assert ls(s3cmd, f"s3://{BUCKET}") == {"dir/big.bin": len(big)}


def test_sync_up_and_down(s3cmd, tmp_path):
    s3cmd("mb", f"s3://{BUCKET}")
    source = make_tree(tmp_path / "source", seed=9)
    s3cmd("sync", f"{source}/", f"s3://{BUCKET}/backup/")
    assert ls(s3cmd, f"s3://{BUCKET}") == {f"backup/{k}": v for k, v in file_sizes(source).items()}

    # Change one file, delete one, and rename one (s3cmd copies it on the server: same md5).
    (source / "README.txt").write_bytes(b"changed\n")
    (source / "src/main.rs").unlink()
    shutil.move(source / "src/lib/mod.rs", source / "src/lib/renamed.rs")
    synced = s3cmd("sync", "--delete-removed", f"{source}/", f"s3://{BUCKET}/backup/")
    assert "remote copy: 'src/lib/mod.rs' -> 'src/lib/renamed.rs'" in synced.stdout
    assert "WARNING" not in synced.stderr, synced.stderr
    assert "delete: 's3://s3cmd-bucket/backup/src/main.rs'" in synced.stdout
    assert ls(s3cmd, f"s3://{BUCKET}") == {f"backup/{k}": v for k, v in file_sizes(source).items()}

    target = tmp_path / "target"
    s3cmd("sync", f"s3://{BUCKET}/backup/", f"{target}/")
    assert tree_content(target, with_dirs=False) == tree_content(source, with_dirs=False)

    s3cmd("del", "--recursive", "--force", f"s3://{BUCKET}/backup/")
    assert ls(s3cmd, f"s3://{BUCKET}") == {}
    s3cmd("rb", f"s3://{BUCKET}")
    assert s3cmd("ls").stdout.strip() == ""
