"""Source directories on an object store (a real S3-compatible server on loopback): the local
copy follows the objects, processes copying at once leave whole files, and a run from the store
bills what a run from the folder bills."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from consumption_pipeline.storage import objects
from consumption_pipeline.storage.settings import DEFAULT_SOURCE, source_folder
from consumption_pipeline_tests.objectstore import new_bucket, upload


@pytest.fixture
def store(s3, tmp_path, monkeypatch) -> str:
    """An s3:// source holding the sample; copies go to a cache folder of the test's own."""
    monkeypatch.setenv(objects.CACHE_ENV, str(tmp_path / "cache"))
    url = f"s3://{new_bucket(s3)}/sources/acme"
    upload(DEFAULT_SOURCE, url)
    return url


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file()}  # fmt: skip


def test_the_copy_follows_the_objects(store, tmp_path):
    copy = objects.local_folder(store)
    assert copy == tmp_path / "cache" / "s3" / store.removeprefix("s3://")
    assert files_under(copy) == files_under(DEFAULT_SOURCE)
    unchanged = {name: (copy / name).stat().st_ino for name in files_under(copy)}
    fs, base = pafs.FileSystem.from_uri(store)
    with fs.open_output_stream(f"{base}/usage/late.csv") as sink:
        sink.write(b"event_id,account_id,asset_id,usage_resource_id,quantity,occurred_at\n")
    fs.delete_file(f"{base}/accounts.csv")
    objects.local_folder(store)
    # The new object is copied, the removed one's copy is gone, the others are not fetched again.
    assert (copy / "usage" / "late.csv").read_bytes().startswith(b"event_id,")
    assert not (copy / "accounts.csv").exists()
    kept = {n: (copy / n).stat().st_ino for n in files_under(copy) if n in unchanged}
    assert kept == {n: i for n, i in unchanged.items() if n != "accounts.csv"}


def copy_of(url: str) -> None:
    objects.local_folder(url)


def test_processes_copying_at_once_leave_whole_files(store):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(copy_of, [store] * 8)
    assert files_under(objects.folder(store).root) == files_under(DEFAULT_SOURCE)


def test_a_source_url_that_holds_nothing_is_refused_naming_it(s3):
    empty = f"s3://{new_bucket(s3)}/nothing/here"
    with pytest.raises(ValueError, match=f"^--source {empty}: no such folder"):
        source_folder(empty, "--source")
    with pytest.raises(ValueError, match="^--source nope://x/y: cannot be opened: "):
        source_folder("nope://x/y", "--source")


def test_an_object_named_out_of_the_folder_is_refused_and_nothing_written_outside(
    s3, tmp_path, monkeypatch
):
    import boto3  # the key is sent as written: Arrow's paths would not hold '..'

    monkeypatch.setenv(objects.CACHE_ENV, str(tmp_path / "cache"))
    bucket = new_bucket(s3)
    client = boto3.client("s3", endpoint_url=s3["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    client.put_object(Bucket=bucket, Key="src/usage/../../../../escaped.csv", Body=b"boom")
    url = f"s3://{bucket}/src"
    with pytest.raises(
        ValueError,
        match=r"^s3://.*/src/usage/\.\./\.\./\.\./\.\./escaped\.csv: "
        r"an object name with an empty, '\.' or '\.\.' part",
    ):
        objects.local_folder(url)
    assert not [p for p in tmp_path.rglob("escaped.csv")]
