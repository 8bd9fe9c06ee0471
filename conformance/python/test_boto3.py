"""boto3 (current PyPI release, default settings) against the real coffre binary.

Covers the transfer managers (multipart with the default CRC32 checksums), put/get with default
checksums, listing paginators (boto3 asks for encoding-type=url and decodes), presigned URLs used
with urllib, virtual-host addressing, errors, and restart persistence.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
import urllib.error
import urllib.request
import zlib

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import make_client
from coffre_server import CoffreServer

MIB = 1024 * 1024


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def error_of(excinfo) -> tuple[int, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def test_put_get_with_default_checksums(s3, bucket):
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert put.get("ChecksumCRC32") == crc32_b64(data), "boto3 sends CRC32 by default"

    got = s3.get_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32_b64(data)
    assert got["Body"].read() == data  # botocore validates the checksum while reading
    assert got["ContentLength"] == len(data)

    head = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(data)

    for algorithm, key in [("SHA256", "ChecksumSHA256"), ("SHA1", "ChecksumSHA1")]:
        out = s3.put_object(Bucket=bucket, Key=f"obj-{algorithm}", Body=data, ChecksumAlgorithm=algorithm)
        head = s3.head_object(Bucket=bucket, Key=f"obj-{algorithm}", ChecksumMode="ENABLED")
        assert head[key] == out[key], algorithm
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert s3.head_object(Bucket=bucket, Key="obj-SHA256", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha256


def test_content_headers_metadata_and_ranges(s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="page.html",
        Body=b"<html>0123456789</html>",
        ContentType="text/html",
        ContentDisposition='attachment; filename="page.html"',
        ContentLanguage="en",
        CacheControl="no-store",
        Metadata={"owner": "team-a", "Build": "42"},
    )
    head = s3.head_object(Bucket=bucket, Key="page.html")
    assert head["ContentType"] == "text/html"
    assert head["ContentDisposition"] == 'attachment; filename="page.html"'
    assert head["ContentLanguage"] == "en"
    assert head["CacheControl"] == "no-store"
    assert head["Metadata"] == {"owner": "team-a", "build": "42"}

    part = s3.get_object(Bucket=bucket, Key="page.html", Range="bytes=6-15")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == "bytes 6-15/23"
    assert part["Body"].read() == b"0123456789"

    overridden = s3.get_object(Bucket=bucket, Key="page.html", ResponseContentType="text/plain")
    assert overridden["ContentType"] == "text/plain"

    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="page.html", IfNoneMatch=head["ETag"])
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="page.html", IfMatch='"0000"')
    assert error_of(excinfo) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="page.html", Range="bytes=100-200")
    assert error_of(excinfo) == (416, "InvalidRange")


def test_transfer_manager_multipart_round_trip(s3, bucket, tmp_path):
    data = os.urandom(20 * MIB + 12345)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)

    s3.upload_file(str(source), bucket, "big/file.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert head["ContentLength"] == len(data)
    parts = [data[i : i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    assert len(parts) == 5
    assert head["ETag"] == multipart_etag(parts)

    target = tmp_path / "target.bin"
    s3.download_file(bucket, "big/file.bin", str(target), Config=config)
    assert target.read_bytes() == data

    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_transfer_manager_single_part(s3, bucket, tmp_path):
    data = os.urandom(1 * MIB + 1)
    source = tmp_path / "small.bin"
    source.write_bytes(data)
    s3.upload_file(str(source), bucket, "small.bin")
    target = tmp_path / "small.out"
    s3.download_file(bucket, "small.bin", str(target))
    assert target.read_bytes() == data
    head = s3.head_object(Bucket=bucket, Key="small.bin")
    assert head["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_low_level_multipart(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    upload_id = upload["UploadId"]
    parts = [os.urandom(5 * MIB), os.urandom(1000)]
    completed = []
    for number, data in enumerate(parts, start=1):
        out = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=data)
        assert out["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        completed.append({"PartNumber": number, "ETag": out["ETag"]})

    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 * MIB), (2, 1000)]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp", upload_id)]

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": completed}
    )
    assert done["ETag"] == multipart_etag(parts)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)

    other = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=other)
    with pytest.raises(ClientError) as excinfo:
        s3.list_parts(Bucket=bucket, Key="aborted", UploadId=other)
    assert error_of(excinfo) == (404, "NoSuchUpload")


def test_listing_paginators(s3, bucket):
    keys = set()
    for i in range(150):
        keys.add(f"logs/2024/{i:03d}.txt")
    for i in range(60):
        keys.add(f"photos/{i % 6} album/img {i}+x.jpg")
    keys.update({"top level", "ünïcödé/ключ", "percent%2Fliteral", "a&b<c>'\"d"})
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    paginator = s3.get_paginator("list_objects_v2")
    listed = []
    pages = 0
    for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 37}):
        pages += 1
        assert page["KeyCount"] == len(page.get("Contents", []))
        listed.extend(o["Key"] for o in page.get("Contents", []))
    expected = sorted(keys, key=lambda k: k.encode())
    assert listed == expected
    assert pages == -(-len(keys) // 37)

    prefixes = []
    for page in paginator.paginate(Bucket=bucket, Prefix="photos/", Delimiter="/", PaginationConfig={"PageSize": 4}):
        prefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        assert not page.get("Contents")
    assert prefixes == [f"photos/{i} album/" for i in range(6)]

    v1 = s3.get_paginator("list_objects")
    listed_v1 = [o["Key"] for page in v1.paginate(Bucket=bucket, PaginationConfig={"PageSize": 50}) for o in page.get("Contents", [])]
    assert listed_v1 == expected

    tops = []
    for page in v1.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}):
        tops.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        tops.extend(o["Key"] for o in page.get("Contents", []))
    assert sorted(tops, key=lambda k: k.encode()) == [
        "a&b<c>'\"d",
        "logs/",
        "percent%2Fliteral",
        "photos/",
        "top level",
        "ünïcödé/",
    ]

    after = s3.list_objects_v2(Bucket=bucket, StartAfter="photos/", MaxKeys=1000)
    assert [o["Key"] for o in after["Contents"]] == [k for k in expected if k.encode() > b"photos/"]


def test_presigned_urls(s3, bucket):
    data = os.urandom(50_000)
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "shared file.bin"}, ExpiresIn=300
    )
    request = urllib.request.Request(put_url, data=data, method="PUT")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared file.bin"}, ExpiresIn=300
    )
    with urllib.request.urlopen(get_url) as response:
        assert response.read() == data

    tampered = get_url.replace("shared%20file.bin", "other.bin")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(tampered)
    assert excinfo.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in excinfo.value.read()

    short = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared file.bin"}, ExpiresIn=1
    )
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(short)
    assert excinfo.value.code == 403
    assert b"<Code>AccessDenied</Code>" in excinfo.value.read()

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(get_url.split("?")[0])
    assert excinfo.value.code == 403


def test_errors(s3, bucket, server):
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="missing")
    assert error_of(excinfo) == (404, "NoSuchKey")
    assert excinfo.value.response["ResponseMetadata"]["RequestId"]

    with pytest.raises(ClientError) as excinfo:
        s3.list_objects_v2(Bucket="no-such-bucket")
    assert error_of(excinfo) == (404, "NoSuchBucket")

    with pytest.raises(ClientError) as excinfo:
        s3.create_bucket(Bucket=bucket)
    assert error_of(excinfo) == (409, "BucketAlreadyOwnedByYou")

    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    with pytest.raises(ClientError) as excinfo:
        s3.delete_bucket(Bucket=bucket)
    assert error_of(excinfo) == (409, "BucketNotEmpty")

    import boto3

    bad = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.access_key,
        aws_secret_access_key="not-the-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as excinfo:
        bad.list_buckets()
    assert error_of(excinfo) == (403, "SignatureDoesNotMatch")

    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    assert s3.list_buckets()["Buckets"] == []


def test_bucket_location_and_listing(s3):
    s3.create_bucket(Bucket="loc")
    location = s3.get_bucket_location(Bucket="loc")
    assert location.get("LocationConstraint") in (None, "", "us-east-1")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["loc"]
    s3.head_bucket(Bucket="loc")


@pytest.fixture
def loopback_dns(monkeypatch):
    """Resolves *.s3.test (and s3.test) to 127.0.0.1 inside this process."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and (host == "s3.test" or host.endswith(".s3.test")):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_virtual_host_style(loopback_dns):
    server = CoffreServer("--domain", "s3.test")
    try:
        port = server.endpoint.rsplit(":", 1)[1]
        import boto3

        client = boto3.session.Session().client(
            "s3",
            endpoint_url=f"http://s3.test:{port}",
            region_name="us-east-1",
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "virtual"},
                retries={"max_attempts": 1},
            ),
        )
        client.create_bucket(Bucket="vhost")
        client.put_object(Bucket="vhost", Key="dir/a b", Body=b"virtual")
        assert client.get_object(Bucket="vhost", Key="dir/a b")["Body"].read() == b"virtual"
        listed = client.list_objects_v2(Bucket="vhost")
        assert [o["Key"] for o in listed["Contents"]] == ["dir/a b"]
        url = client.generate_presigned_url("get_object", Params={"Bucket": "vhost", "Key": "dir/a b"})
        assert "//vhost.s3.test:" in url
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"virtual"
    finally:
        server.stop()


def test_restart_keeps_objects(server):
    s3 = make_client(server)
    s3.create_bucket(Bucket="keep")
    data = os.urandom(2 * MIB)
    s3.put_object(Bucket="keep", Key="blob", Body=data)
    s3.put_object(Bucket="keep", Key="tiny", Body=b"t")
    server.restart()
    s3 = make_client(server)
    assert s3.get_object(Bucket="keep", Key="blob")["Body"].read() == data
    assert s3.get_object(Bucket="keep", Key="tiny")["Body"].read() == b"t"
    server.kill()
    server.restart()
    s3 = make_client(server)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="keep")["Contents"]] == ["blob", "tiny"]
