"""The shared cache behind an fsspec URL, against a real S3-compatible server (moto, in server
mode, on 127.0.0.1 for the length of this module): two workers with separate local state reuse
each other's stage outputs, every download is verified, concurrent writers never corrupt it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from conftest import HEAVY, manifest_of

from optbuild.errors import OptbuildError
from optbuild.store import ActionRecord, Store

# Its module fixtures are expensive: its tests share one worker (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("remote_cache")



@pytest.fixture(scope="module")
def s3_env() -> dict[str, str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",  # never look for instance credentials
        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    yield env
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def bucket(s3_env: dict[str, str]) -> str:
    import boto3

    name = f"optbuild-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def objects(bucket: str) -> dict[str, bytes]:
    import boto3

    client = boto3.client("s3")
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def record_for(store: Store, tmp_path: Path, key: str, payload: bytes, data: dict | None = None) -> ActionRecord:
    source = tmp_path / f"src-{uuid.uuid4().hex}"
    source.write_bytes(payload)
    return ActionRecord("stage", key, {"out.bin": store.put_file(source)}, data or {}, 0.1)


def test_two_workers_share_a_build_through_s3(cli, bucket: str, s3_env: dict[str, str], tmp_path: Path):
    url = f"s3://{bucket}/cache"
    first = cli("recipe=tiny", "benchmark.enabled=false", f"out_dir={tmp_path / 'a'}", f"cache_dir={url}",
                env=s3_env)
    assert first.returncode == 0, first.stderr
    stored = objects(bucket)
    assert any(k.startswith("cache/cas/sha256/") for k in stored)
    assert any(k.startswith("cache/actions/") for k in stored)
    # Worker B: its own out_dir, so an empty local cache; run in-process to see what it imports.
    probe = ("import sys; from optbuild.cli import main; rc = main(%r); "
             "print('HEAVY', [m for m in %r if m in sys.modules]); sys.exit(rc)"
             % (["recipe=tiny", "benchmark.enabled=false", f"out_dir={tmp_path / 'b'}", f"cache_dir={url}",
                 "progress=false"], HEAVY))
    second = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**cli.env, **s3_env},
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "HEAVY []" in second.stdout
    a = manifest_of(tmp_path / "a/tiny/intel-fp32/v1")
    b = manifest_of(tmp_path / "b/tiny/intel-fp32/v1")
    assert all(stage["cache_hit"] for stage in b["stages"])
    assert [s["key"] for s in a["stages"]] == [s["key"] for s in b["stages"]]
    assert a["artifacts"] == b["artifacts"]
    # B's local half of the cache now holds what it downloaded.
    assert list((tmp_path / "b/.cache/cas/sha256").rglob("*"))


def test_downloads_are_verified_and_a_corrupt_object_is_rewritten(bucket: str, tmp_path: Path, caplog):
    url = f"s3://{bucket}/c"
    writer = Store(url, local=tmp_path / "a")
    record = record_for(writer, tmp_path, "k1", b"stage output bytes")
    writer.put_action(record)

    reader = Store(url, local=tmp_path / "b")
    got = reader.get_action("k1")
    assert got is not None and got.outputs == record.outputs
    digest = record.outputs["out.bin"].sha256
    assert reader.verified(record.outputs["out.bin"]).read_bytes() == b"stage output bytes"

    # Same size, wrong bytes: not used; the reader recomputes and its upload repairs the object.
    import boto3

    boto3.client("s3").put_object(Bucket=bucket, Key=f"c/cas/sha256/{digest[:2]}/{digest}",
                                  Body=b"stage output BYTES")
    victim = Store(url, local=tmp_path / "c")
    with caplog.at_level(logging.WARNING, logger="optbuild.store"):
        assert victim.get_action("k1") is None
    assert "corrupt" in caplog.text
    assert not [p for p in (tmp_path / "c/cas/sha256").rglob("*") if p.is_file()]  # nothing unverified kept
    victim.put_action(record_for(victim, tmp_path, "k1", b"stage output bytes"))
    assert hashlib.sha256(objects(bucket)[f"c/cas/sha256/{digest[:2]}/{digest}"]).hexdigest() == digest
    assert Store(url, local=tmp_path / "d").get_action("k1") is not None


def test_concurrent_writers_of_one_key_never_corrupt_it(bucket: str, tmp_path: Path):
    url = f"s3://{bucket}/c"
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            store = Store(url, local=tmp_path / f"w{n}")
            # Same key, results that differ (timings do): each record names only its own blobs.
            store.put_action(record_for(store, tmp_path, "shared", f"result {n}".encode() * 1000, {"n": n}))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    got = Store(url, local=tmp_path / "reader").get_action("shared")
    assert got is not None
    assert Path(Store(url, local=tmp_path / "reader").verified(got.outputs["out.bin"])).read_bytes() == (
        f"result {got.data['n']}".encode() * 1000)
    stored = objects(bucket)
    for key, body in stored.items():
        if "/cas/" in key:
            assert hashlib.sha256(body).hexdigest() == key.rsplit("/", 1)[1]
    assert json.loads(stored["c/actions/shared.json"])["key"] == "shared"


def test_a_filesystem_like_remote_writes_by_rename(tmp_path: Path):
    shared = tmp_path / "shared"
    url = f"local://{shared}"  # fsspec's local filesystem: no atomic PUT, so temp name + rename
    Store(url, local=tmp_path / "a").put_action(record_for(Store(url, local=tmp_path / "a"), tmp_path, "k", b"x"))
    assert Store(url, local=tmp_path / "b").get_action("k") is not None
    assert not [p for p in shared.rglob("*") if p.name.startswith(".tmp-")]
    assert (shared / "actions/k.json").is_file()


def test_an_unusable_url_is_one_line(tmp_path: Path):
    with pytest.raises(OptbuildError, match="nosuch://"):
        Store("nosuch://bucket/cache", local=tmp_path / "a")


def test_a_missing_bucket_fails_saying_where(s3_env: dict[str, str], tmp_path: Path):
    store = Store(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/c", local=tmp_path / "a")
    assert store.get_action("k") is None  # nothing there: a miss
    with pytest.raises(OptbuildError, match="remote cache s3://no-such-bucket.*check cache_dir"):
        store.put_action(record_for(store, tmp_path, "k", b"x"))
