"""boto3's managed transfers (current PyPI release, default TransferConfig and checksums).

conformance/python/test_boto3.py already covers upload_file/download_file with a custom 5 MiB
config and a single-part upload. Here: the defaults people actually get (8 MiB threshold and
chunks, CRC32 checksums, a HEAD then ranged GETs with If-Match on download), the file-object
variants with a non-seekable stream, and the managed copy.
"""

from __future__ import annotations

import base64
import io
import os
import zlib

import boto3
import pytest
from botocore.config import Config

from file_tree import MIB

BUCKET = "boto3-transfer"
DEFAULT_CHUNK = 8 * MIB


@pytest.fixture
def s3(server):
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def expected_crc32(parts: list[bytes], checksum_type: str) -> str:
    if checksum_type == "FULL_OBJECT":
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        return base64.b64encode(crc.to_bytes(4, "big")).decode()
    digests = b"".join(zlib.crc32(part).to_bytes(4, "big") for part in parts)
    return f"{crc32_b64(digests)}-{len(parts)}"


class NonSeekableReader(io.RawIOBase):
    """A pipe-like stream: read() only, as from a socket or a subprocess."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), len(self._data) - self._offset)
        buffer[:count] = self._data[self._offset : self._offset + count]
        self._offset += count
        return count


def test_upload_and_download_file_with_default_config(s3, server_log, tmp_path):
    data = os.urandom(30 * MIB + 11)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    s3.upload_file(str(source), BUCKET, "big/30mib.bin")

    parts = chunks(data, DEFAULT_CHUNK)
    head = s3.head_object(Bucket=BUCKET, Key="big/30mib.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith(f'-{len(parts)}"')
    assert "ChecksumCRC32" in head, "boto3 uploads with CRC32 checksums by default"
    checksum_type = head.get("ChecksumType", "COMPOSITE")
    assert head["ChecksumCRC32"] == expected_crc32(parts, checksum_type)

    mark = server_log.mark()
    target = tmp_path / "target.bin"
    s3.download_file(BUCKET, "big/30mib.bin", str(target))
    assert target.read_bytes() == data
    requests = server_log.requests_since(mark)
    assert requests, "no request read back from the server's debug log: has its format changed?"
    ranged = [r for r in requests if r.operation == "GetObject" and r.status == 206]
    assert len(ranged) == len(parts), "download_file fetches the object in ranged GETs"


def test_upload_and_download_fileobj(s3, tmp_path):
    data = os.urandom(12 * MIB + 5)

    s3.upload_fileobj(NonSeekableReader(data), BUCKET, "stream.bin")
    s3.upload_fileobj(io.BytesIO(data[: 3 * MIB]), BUCKET, "small stream.bin")

    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "stream.bin", out)
    assert out.getvalue() == data
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "small stream.bin", out)
    assert out.getvalue() == data[: 3 * MIB]

    head = s3.head_object(Bucket=BUCKET, Key="stream.bin", ChecksumMode="ENABLED")
    checksum_type = head.get("ChecksumType", "COMPOSITE")
    assert head["ChecksumCRC32"] == expected_crc32(chunks(data, DEFAULT_CHUNK), checksum_type)
    head = s3.head_object(Bucket=BUCKET, Key="small stream.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(data[: 3 * MIB])


def test_managed_copy(s3):
    """s3.copy(): CopyObject below the 8 MiB threshold, UploadPartCopy above."""
    small = os.urandom(500_000)
    big = os.urandom(20 * MIB + 7)
    s3.put_object(Bucket=BUCKET, Key="small.bin", Body=small)
    s3.upload_fileobj(io.BytesIO(big), BUCKET, "big.bin")
    s3.create_bucket(Bucket=f"{BUCKET}-other")

    s3.copy({"Bucket": BUCKET, "Key": "small.bin"}, BUCKET, "copies/small.bin")
    s3.copy({"Bucket": BUCKET, "Key": "big.bin"}, f"{BUCKET}-other", "big copy.bin")

    assert s3.get_object(Bucket=BUCKET, Key="copies/small.bin")["Body"].read() == small
    assert s3.get_object(Bucket=f"{BUCKET}-other", Key="big copy.bin")["Body"].read() == big
    head = s3.head_object(Bucket=f"{BUCKET}-other", Key="big copy.bin")
    assert head["ContentLength"] == len(big)
    assert head["ETag"].endswith('-3"'), "copied in 3 parts"
