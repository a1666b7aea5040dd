"""Runtime images: the OCI client against a local registry, safe unpacking, ``lamina runtime``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from oci_registry import (
    Image,
    OciRegistry,
    build_image,
    busybox_available,
    busybox_image,
    chardev,
    directory,
    file,
    hardlink,
    install_busybox_runtime,
    layer,
    opaque,
    sha256,
    symlink,
    whiteout,
)

from lamina.runtime.images import ImageError, ImageStore, image_name

REPO = "lambda/python"


def base_layer(arch: str) -> bytes:
    return layer(
        [
            directory("etc"),
            file("etc/os-release", f'NAME="Amazon Linux"\nARCH={arch}\n'),
            file("etc/motd", "hello\n"),
            directory("usr/lib", 0o755),
            file("usr/lib/libold.so", b"old"),
            directory("var/cache"),
            file("var/cache/a", b"a"),
            file("var/cache/b", b"b"),
            file("usr/bin/su", b"#!/bin/sh\n", 0o4755),
            file("usr/bin/wall", b"#!/bin/sh\n", 0o2775),
            symlink("lib64", "usr/lib"),
            symlink("usr/bin/python3", "/var/lang/bin/python3.12"),
            hardlink("usr/bin/su-again", "usr/bin/su"),
            chardev("dev/null"),
            directory("tmp", 0o1777),
        ]
    )


def runtime_layer(arch: str) -> bytes:
    return layer(
        [
            whiteout("etc/motd"),
            opaque("var/cache"),
            file("var/cache/c", b"c"),
            file("var/lang/bin/python3.12", f"#!/bin/sh\necho {arch}\n", 0o755),
            file("var/runtime/bootstrap", "#!/bin/sh\n", 0o755),
        ]
    )


def two_arch_images() -> list[Image]:
    return [build_image([base_layer(a), runtime_layer(a)], a) for a in ("x86_64", "arm64")]


@pytest.fixture
def registry() -> Iterator[OciRegistry]:
    with OciRegistry() as reg:
        reg.push(REPO, "3.12", two_arch_images())
        yield reg


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def leftovers(store: ImageStore) -> list[str]:
    return sorted(p.name for p in store.staging.iterdir()) + sorted(p.name for p in store.blobs.tmp.iterdir())


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_pull_per_architecture(registry: OciRegistry, store: ImageStore, arch: str) -> None:
    assert store.rootfs("python3.12", arch) is None
    root = store.pull("python3.12", arch, registry.url)
    assert store.rootfs("python3.12", arch) == root
    assert f"ARCH={arch}" in (root / "etc/os-release").read_text()
    assert (root / "var/lang/bin/python3.12").read_text().endswith(f"echo {arch}\n")
    # The anonymous token flow was used, with the repository's pull scope.
    assert registry.tokens_issued == [f"token-for-repository:{REPO}:pull"]
    other = "arm64" if arch == "x86_64" else "x86_64"
    assert store.rootfs("python3.12", other) is None
    (image,) = store.installed()
    assert image.runtime == "python3.12" and image.architecture == arch
    assert image.image == f"{registry.url.removeprefix('http://')}/lambda/python:3.12"
    assert image.manifest_digest == f"sha256:{root.name}" and image.size > 0
    assert leftovers(store) == []


def test_layers_applied_in_order_with_whiteouts_and_hygiene(registry: OciRegistry, store: ImageStore) -> None:
    root = store.pull("python3.12", "x86_64", registry.url)
    assert not (root / "etc/motd").exists(), "the .wh. whiteout deletes the lower file"
    assert sorted(os.listdir(root / "var/cache")) == ["c"], "the opaque whiteout hides the lower entries"
    assert not any(name.startswith(".wh.") for _, _, names in os.walk(root) for name in names)
    su = os.stat(root / "usr/bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o755, "setuid dropped"
    assert stat.S_IMODE(os.stat(root / "usr/bin/wall").st_mode) == 0o755, "setgid and group write dropped"
    assert os.stat(root / "usr/bin/su-again").st_ino == su.st_ino
    assert os.readlink(root / "lib64") == "usr/lib"
    assert os.readlink(root / "usr/bin/python3") == "/var/lang/bin/python3.12"
    assert not os.path.lexists(root / "dev/null"), "device nodes are not created"
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1755
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755


def test_second_pull_reuses_blobs_and_trees(registry: OciRegistry, store: ImageStore) -> None:
    first = store.pull("python3.12", "x86_64", registry.url)
    fetched = len(registry.blob_requests())
    assert fetched == 3  # config + two layers
    assert store.pull("python3.12", "x86_64", registry.url) == first
    assert len(registry.blob_requests()) == fetched, "nothing downloaded again"
    # Another runtime on the same base image shares the base layer's blob: only its own are fetched.
    arm = two_arch_images()[0]
    newer = build_image([arm.layers[0], layer([file("var/lang/bin/python3.13", "#!/bin/sh\n", 0o755)])])
    registry.push(REPO, "3.13", [newer])
    root13 = store.pull("python3.13", "x86_64", registry.url)
    new_paths = registry.blob_requests()[fetched:]
    assert sha256(arm.layers[0]) not in " ".join(new_paths)
    assert len(new_paths) == 2
    assert (root13 / "var/lang/bin/python3.13").is_file() and root13 != first
    assert [i.runtime for i in store.installed()] == ["python3.12", "python3.13"]


def test_registry_without_auth_and_without_redirects(store: ImageStore) -> None:
    with OciRegistry(auth=False, redirect_blobs=False) as reg:
        reg.push("lambda/provided", "al2023", [build_image([base_layer("x86_64")])], index=False)
        root = store.pull("provided.al2023", "x86_64", reg.url)
        assert reg.tokens_issued == []
    assert (root / "etc/os-release").is_file()


def test_docker_manifest_list_and_schema2_manifests(store: ImageStore) -> None:
    with OciRegistry() as reg:
        images = [build_image([base_layer(a), runtime_layer(a)], a, docker=True) for a in ("x86_64", "arm64")]
        reg.push(REPO, "3.11", images)
        root = store.pull("python3.11", "arm64", reg.url)
    assert (root / "var/lang/bin/python3.12").read_text().endswith("echo arm64\n")
    assert store.installed()[0].manifest_digest == images[1].digest


def test_missing_architecture_is_named(store: ImageStore) -> None:
    with OciRegistry() as reg:
        reg.push(REPO, "3.12", [two_arch_images()[0]])
        with pytest.raises(
            ImageError, match=r"no linux/arm64 manifest \(it has: linux/amd64, unknown/unknown\)"
        ):
            store.pull("python3.12", "arm64", reg.url)
    assert store.installed() == []


def test_corrupted_layer_is_refused_and_nothing_is_installed(
    registry: OciRegistry, store: ImageStore
) -> None:
    bad = two_arch_images()[0]
    registry.corrupt(sha256(bad.layers[1]))
    with pytest.raises(ImageError, match=r"layer 2 of 2 sha256:[0-9a-f]{64} does not match its digest"):
        store.pull("python3.12", "x86_64", registry.url)
    assert store.rootfs("python3.12", "x86_64") is None
    assert not store.blobs.exists(sha256(bad.layers[1]).split(":")[1])
    assert store.installed() == [] and leftovers(store) == []
    assert [p for p in store.rootfs_dir.iterdir() if p.name != ".tmp"] == []


def test_corrupted_manifest_is_refused(registry: OciRegistry, store: ImageStore) -> None:
    img = two_arch_images()[0]
    media_type, body = registry.manifests[(REPO, img.digest)]
    registry.manifests[(REPO, img.digest)] = (
        media_type,
        body.replace(b'"schemaVersion": 2', b'"schemaVersion":2'),
    )
    with pytest.raises(ImageError, match="does not match its digest"):
        store.pull("python3.12", "x86_64", registry.url)
    assert store.installed() == []


def test_a_failed_pull_keeps_the_previous_installation(registry: OciRegistry, store: ImageStore) -> None:
    before = store.pull("python3.12", "x86_64", registry.url)
    replaced = build_image([layer([file("x", "y")])])
    registry.push(REPO, "3.12", [replaced])
    registry.corrupt(sha256(replaced.layers[0]))
    with pytest.raises(ImageError):
        store.pull("python3.12", "x86_64", registry.url)
    assert store.rootfs("python3.12", "x86_64") == before


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        pytest.param([file("/etc/passwd", "x")], "has an absolute path", id="absolute"),
        pytest.param([file("../escape", "x")], "leaves the root filesystem", id="dotdot"),
        pytest.param([file("a/../../escape", "x")], "leaves the root filesystem", id="dotdot-inner"),
        pytest.param(
            [symlink("etc", "/"), file("etc/passwd", "x")],
            "written through the symbolic link 'etc'",
            id="symlink-out",
        ),
        pytest.param(
            [symlink("up", ".."), file("up/escape", "x")],
            "written through the symbolic link 'up'",
            id="symlink-up",
        ),
        pytest.param([hardlink("shadow", "/etc/shadow")], "has an absolute path", id="hardlink-absolute"),
        pytest.param(
            [hardlink("shadow", "../../etc/shadow")], "leaves the root filesystem", id="hardlink-dotdot"
        ),
        pytest.param(
            [symlink("l", "/etc/shadow"), hardlink("shadow", "l")],
            "which is not a file",
            id="hardlink-to-symlink",
        ),
        pytest.param([whiteout("../etc/passwd")], "leaves the root filesystem", id="whiteout-dotdot"),
    ],
)
def test_unsafe_members_are_refused(store: ImageStore, tmp_path: Path, entries: list, message: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with OciRegistry() as reg:
        reg.push(REPO, "3.12", [build_image([base_layer("x86_64"), layer(entries)])])
        with pytest.raises(ImageError, match=message):
            store.pull("python3.12", "x86_64", reg.url)
    assert store.installed() == [] and leftovers(store) == []
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape").exists()


def test_unknown_runtime_and_architecture(store: ImageStore) -> None:
    with pytest.raises(ImageError, match="no AWS base image is known for runtime 'nodejs20.x'"):
        store.pull("nodejs20.x", "x86_64", "http://127.0.0.1:9")
    with pytest.raises(ImageError, match="unknown architecture 'mips'"):
        store.pull("python3.12", "mips", "http://127.0.0.1:9")
    with pytest.raises(ImageError, match="no AWS base image is known"):
        store.rootfs("../../etc", "x86_64")
    with pytest.raises(ImageError, match="runtime provided does not support the arm64 architecture"):
        store.pull("provided", "arm64", "http://127.0.0.1:9")


def test_unreachable_registry(store: ImageStore) -> None:
    with OciRegistry() as reg:
        url = reg.url
    with pytest.raises(ImageError, match="cannot reach the registry"):
        store.pull("python3.12", "x86_64", url)


def test_image_names() -> None:
    assert image_name("python3.12").reference("https://public.ecr.aws") == "public.ecr.aws/lambda/python:3.12"
    assert (
        image_name("provided.al2023").reference("https://public.ecr.aws")
        == "public.ecr.aws/lambda/provided:al2023"
    )
    assert image_name("provided.al2").tag == "al2"


@pytest.mark.skipif(not busybox_available(), reason="needs Debian's busybox-static (make setup installs it)")
def test_busybox_test_image_is_runnable(store: ImageStore) -> None:
    with OciRegistry() as reg:
        reg.push("lambda/provided", "al2023", [busybox_image()])
        root = store.pull("provided.al2023", "x86_64", reg.url)
    assert os.readlink(root / "bin/sh") == "busybox"
    out = subprocess.run(
        [root / "bin/busybox", "sh", "-c", "echo $((6 * 7))"], capture_output=True, text=True
    )
    assert out.stdout == "42\n"
    assert sorted(os.listdir(root / "var")) == ["lang", "runtime", "task"]
    # Nothing of the host's: busybox, its applets, a few /etc files, empty directories.
    names = {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}
    assert {n for n in names if not n.startswith("bin/")} == {"etc/passwd", "etc/group", "etc/os-release"}
    assert all(
        os.readlink(root / n) == "busybox" for n in names if n.startswith("bin/") and n != "bin/busybox"
    )


# -- the command line ------------------------------------------------------------------------------


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina.cli.main", "runtime", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "LAMINA_DATA_DIR": str(data_dir)},
        timeout=60,
    )


def test_cli_pull_and_list(registry: OciRegistry, tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = run_cli("list", data_dir=data)
    assert r.returncode == 0 and "no runtime image installed" in r.stdout
    r = run_cli("pull", "python3.12", "--arch", "arm64", "--image-registry", registry.url, data_dir=data)
    assert r.returncode == 0, r.stderr
    assert "lambda/python:3.12" in r.stdout and "arm64" in r.stdout
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    r = run_cli("list", "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    (image,) = json.loads(r.stdout)["images"]
    assert image["runtime"] == "python3.12" and image["architecture"] == "arm64"
    assert image["manifestDigest"] == two_arch_images()[1].digest
    assert Path(image["rootfs"]).is_dir() and str(data) in image["rootfs"]
    r = run_cli("list", data_dir=data)
    assert r.returncode == 0
    line = next(x for x in r.stdout.splitlines() if x.startswith("python3.12"))
    assert "arm64" in line and image["manifestDigest"][:19] in line and image["rootfs"] in line


def test_cli_pull_errors(registry: OciRegistry, tmp_path: Path) -> None:
    data = tmp_path / "data"
    registry.corrupt(sha256(two_arch_images()[0].layers[0]))
    r = run_cli("pull", "python3.12", "--image-registry", registry.url, data_dir=data)
    assert r.returncode == 1
    assert "does not match its digest" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("pull", "python3.13", "--image-registry", registry.url, data_dir=data)
    assert r.returncode == 1 and "HTTP 404 Not Found: MANIFEST_UNKNOWN: manifest unknown" in r.stderr
    r = run_cli("pull", "python3.99", "--image-registry", registry.url, data_dir=data)
    assert r.returncode == 1 and "no AWS base image is known for runtime 'python3.99'" in r.stderr
    r = run_cli("pull", "nodejs20.x", data_dir=data)
    assert r.returncode == 1 and "no AWS base image is known" in r.stderr


@pytest.mark.skipif(not busybox_available(), reason="needs Debian's busybox-static (make setup installs it)")
def test_install_busybox_runtime_helper(tmp_path: Path) -> None:
    root = install_busybox_runtime(tmp_path / "data")
    assert ImageStore(tmp_path / "data" / "images").rootfs("provided.al2023", "x86_64") == root
    assert (root / "bin/busybox").is_file()
