"""A real S3-compatible server on loopback (moto's server, in its own process) for the tests of
sources and lakes on an object store."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """The AWS variables that point a client at a new server (AWS_ENDPOINT_URL and credentials)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "moto's S3 server did not start"
                time.sleep(0.05)
        yield {"AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}
    finally:
        server.terminate()
        server.wait(timeout=30)


def new_bucket(environment: dict[str, str]) -> str:
    """A new empty bucket on the server of `environment`; its name."""
    import boto3  # moto's own client library, used only to make buckets

    name = f"bucket-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"],
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")  # fmt: skip
    client.create_bucket(Bucket=name)
    return name


def upload(folder: Path, url: str) -> None:
    """Put every file under `folder` at the same name under `url` (s3://bucket/prefix)."""
    fs, base = pafs.FileSystem.from_uri(url)
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        with fs.open_output_stream(f"{base}/{path.relative_to(folder).as_posix()}") as sink:
            sink.write(path.read_bytes())
