"""``lamina runtime pull`` and ``lamina runtime list``: AWS's runtime images on this host."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from lamina.runtime.images import (
    ARCHITECTURES,
    DEFAULT_REGISTRY,
    ImageError,
    ImageStore,
    image_name,
    parse_registry,
)
from lamina.settings import default_data_dir, default_runtimes_dir


def add_parser(sub: Any) -> None:
    runtime = sub.add_parser("runtime", help="pull AWS's Lambda base images, list the runtimes installed")
    commands = runtime.add_subparsers(dest="runtime_command", required=True)
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir",
        default=os.environ.get("LAMINA_DATA_DIR"),
        help="the server's data directory (default: $LAMINA_DATA_DIR, else lamina server's default)",
    )
    pull = commands.add_parser(
        "pull",
        parents=[data_dir],
        help="fetch a runtime's AWS base image (e.g. public.ecr.aws/lambda/python:3.12)",
        description="Fetch AWS's public Lambda base image of RUNTIME for one architecture, verify every "
        "blob by its digest and unpack it under the data directory, where execution environments of "
        "that runtime use it as their root filesystem.",
    )
    pull.add_argument("runtime", help="python3.10 ... python3.14, provided.al2023, provided.al2")
    pull.add_argument("--arch", default="x86_64", choices=ARCHITECTURES, help="default x86_64")
    pull.add_argument(
        "--image-registry",
        type=_registry,
        default=os.environ.get("LAMINA_IMAGE_REGISTRY", DEFAULT_REGISTRY),
        metavar="URL",
        help=f"the registry to pull from (default: $LAMINA_IMAGE_REGISTRY, else {DEFAULT_REGISTRY})",
    )
    listing = commands.add_parser(
        "list", parents=[data_dir], help="the runtime images installed, and the host's Python runtimes"
    )
    listing.add_argument("--json", action="store_true", help="one JSON document")


def _registry(text: str) -> str:
    try:
        return parse_registry(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    try:
        from lamina.store.datadir import open_data_dir

        open_data_dir(data_dir)
        store = ImageStore(data_dir / "images")
    except OSError as exc:
        print(f"lamina: data directory {data_dir}: {exc}", file=sys.stderr)
        return 1
    if args.runtime_command == "pull":
        return pull(store, args)
    return show(store, args.json)


def pull(store: ImageStore, args: argparse.Namespace) -> int:
    try:
        reference = image_name(args.runtime).reference(args.image_registry)
        print(f"pulling {reference} ({args.arch}) ...", file=sys.stderr, flush=True)
        store.pull(args.runtime, args.arch, args.image_registry)
    except ImageError as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return 1
    image = store.installed_image(args.runtime, args.arch)
    assert image is not None  # just installed
    print(f"{image.runtime} {image.architecture}: {image.image} {image.manifest_digest}")
    print(f"  root filesystem {image.rootfs} ({_size(image.size)})")
    return 0


def show(store: ImageStore, as_json: bool) -> int:
    from lamina.runtime.catalog import RuntimeCatalog

    images = store.installed()
    runtimes_dir = os.environ.get("LAMINA_RUNTIMES_DIR")
    host = RuntimeCatalog(Path(runtimes_dir) if runtimes_dir else default_runtimes_dir()).python()
    if as_json:
        doc = {
            "images": [i.to_json() for i in images],
            "host": [
                {"runtime": r.name, "prefix": str(r.prefix), "runtimeDir": str(r.runtime_dir)}
                for r in host.values()
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    if not images:
        print("no runtime image installed (lamina runtime pull RUNTIME [--arch arm64])")
    else:
        rows = [("RUNTIME", "ARCH", "IMAGE", "DIGEST", "SIZE", "ROOT FILESYSTEM")]
        rows += [
            (i.runtime, i.architecture, i.image, i.manifest_digest[:19], _size(i.size), str(i.rootfs))
            for i in images
        ]
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        for r in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[5])
    if host:
        print()
        print("host runtimes (the fallback userland):")
        for python in sorted(host.values(), key=lambda p: int(p.name.split(".")[1])):
            print(f"  {python.name}  {python.prefix}")
    return 0


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
