"""The content-addressed store: blobs, action records, locks, and their failure modes."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from optbuild.errors import OptbuildError
from optbuild.store import ActionRecord, Blob, Store


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache")


def test_creates_layout(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "cache"
    Store(root)
    for sub in ("cas/sha256", "actions", "locks", "tmp"):
        assert (root / sub).is_dir()
    Store(root)  # opening an existing cache again is fine


# -- blobs -----------------------------------------------------------------------------------


def test_put_file_is_content_addressed(store: Store, tmp_path: Path) -> None:
    data = b"model bytes\x00\x01"
    digest = sha(data)
    blob = store.put_file(write(tmp_path / "src" / "one.bin", data))
    assert blob == Blob(digest, len(data))
    expected = store.root / "cas" / "sha256" / digest[:2] / digest
    assert store.blob_path(digest) == expected
    assert expected.read_bytes() == data

    # Same bytes under another name: the same blob, still one file in the store.
    again = store.put_file(write(tmp_path / "src" / "other-name.xml", data))
    assert again == blob
    assert [p for p in (store.root / "cas").rglob("*") if p.is_file()] == [expected]

    # Different bytes: a different blob.
    other = store.put_file(write(tmp_path / "src" / "two.bin", b"different"))
    assert other.sha256 == sha(b"different") != digest
    assert store.blob_path(other.sha256).read_bytes() == b"different"


def test_put_file_empty_file(store: Store, tmp_path: Path) -> None:
    blob = store.put_file(write(tmp_path / "empty", b""))
    assert blob == Blob(sha(b""), 0)
    assert store.verified(blob) == store.blob_path(blob.sha256)


def test_put_file_leaves_no_temp_files(store: Store, tmp_path: Path) -> None:
    for i in range(3):
        store.put_file(write(tmp_path / f"f{i}", f"payload {i}".encode()))
        store.put_file(write(tmp_path / f"g{i}", f"payload {i}".encode()))  # dedup path
    assert temp_files(store.root) == []


def test_put_file_failure_raises_and_cleans_up_temp(store: Store, tmp_path: Path) -> None:
    # Make the final rename impossible (a non-empty directory sits at the blob's name).
    data = b"cannot land"
    final = store.blob_path(sha(data))
    (final / "occupied").mkdir(parents=True)
    with pytest.raises(OptbuildError, match="cannot write to the cache at") as info:
        store.put_file(write(tmp_path / "src", data))
    assert str(store.root) in info.value.message
    assert temp_files(store.root) == []


def test_put_file_does_not_modify_source(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "src", b"keep me")
    blob = store.put_file(src)
    store.blob_path(blob.sha256).unlink()
    assert src.read_bytes() == b"keep me"


def test_verified_returns_path_for_intact_blob(store: Store, tmp_path: Path) -> None:
    blob = store.put_file(write(tmp_path / "src", b"intact"))
    assert store.verified(blob) == store.blob_path(blob.sha256)


def test_verified_missing_blob_is_none(store: Store) -> None:
    assert store.verified(Blob(sha(b"never stored"), 12)) is None


@pytest.mark.parametrize("corrupt", [b"intacT", b"intact plus more", b""], ids=["same-size", "longer", "empty"])
def test_verified_discards_corrupt_blob(store: Store, tmp_path: Path, corrupt: bytes,
                                        caplog: pytest.LogCaptureFixture) -> None:
    blob = store.put_file(write(tmp_path / "src", b"intact"))
    path = store.blob_path(blob.sha256)
    path.write_bytes(corrupt)
    with caplog.at_level("WARNING", logger="optbuild.store"):
        assert store.verified(blob) is None
    assert not path.exists()
    assert "corrupt" in caplog.text
    # Storing the bytes again repairs it.
    assert store.put_file(tmp_path / "src") == blob
    assert store.verified(blob) == path


def test_verified_checks_recorded_size(store: Store, tmp_path: Path) -> None:
    blob = store.put_file(write(tmp_path / "src", b"sized"))
    assert store.verified(Blob(blob.sha256, blob.bytes + 1)) is None


def test_put_file_repairs_same_size_corrupt_blob(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "src", b"original")
    blob = store.put_file(src)
    store.blob_path(blob.sha256).write_bytes(b"ORIGINAL")  # same length, different bytes
    again = store.put_file(src)
    assert again == blob
    # The store now claims to hold `blob`, but its bytes are still the corrupt ones.
    assert store.blob_path(blob.sha256).read_bytes() == b"original"


# -- action records --------------------------------------------------------------------------


def make_record(store: Store, tmp_path: Path, key: str = "k" * 64) -> ActionRecord:
    outputs = {
        "model.xml": store.put_file(write(tmp_path / "out" / "model.xml", b"<xml/>")),
        "model.bin": store.put_file(write(tmp_path / "out" / "model.bin", b"\x00" * 100)),
    }
    return ActionRecord("convert", key, outputs, {"accuracy": 0.75, "notes": ["a", "b"]}, 1.25)


def test_action_round_trip(store: Store, tmp_path: Path) -> None:
    record = make_record(store, tmp_path)
    store.put_action(record)
    assert (store.root / "actions" / f"{record.key}.json").is_file()
    back = store.get_action(record.key)
    assert back == record
    assert isinstance(back.outputs["model.bin"], Blob)
    assert temp_files(store.root) == []


def test_action_overwrite(store: Store, tmp_path: Path) -> None:
    record = make_record(store, tmp_path)
    store.put_action(record)
    newer = ActionRecord(record.stage, record.key, record.outputs, {"accuracy": 0.8}, 2.0)
    store.put_action(newer)
    assert store.get_action(record.key) == newer


def test_action_without_outputs(store: Store) -> None:
    record = ActionRecord("check", "c" * 64, {}, {"ok": True}, 0.0)
    store.put_action(record)
    assert store.get_action(record.key) == record


def test_get_action_missing_record(store: Store) -> None:
    assert store.get_action("0" * 64) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        "null",
        "[]",
        json.dumps({"stage": "convert"}),  # no key/outputs
        json.dumps({"stage": "s", "key": "KEY", "outputs": {"a": {"sha256": "x"}}}),  # no bytes
        json.dumps({"stage": "s", "key": "KEY", "outputs": {}, "seconds": "slow"}),
    ],
    ids=["empty", "truncated", "null", "list", "missing-fields", "bad-blob", "bad-seconds"],
)
def test_get_action_unreadable_record(store: Store, text: str, caplog: pytest.LogCaptureFixture) -> None:
    key = "u" * 64
    (store.root / "actions" / f"{key}.json").write_text(text.replace("KEY", key))
    with caplog.at_level("WARNING", logger="optbuild.store"):
        assert store.get_action(key) is None
    assert "unreadable" in caplog.text


def test_get_action_binary_garbage(store: Store) -> None:
    key = "g" * 64
    (store.root / "actions" / f"{key}.json").write_bytes(b"\xff\xfe\x00garbage")
    assert store.get_action(key) is None


def test_get_action_outputs_not_a_mapping(store: Store) -> None:
    key = "m" * 64
    (store.root / "actions" / f"{key}.json").write_text(
        json.dumps({"stage": "s", "key": key, "outputs": [], "data": {}, "seconds": 0})
    )
    assert store.get_action(key) is None


def test_get_action_key_mismatch(store: Store, tmp_path: Path) -> None:
    record = make_record(store, tmp_path, key="a" * 64)
    store.put_action(record)
    # A record copied under another key's name is not trusted.
    (store.root / "actions" / f"{'b' * 64}.json").write_text(
        (store.root / "actions" / f"{'a' * 64}.json").read_text()
    )
    assert store.get_action("b" * 64) is None
    assert store.get_action("a" * 64) == record


def test_get_action_missing_output_blob(store: Store, tmp_path: Path) -> None:
    record = make_record(store, tmp_path)
    store.put_action(record)
    store.blob_path(record.outputs["model.xml"].sha256).unlink()
    assert store.get_action(record.key) is None


def test_get_action_corrupt_output_blob(store: Store, tmp_path: Path) -> None:
    record = make_record(store, tmp_path)
    store.put_action(record)
    path = store.blob_path(record.outputs["model.bin"].sha256)
    path.write_bytes(b"\x01" * 100)  # same size, different bytes
    assert store.get_action(record.key) is None
    assert not path.exists()  # the corrupt blob was discarded
    # Once the blob is stored again, the record is valid again.
    store.put_file(tmp_path / "out" / "model.bin")
    assert store.get_action(record.key) == record


def test_put_action_failure_leaves_no_temp_file(store: Store) -> None:
    record = ActionRecord("s", "t" * 64, {}, {"value": object()}, 0.0)
    with pytest.raises((OptbuildError, TypeError)):
        store.put_action(record)
    assert temp_files(store.root) == []


# -- locks -----------------------------------------------------------------------------------


def test_lock_serialises_threads(store: Store) -> None:
    events: list[str] = []
    first_inside = threading.Event()
    release_first = threading.Event()
    second_inside = threading.Event()

    def first() -> None:
        with store.lock("same-key"):
            events.append("first-enter")
            first_inside.set()
            release_first.wait(10)
            events.append("first-exit")

    def second() -> None:
        first_inside.wait(10)
        with store.lock("same-key"):
            events.append("second-enter")
            second_inside.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert first_inside.wait(10)
    # The second thread is blocked while the first holds the lock.
    assert not second_inside.wait(0.3)
    release_first.set()
    assert second_inside.wait(10)
    for t in threads:
        t.join(10)
    assert events == ["first-enter", "first-exit", "second-enter"]


def test_lock_different_keys_do_not_block(store: Store) -> None:
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.lock("key-a"):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        with store.lock("key-b"):
            pass
        assert time.monotonic() - started < 5
    finally:
        release.set()
        t.join(10)


def test_lock_released_after_exception(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.lock("k"):
            raise RuntimeError("stage failed")
    done = threading.Event()

    def take() -> None:
        with store.lock("k"):
            done.set()

    t = threading.Thread(target=take)
    t.start()
    assert done.wait(5)
    t.join(5)


# -- scratch and errors ----------------------------------------------------------------------


def test_scratch_is_inside_store(store: Store) -> None:
    with store.scratch() as scratch:
        assert Path(scratch).parent == store.root / "tmp"
        assert Path(scratch).is_dir()
    assert not Path(scratch).exists()


def test_unwritable_root_names_path(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    root = tmp_path / "afile" / "cache"
    with pytest.raises(OptbuildError) as info:
        Store(root)
    assert str(root) in str(info.value)
    assert "cache_dir" in info.value.message
