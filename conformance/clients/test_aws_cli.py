"""aws cli (current release from PyPI) against the real coffre binary.

`aws s3` as people type it: mb, cp up and down (single PUT and multipart past the default 8 MiB
threshold), recursive cp, sync with --delete, ls --recursive, rm and rm --recursive, presign,
copies between keys, mv and rb.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request

import pytest

from client_command import ClientCommand
from file_tree import MIB, file_sizes, make_tree, tree_content

BUCKET = "aws-cli-bucket"


@pytest.fixture
def aws(server, server_log, client_env, tmp_path) -> ClientCommand:
    config = tmp_path / "aws-config"
    # The aws cli v1 presigns with SigV2 unless told s3v4; Coffre speaks SigV4 only.
    config.write_text(
        "[default]\n"
        "region = us-east-1\n"
        "s3 =\n"
        "    addressing_style = path\n"
        "    signature_version = s3v4\n"
    )
    env = dict(client_env)
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "credentials"),
        AWS_CONFIG_FILE=str(config),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
    )
    return ClientCommand("aws", server_log, env, tmp_path, ["--endpoint-url", server.endpoint])


def s3_ls(aws: ClientCommand, url: str) -> dict[str, int]:
    """`aws s3 ls --recursive` as key -> size."""
    listing = {}
    for line in aws("s3", "ls", "--recursive", url).stdout.splitlines():
        _date, _time, size, key = line.split(maxsplit=3)
        listing[key] = int(size)
    return listing


def etag(aws: ClientCommand, key: str) -> str:
    head = json.loads(aws("s3api", "head-object", "--bucket", BUCKET, "--key", key).stdout)
    return head["ETag"]


def test_mb_cp_ls_rm(aws, tmp_path):
    aws("s3", "mb", f"s3://{BUCKET}")
    buckets = [line.split()[-1] for line in aws("s3", "ls").stdout.splitlines()]
    assert buckets == [BUCKET]

    small = os.urandom(1 * MIB + 5)
    big = os.urandom(20 * MIB + 3)  # 3 parts at the default 8 MiB threshold and chunk size
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big file.bin").write_bytes(big)
    aws("s3", "cp", "--only-show-errors", tmp_path / "small.bin", f"s3://{BUCKET}/one/small.bin")
    aws("s3", "cp", "--only-show-errors", tmp_path / "big file.bin", f"s3://{BUCKET}/one/big file.bin")

    assert s3_ls(aws, f"s3://{BUCKET}") == {"one/small.bin": len(small), "one/big file.bin": len(big)}
    assert etag(aws, "one/small.bin") == f'"{hashlib.md5(small).hexdigest()}"'
    assert etag(aws, "one/big file.bin").endswith('-3"'), "uploaded in 3 parts"

    aws("s3", "cp", "--only-show-errors", f"s3://{BUCKET}/one/small.bin", tmp_path / "small.out")
    aws("s3", "cp", "--only-show-errors", f"s3://{BUCKET}/one/big file.bin", tmp_path / "big.out")
    assert (tmp_path / "small.out").read_bytes() == small
    assert (tmp_path / "big.out").read_bytes() == big

    # A directory tree, up and down with --recursive.
    source = make_tree(tmp_path / "tree")
    aws("s3", "cp", "--only-show-errors", "--recursive", source, f"s3://{BUCKET}/tree/")
    listing = s3_ls(aws, f"s3://{BUCKET}/tree/")
    assert listing == {f"tree/{k}": v for k, v in file_sizes(source).items()}
    aws("s3", "cp", "--only-show-errors", "--recursive", f"s3://{BUCKET}/tree/", tmp_path / "tree.out")
    assert tree_content(tmp_path / "tree.out", with_dirs=False) == tree_content(source, with_dirs=False)

    aws("s3", "rm", "--only-show-errors", f"s3://{BUCKET}/one/small.bin")
    assert "one/small.bin" not in s3_ls(aws, f"s3://{BUCKET}")
    aws("s3", "rm", "--only-show-errors", "--recursive", f"s3://{BUCKET}/tree/")
    assert s3_ls(aws, f"s3://{BUCKET}") == {"one/big file.bin": len(big)}
    aws("s3", "rm", "--only-show-errors", "--recursive", f"s3://{BUCKET}")
    assert s3_ls(aws, f"s3://{BUCKET}") == {}

    aws("s3", "rb", f"s3://{BUCKET}")
    assert aws("s3", "ls").stdout == ""


def test_sync_with_delete(aws, tmp_path):
    aws("s3", "mb", f"s3://{BUCKET}")
    source = make_tree(tmp_path / "source")
    aws("s3", "sync", "--only-show-errors", source, f"s3://{BUCKET}/backup")
    assert s3_ls(aws, f"s3://{BUCKET}") == {f"backup/{k}": v for k, v in file_sizes(source).items()}

    # Nothing changed: nothing is transferred.
    assert aws("s3", "sync", source, f"s3://{BUCKET}/backup").stdout.strip() == ""

    # Change one file's size, one file's bytes only (newer mtime), delete one, add one.
    (source / "README.txt").write_bytes(b"a new readme, of another length\n")
    report = source / "docs/report 2024.pdf"
    report.write_bytes(os.urandom(report.stat().st_size))
    os.utime(report, (report.stat().st_atime, report.stat().st_mtime + 10))
    (source / "src/main.rs").unlink()
    (source / "src/new.rs").write_bytes(os.urandom(70_000))
    output = aws("s3", "sync", "--delete", source, f"s3://{BUCKET}/backup").stdout
    assert "delete: s3://aws-cli-bucket/backup/src/main.rs" in output
    assert s3_ls(aws, f"s3://{BUCKET}") == {f"backup/{k}": v for k, v in file_sizes(source).items()}

    target = tmp_path / "restored"
    aws("s3", "sync", "--only-show-errors", f"s3://{BUCKET}/backup", target)
    assert tree_content(target, with_dirs=False) == tree_content(source, with_dirs=False)

    # The other way round: a local deletion mirrored from the bucket.
    (target / "stray.txt").write_bytes(b"not in the bucket")
    aws("s3", "sync", "--only-show-errors", "--delete", f"s3://{BUCKET}/backup", target)
    assert not (target / "stray.txt").exists()


def test_presign(aws, tmp_path):
    aws("s3", "mb", f"s3://{BUCKET}")
    data = os.urandom(200_000)
    (tmp_path / "shared.bin").write_bytes(data)
    aws("s3", "cp", "--only-show-errors", tmp_path / "shared.bin", f"s3://{BUCKET}/to share/shared.bin")

    url = aws("s3", "presign", "--expires-in", "300", f"s3://{BUCKET}/to share/shared.bin").stdout.strip()
    assert "X-Amz-Signature=" in url, url
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == data


def test_copy_and_move_between_keys(aws, tmp_path):
    """`aws s3 cp/mv s3://... s3://...`: CopyObject, and UploadPartCopy past 8 MiB."""
    aws("s3", "mb", f"s3://{BUCKET}")
    aws("s3", "mb", f"s3://{BUCKET}-other")
    small = os.urandom(100_000)
    big = os.urandom(20 * MIB + 1)
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    aws("s3", "cp", "--only-show-errors", tmp_path / "small.bin", f"s3://{BUCKET}/small.bin")
    aws("s3", "cp", "--only-show-errors", tmp_path / "big.bin", f"s3://{BUCKET}/big.bin")

    aws("s3", "cp", "--only-show-errors", f"s3://{BUCKET}/small.bin", f"s3://{BUCKET}/copies/small.bin")
    aws("s3", "cp", "--only-show-errors", f"s3://{BUCKET}/big.bin", f"s3://{BUCKET}-other/big.bin")
    aws("s3", "mv", "--only-show-errors", f"s3://{BUCKET}/small.bin", f"s3://{BUCKET}/moved/small.bin")

    assert s3_ls(aws, f"s3://{BUCKET}") == {
        "big.bin": len(big),
        "copies/small.bin": len(small),
        "moved/small.bin": len(small),
    }
    aws("s3", "cp", "--only-show-errors", f"s3://{BUCKET}/moved/small.bin", tmp_path / "small.out")
    aws("s3", "cp", "--only-show-errors", f"s3://{BUCKET}-other/big.bin", tmp_path / "big.out")
    assert (tmp_path / "small.out").read_bytes() == small
    assert (tmp_path / "big.out").read_bytes() == big
