"""pytest fixtures: a fresh coffre server per test, and boto3 clients for it."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).parent))

from coffre_server import CoffreServer  # noqa: E402


def make_client(server: CoffreServer, **config):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(
            # botocore presigns with legacy SigV2 unless told otherwise; Coffre speaks SigV4 only.
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            **config,
        ),
    )


@pytest.fixture
def server():
    s = CoffreServer()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def s3(server):
    return make_client(server)


@pytest.fixture
def bucket(s3):
    s3.create_bucket(Bucket="pybucket")
    return "pybucket"
