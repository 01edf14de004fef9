"""Publishing versioned artifact directories: v<N>, manifest.json, the `latest` link, reuse."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from optbuild.errors import OptbuildError
from optbuild.publish.manifest import MANIFEST
from optbuild.publish.package import Packaged, package


def make_files(tmp_path: Path, tag: str, contents: dict[str, bytes]) -> tuple[dict[str, Path], list[dict]]:
    """Source files plus the artifact entries (path, sha256, bytes) describing them."""
    src = tmp_path / "src" / tag
    src.mkdir(parents=True, exist_ok=True)
    files, artifacts = {}, []
    for name, data in contents.items():
        (src / name).write_bytes(data)
        files[name] = src / name
        artifacts.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    return files, artifacts


MODEL = {"model.xml": b"<net/>", "model.bin": b"\x00\x01\x02"}
OTHER = {"model.xml": b"<net version='2'/>", "model.bin": b"\x03\x04"}


def publish(root: Path, tmp_path: Path, contents: dict[str, bytes], tag: str = "a",
            extra: dict | None = None, promote: bool = True) -> Packaged:
    files, artifacts = make_files(tmp_path, tag, contents)
    manifest = {"recipe": "demo", "artifacts": artifacts, **(extra or {})}
    return package(root, files, manifest, promote=promote)


def versions_on_disk(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("v") and p.is_dir())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "out" / "demo" / "cpu-fp32"


def test_first_publish_makes_v1_and_latest(root: Path, tmp_path: Path) -> None:
    result = publish(root, tmp_path, MODEL)
    assert result == Packaged(root / "v1", 1, reused=False)
    assert versions_on_disk(root) == ["v1"]
    latest = root / "latest"
    assert latest.is_symlink()
    assert os.readlink(latest) == "v1"  # relative: the tree can be moved
    assert latest.resolve() == (root / "v1").resolve()


def test_version_dir_contents_and_mode(root: Path, tmp_path: Path) -> None:
    result = publish(root, tmp_path, MODEL, extra={"precision": "fp32"})
    vdir = result.path
    assert stat.S_IMODE(vdir.stat().st_mode) == 0o755
    assert sorted(p.name for p in vdir.iterdir()) == sorted([*MODEL, MANIFEST])
    for name, data in MODEL.items():
        assert (vdir / name).read_bytes() == data
    manifest = json.loads((vdir / MANIFEST).read_text())
    assert manifest["version"] == 1
    assert manifest["recipe"] == "demo"
    assert manifest["precision"] == "fp32"
    assert sorted(a["path"] for a in manifest["artifacts"]) == sorted(MODEL)
    # No staging directories or temporary links remain next to the version.
    assert sorted(p.name for p in root.iterdir() if p.name != ".lock") == ["latest", "v1"]


def test_caller_manifest_not_mutated(root: Path, tmp_path: Path) -> None:
    files, artifacts = make_files(tmp_path, "a", MODEL)
    manifest = {"artifacts": artifacts}
    package(root, files, manifest)
    assert "version" not in manifest


def test_identical_digests_reuse_version(root: Path, tmp_path: Path) -> None:
    first = publish(root, tmp_path, MODEL, tag="a")
    # Same bytes from a different build directory, artifacts listed in another order.
    files, artifacts = make_files(tmp_path, "b", dict(reversed(list(MODEL.items()))))
    second = package(root, files, {"artifacts": artifacts, "build": "again"})
    assert second == Packaged(root / "v1", 1, reused=True)
    assert first.path == second.path
    assert versions_on_disk(root) == ["v1"]
    assert os.readlink(root / "latest") == "v1"
    # The reused version keeps its original manifest.
    assert "build" not in json.loads((root / "v1" / MANIFEST).read_text())


def test_different_digests_make_next_version(root: Path, tmp_path: Path) -> None:
    publish(root, tmp_path, MODEL, tag="a")
    second = publish(root, tmp_path, OTHER, tag="b")
    assert second == Packaged(root / "v2", 2, reused=False)
    assert versions_on_disk(root) == ["v1", "v2"]
    assert os.readlink(root / "latest") == "v2"
    assert json.loads((root / "v2" / MANIFEST).read_text())["version"] == 2
    assert (root / "v2" / "model.bin").read_bytes() == OTHER["model.bin"]
    # v1 is untouched.
    assert (root / "v1" / "model.bin").read_bytes() == MODEL["model.bin"]
    assert json.loads((root / "v1" / MANIFEST).read_text())["version"] == 1
    # Publishing v2's artifacts again reuses v2.
    assert publish(root, tmp_path, OTHER, tag="c") == Packaged(root / "v2", 2, reused=True)


def test_going_back_to_an_earlier_build_reuses_its_version(root: Path, tmp_path: Path) -> None:
    publish(root, tmp_path, MODEL, tag="a")
    publish(root, tmp_path, OTHER, tag="b")
    third = publish(root, tmp_path, MODEL, tag="c")
    assert third == Packaged(root / "v1", 1, reused=True)  # the same build never publishes twice
    assert os.readlink(root / "latest") == "v1" and versions_on_disk(root) == ["v1", "v2"]


def test_reuse_restores_latest_link(root: Path, tmp_path: Path) -> None:
    publish(root, tmp_path, MODEL)
    (root / "latest").unlink()
    again = publish(root, tmp_path, MODEL, tag="b")
    assert again.reused
    assert os.readlink(root / "latest") == "v1"


def test_leftover_staging_dir_is_not_a_version(root: Path, tmp_path: Path) -> None:
    # A crash mid-publish leaves `.v<N>-<random>`; even with a matching manifest inside, it is
    # neither counted as a version nor reused, and the next publish removes it.
    files, artifacts = make_files(tmp_path, "a", MODEL)
    root.mkdir(parents=True)
    crashed = root / ".v3-abc"
    crashed.mkdir()
    (crashed / MANIFEST).write_text(json.dumps({"artifacts": artifacts, "version": 3}))
    result = package(root, files, {"artifacts": artifacts})
    assert result == Packaged(root / "v1", 1, reused=False)
    assert os.readlink(root / "latest") == "v1"
    assert not crashed.exists()  # cleaned up under the lock: no live build owned it


def test_leftover_staging_dir_among_versions(root: Path, tmp_path: Path) -> None:
    publish(root, tmp_path, MODEL, tag="a")
    (root / ".v2-crashed").mkdir()
    second = publish(root, tmp_path, OTHER, tag="b")
    assert second == Packaged(root / "v2", 2, reused=False)
    assert versions_on_disk(root) == ["v1", "v2"]


def test_non_version_names_are_ignored(root: Path, tmp_path: Path) -> None:
    root.mkdir(parents=True)
    (root / "v7").write_text("a file, not a version directory")
    (root / "v2-old").mkdir()
    (root / "vx").mkdir()
    result = publish(root, tmp_path, MODEL)
    assert result.version == 1


def test_versions_sort_numerically(root: Path, tmp_path: Path) -> None:
    root.mkdir(parents=True)
    for n in (2, 10, 9):
        (root / f"v{n}").mkdir()
    result = publish(root, tmp_path, MODEL)
    assert result == Packaged(root / "v11", 11, reused=False)


def test_unreadable_latest_manifest_means_new_version(root: Path, tmp_path: Path) -> None:
    publish(root, tmp_path, MODEL)
    (root / "v1" / MANIFEST).write_text("{broken")
    again = publish(root, tmp_path, MODEL, tag="b")
    assert again == Packaged(root / "v2", 2, reused=False)


def test_unwritable_out_root(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    root = tmp_path / "afile" / "out"
    files, artifacts = make_files(tmp_path, "a", MODEL)
    with pytest.raises(OptbuildError, match="cannot create the output directory") as info:
        package(root, files, {"artifacts": artifacts})
    assert str(root) in info.value.message
    assert "out_dir" in info.value.message


def test_copy_failure_leaves_no_version(root: Path, tmp_path: Path) -> None:
    files, artifacts = make_files(tmp_path, "a", MODEL)
    files["model.bin"].unlink()  # the source vanished before packaging
    with pytest.raises(OptbuildError, match="cannot write the artifact under") as info:
        package(root, files, {"artifacts": artifacts})
    assert str(root) in info.value.message
    assert sorted(p.name for p in root.iterdir()) == [".lock"]  # no v1, no staging, no latest


# -- a version is what was just built and measured ---------------------------------------------


def test_a_damaged_version_is_not_reused(root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    publish(root, tmp_path, MODEL, tag="a")
    (root / "v1" / "model.bin").write_bytes(b"\x00\x01\x09")  # same size, other bytes
    again = publish(root, tmp_path, MODEL, tag="b")
    assert again == Packaged(root / "v2", 2, reused=False)
    assert os.readlink(root / "latest") == "v2"
    assert "v1 is damaged (model.bin changed)" in caplog.text
    (root / "v2" / "model.xml").unlink()
    assert publish(root, tmp_path, MODEL, tag="c") == Packaged(root / "v3", 3, reused=False)


def test_same_files_with_other_evidence_is_a_new_version(root: Path, tmp_path: Path) -> None:
    publish(root, tmp_path, MODEL, extra={"validation": {"cosine_mean": 0.99}})
    again = publish(root, tmp_path, MODEL, tag="b", extra={"validation": {"cosine_mean": 0.97}})
    assert again == Packaged(root / "v2", 2, reused=False)  # the new numbers are not lost
    assert json.loads((root / "v2" / MANIFEST).read_text())["validation"] == {"cosine_mean": 0.97}
    same = publish(root, tmp_path, MODEL, tag="c", extra={"validation": {"cosine_mean": 0.97}})
    assert same == Packaged(root / "v2", 2, reused=True)


def test_identical_failed_builds_do_not_pile_up(root: Path, tmp_path: Path) -> None:
    failed = {"status": "failed", "failure": "gate"}
    assert publish(root, tmp_path, MODEL, extra=failed, promote=False).version == 1
    assert publish(root, tmp_path, OTHER, tag="b").version == 2  # a passing build in between
    again = publish(root, tmp_path, MODEL, tag="c", extra=failed, promote=False)
    assert again == Packaged(root / "v1", 1, reused=True)
    assert os.readlink(root / "latest") == "v2"  # a failed version never becomes latest


def test_a_version_published_before_a_kill_moved_latest_is_reused(root: Path, tmp_path: Path) -> None:
    publish(root, tmp_path, MODEL, tag="a")
    publish(root, tmp_path, OTHER, tag="b")
    os.replace(root / "latest", root / "gone")  # as if killed between renaming v2 and moving latest
    os.symlink("v1", root / "latest")
    again = publish(root, tmp_path, OTHER, tag="c")
    assert again == Packaged(root / "v2", 2, reused=True)
    assert os.readlink(root / "latest") == "v2" and versions_on_disk(root) == ["v1", "v2"]


def test_published_modes_do_not_follow_the_umask(root: Path, tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        version = publish(root, tmp_path, MODEL).path
    finally:
        os.umask(old)
    assert stat.S_IMODE(version.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in version.iterdir()} == {0o644}


def test_documents_are_made_from_the_final_manifest(root: Path, tmp_path: Path) -> None:
    files, artifacts = make_files(tmp_path, "a", MODEL)
    package(root, files, {"artifacts": artifacts},
            lambda final: {"provenance.json": {"binds": final["version"]}})
    assert json.loads((root / "v1" / "provenance.json").read_text()) == {"binds": 1}
