"""AWS's Lambda base images as the userland of execution environments: pulled, verified, unpacked.

AWS publishes the image each managed runtime runs on (Amazon Linux 2 or 2023 with the runtime under
``/var/lang`` and its runtime interface client under ``/var/runtime``) in its public registry, e.g.
``public.ecr.aws/lambda/python:3.12`` and ``public.ecr.aws/lambda/provided:al2023``, for x86_64 and
arm64 ("Working with Lambda container images": AWS base images for Lambda). ``lamina runtime pull``
fetches one with :mod:`lamina.runtime.oci` and keeps, under the data directory's ``images/``:

- ``blobs/``: manifests' layers and configs by sha256, each checked before it is stored, shared by
  every image that has them (a second image on the same base downloads only its own layers);
- ``rootfs/<manifest sha256>/``: the layers unpacked in order (:mod:`lamina.store.rootfs`), one tree
  per image manifest, built aside and renamed into place: complete or absent;
- ``installed/<runtime>.<arch>.json``: which manifest a runtime and architecture use, written last.

Pulls happen on that command (or when a function is created), never inside an invoke.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.domain import runtimes
from lamina.errors import LaminaError
from lamina.runtime.oci import (
    LAYER_COMPRESSION,
    PLATFORMS,
    Descriptor,
    RegistryClient,
    RegistryError,
    verified,
)
from lamina.store.blobs import BlobStore, BlobStoreError
from lamina.store.rootfs import MAX_IMAGE_BYTES, LayerUnpacker, UnsafeLayerError, tree_size

DEFAULT_REGISTRY = "https://public.ecr.aws"
ARCHITECTURES = tuple(PLATFORMS)
MAX_CONFIG_BYTES = 4 << 20


def parse_registry(text: str) -> str:
    """A registry base URL (``https://public.ecr.aws``, ``http://127.0.0.1:5000``); ``ValueError``
    says why not."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"expected an http(s) URL such as {DEFAULT_REGISTRY}, got {text!r}")
    if parsed.path.strip("/") or parsed.query or parsed.fragment:
        raise ValueError(f"expected a registry's base URL without a path, got {text!r}")
    return text.rstrip("/")


class ImageError(LaminaError):
    """An image could not be pulled or installed; the message says why. Nothing was installed."""


@dataclass(frozen=True)
class ImageName:
    repository: str  # lambda/python
    tag: str  # 3.12

    def reference(self, registry: str) -> str:
        """``public.ecr.aws/lambda/python:3.12`` (the registry's host, as ``docker pull`` names it)."""
        host = urllib.parse.urlsplit(registry).netloc or registry
        return f"{host}/{self.repository}:{self.tag}"


def image_name(runtime: str) -> ImageName:
    """The AWS base image of a Lambda runtime identifier, from the runtime table
    (``python3.12`` -> ``lambda/python:3.12``, ``provided.al2023`` -> ``lambda/provided:al2023``)."""
    row = runtimes.lookup(runtime)
    if row is None:
        raise ImageError(f"no AWS base image is known for runtime {runtime!r}")
    # public.ecr.aws/lambda/python:3.12: the registry's host, then repository:tag.
    _host, _, name = row.base_image.partition("/")
    repository, _, tag = name.rpartition(":")
    return ImageName(repository, tag)


@dataclass(frozen=True)
class InstalledImage:
    """One installed runtime image, as ``installed/<runtime>.<arch>.json`` records it."""

    runtime: str
    architecture: str
    image: str  # public.ecr.aws/lambda/python:3.12
    registry: str
    manifest_digest: str
    config_digest: str
    layers: tuple[str, ...]
    size: int  # bytes of the unpacked root filesystem
    rootfs: Path
    pulled_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "architecture": self.architecture,
            "image": self.image,
            "registry": self.registry,
            "manifestDigest": self.manifest_digest,
            "configDigest": self.config_digest,
            "layers": list(self.layers),
            "size": self.size,
            "rootfs": str(self.rootfs),
            "pulledAt": self.pulled_at,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> InstalledImage:
        return cls(
            runtime=str(doc["runtime"]),
            architecture=str(doc["architecture"]),
            image=str(doc["image"]),
            registry=str(doc["registry"]),
            manifest_digest=str(doc["manifestDigest"]),
            config_digest=str(doc["configDigest"]),
            layers=tuple(str(d) for d in doc["layers"]),
            size=int(doc["size"]),
            rootfs=Path(doc["rootfs"]),
            pulled_at=str(doc["pulledAt"]),
        )


def _check_arch(arch: str) -> None:
    if arch not in PLATFORMS:
        raise ImageError(f"unknown architecture {arch!r} (expected one of: {', '.join(ARCHITECTURES)})")


class ImageStore:
    """The runtime images installed under ``root`` (the data directory's ``images`` folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.installed_dir = root / "installed"
        self.rootfs_dir = root / "rootfs"
        self.staging = self.rootfs_dir / ".tmp"
        for directory in (root, self.installed_dir, self.rootfs_dir, self.staging):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.blobs = BlobStore(root / "blobs")
        self._lock = threading.Lock()
        self._drop_abandoned()

    def _drop_abandoned(self) -> None:
        """Trees left half-built by a process that died mid-pull (``<hex>.<pid>.<uuid>``)."""
        for leftover in self.staging.iterdir():
            pid = leftover.name.split(".")[1] if leftover.name.count(".") == 2 else ""
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    os.kill(int(pid), 0)
                    continue  # another live process is pulling
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue
            elif pid.isdigit():
                continue
            shutil.rmtree(leftover, ignore_errors=True)

    def _record_path(self, runtime: str, arch: str) -> Path:
        image_name(runtime)  # refuses identifiers that are not runtimes (and so never a path)
        _check_arch(arch)
        return self.installed_dir / f"{runtime}.{arch}.json"

    def installed_image(self, runtime: str, arch: str) -> InstalledImage | None:
        """What is installed for ``runtime`` on ``arch``, if its root filesystem is complete."""
        try:
            doc = json.loads(self._record_path(runtime, arch).read_text())
            image = InstalledImage.from_json(doc)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return image if image.rootfs.is_dir() else None

    def rootfs(self, runtime: str, arch: str) -> Path | None:
        """The unpacked root filesystem of the image installed for ``runtime`` on ``arch``, or None."""
        image = self.installed_image(runtime, arch)
        return image.rootfs if image else None

    def installed(self) -> list[InstalledImage]:
        """Every installed runtime image, by runtime then architecture."""
        found = []
        for record in sorted(self.installed_dir.glob("*.json")):
            runtime, _, arch = record.name[: -len(".json")].rpartition(".")
            with contextlib.suppress(ImageError):
                image = self.installed_image(runtime, arch)
                if image:
                    found.append(image)
        return found

    def pull(self, runtime: str, arch: str, registry: str = DEFAULT_REGISTRY) -> Path:
        """Fetch the base image of ``runtime`` for ``arch`` from ``registry``, verify every blob,
        unpack it (unless that manifest's tree exists) and record it; return its root filesystem.
        Raises ``ImageError``; whatever fails, the previous installation (if any) stays as it was."""
        _check_arch(arch)
        name = image_name(runtime)
        row = runtimes.get(runtime)
        if not row.supports(arch):
            raise ImageError(f"runtime {runtime} does not support the {arch} architecture in AWS Lambda")
        try:
            with self._lock:
                return self._pull(runtime, arch, name, registry)
        except (RegistryError, UnsafeLayerError, BlobStoreError, OSError) as exc:
            raise ImageError(f"cannot pull {name.reference(registry)} for {arch}: {exc}") from exc

    def _pull(self, runtime: str, arch: str, name: ImageName, registry: str) -> Path:
        client = RegistryClient(registry)
        client.ping()
        manifest = client.resolve(name.repository, name.tag, arch)
        declared = sum(layer.size for layer in manifest.layers)
        if declared > MAX_IMAGE_BYTES:
            # Compressed layers are hardly larger than the image they unpack to (10 GB at most): a
            # manifest announcing more would only fill the disk with blobs before being refused.
            raise ImageError(
                f"{name.reference(registry)} for {arch}: its layers are {declared} bytes, more than "
                f"Lambda's {MAX_IMAGE_BYTES}-byte limit for an image"
            )
        config = self._config(client, name, manifest.config)
        want = PLATFORMS[arch]
        if config.get("architecture") not in (None, want) or config.get("os") not in (None, "linux"):
            raise ImageError(
                f"{name.reference(registry)} for {arch}: its config is for "
                f"{config.get('os')}/{config.get('architecture')}, not linux/{want}"
            )
        for i, layer in enumerate(manifest.layers):
            if not self.blobs.exists(layer.hex):
                what = f"layer {i + 1} of {len(manifest.layers)}"
                self.blobs.put_stream(verified(client.blob(name.repository, layer), layer, what), layer.hex)
        tree = self._unpack(manifest.digest.split(":", 1)[1], manifest.layers)
        image = InstalledImage(
            runtime=runtime,
            architecture=arch,
            image=name.reference(registry),
            registry=registry,
            manifest_digest=manifest.digest,
            config_digest=manifest.config.digest,
            layers=tuple(layer.digest for layer in manifest.layers),
            size=tree_size(tree),
            rootfs=tree,
            pulled_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        record = self._record_path(runtime, arch)
        tmp = record.with_name(f".{record.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(image.to_json(), indent=2) + "\n")
        os.replace(tmp, record)
        return tree

    def _config(self, client: RegistryClient, name: ImageName, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.size > MAX_CONFIG_BYTES:
            raise ImageError(f"{name.repository}:{name.tag}: image config of {descriptor.size} bytes refused")
        if not self.blobs.exists(descriptor.hex):
            chunks = verified(client.blob(name.repository, descriptor), descriptor, "image config")
            self.blobs.put_stream(chunks, descriptor.hex)
        try:
            doc = json.loads(self.blobs.path(descriptor.hex).read_bytes())
        except (OSError, ValueError) as exc:
            raise ImageError(f"{name.repository}:{name.tag}: image config is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ImageError(f"{name.repository}:{name.tag}: image config is not a JSON object")
        return doc

    def _unpack(self, manifest_hex: str, layers: tuple[Descriptor, ...]) -> Path:
        final = self.rootfs_dir / manifest_hex
        if final.is_dir():
            return final  # another runtime or an earlier pull unpacked this very image
        work = self.staging / f"{manifest_hex}.{os.getpid()}.{uuid.uuid4().hex}"
        work.mkdir(mode=0o700)
        try:
            unpacker = LayerUnpacker(work)
            for i, layer in enumerate(layers):
                with open(self.blobs.path(layer.hex), "rb") as f:
                    try:
                        unpacker.apply(f, LAYER_COMPRESSION[layer.media_type])
                    except UnsafeLayerError as exc:
                        raise UnsafeLayerError(f"layer {i + 1} ({layer.digest}): {exc}") from exc
            os.chmod(work, 0o755)
            try:
                os.rename(work, final)
            except OSError:
                if not final.is_dir():
                    raise
                # Another process finished the same tree first: use it.
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        return final
