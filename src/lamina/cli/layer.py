"""``lamina layer build``, ``lamina layer check`` and ``lamina layer publish``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from lamina.cli.awsclient import DEFAULT_ENDPOINT


def add_parser(sub: Any) -> None:
    layer = sub.add_parser("layer", help="build a Python layer for Lambda, publish it")
    commands = layer.add_subparsers(dest="layer_command", required=True)

    build = commands.add_parser(
        "build",
        help="resolve, install, zip and verify a Python layer for a Lambda runtime and architecture",
        description="Build a layer zip from a requirements file or a pyproject.toml, for the target "
        "runtime and architecture (never for this host): deterministic bytes, cached, verified.",
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("-r", "--requirements", metavar="FILE", help="a requirements (or lock) file")
    source.add_argument("--pyproject", metavar="FILE", help="a pyproject.toml: its [project].dependencies")
    build.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME",
        help="with --pyproject: also this optional-dependencies group",
    )
    build.add_argument("--runtime", required=True, help="python3.8 ... python3.14")
    build.add_argument("--arch", default="x86_64", choices=("x86_64", "arm64"), help="default x86_64")
    build.add_argument("-o", "--output", default="layer.zip", help="the zip to write (default layer.zip)")
    build.add_argument(
        "--layout",
        default="python",
        choices=("python", "site-packages"),
        help="packages under python/ (default) or python/lib/python3.X/site-packages/",
    )
    build.add_argument(
        "--bin", metavar="DIR", help="a directory to ship as bin/ (/opt/bin, on PATH in Lambda)"
    )
    build.add_argument(
        "--lib", metavar="DIR", help="a directory to ship as lib/ (/opt/lib, on LD_LIBRARY_PATH)"
    )
    build.add_argument("--slim", action="store_true", help="leave out tests, docs, examples and type stubs")
    build.add_argument(
        "--no-verify", action="store_true", help="do not import the modules in an execution environment"
    )
    build.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    idx = build.add_argument_group("package index (passed to pip)")
    idx.add_argument("--index-url", metavar="URL")
    idx.add_argument("--extra-index-url", action="append", default=[], metavar="URL")
    idx.add_argument(
        "--find-links", action="append", default=[], metavar="PATH_OR_URL", help="e.g. a local wheelhouse"
    )
    idx.add_argument("--no-index", action="store_true", help="only --find-links")
    cache = build.add_argument_group("cache")
    cache.add_argument("--cache-dir", help="default $LAMINA_CACHE_DIR, else ~/.cache/lamina/layers")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    cache.add_argument(
        "--refresh", action="store_true", help="resolve again even if a recent resolution is cached"
    )
    build.add_argument(
        "--runtimes-dir",
        default=os.environ.get("LAMINA_RUNTIMES_DIR"),
        help="installed runtimes used for verification (default: lamina-runtimes in lamina's prefix)",
    )

    check = commands.add_parser(
        "check",
        help="list every file of a layer or function zip that cannot load on a runtime, with the fix",
        description="Before deploying: find the ELF files built for another architecture or needing a "
        "newer glibc/libstdc++ than the runtime's Amazon Linux has, and the extension modules built for "
        "another Python. Exit status 1 when one cannot load, 2 on bad input.",
    )
    check.add_argument("zip", help="the layer or function zip")
    check.add_argument("--runtime", required=True, help="python3.8 ... python3.14")
    check.add_argument("--arch", default="x86_64", choices=("x86_64", "arm64"), help="default x86_64")
    check.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")

    pub = commands.add_parser(
        "publish",
        help="PublishLayerVersion, unless the newest version already has this zip's CodeSha256",
        description="Publish a layer zip (to the local lamina server by default; --aws or --endpoint-url "
        "for others) with the standard AWS credential chain.",
    )
    pub.add_argument("zip", help="the layer zip")
    pub.add_argument("--layer-name", required=True)
    pub.add_argument("--description")
    pub.add_argument("--compatible-runtimes", nargs="+", metavar="RUNTIME")
    pub.add_argument("--compatible-architectures", nargs="+", metavar="ARCH")
    pub.add_argument("--license-info")
    where = pub.add_mutually_exclusive_group()
    where.add_argument(
        "--endpoint-url",
        default=os.environ.get(
            "AWS_ENDPOINT_URL_LAMBDA", os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT)
        ),
        help=f"default: $AWS_ENDPOINT_URL_LAMBDA, $AWS_ENDPOINT_URL, else the local server {DEFAULT_ENDPOINT}",
    )
    where.add_argument(
        "--aws", action="store_true", help="publish to AWS itself (its endpoints, your AWS profile)"
    )
    pub.add_argument("--region", help="default: the AWS configuration, else us-east-1")
    pub.add_argument(
        "--force", action="store_true", help="publish even if the newest version has the same content"
    )
    pub.add_argument(
        "--s3-bucket",
        metavar="NAME",
        help="upload the zip to this bucket (in the same region) and publish it from there; by default a "
        "zip over 50 MB goes through S3 in lamina-layers-<account>-<region>, made when missing",
    )
    pub.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def main(args: argparse.Namespace) -> int:
    if args.layer_command == "build":
        return build(args)
    if args.layer_command == "publish":
        return publish(args)
    if args.layer_command == "check":
        return check(args)
    return 2


def _err(message: str) -> None:
    print(f"lamina: {message}", file=sys.stderr, flush=True)


def build(args: argparse.Namespace) -> int:
    from lamina.builder import inputs
    from lamina.builder.build import Builder, BuildError, BuildOptions, summary
    from lamina.builder.cache import default_cache_dir
    from lamina.builder.pip import PipError
    from lamina.builder.targets import BuildTarget, TargetError

    try:
        target = BuildTarget.parse(args.runtime, args.arch)
        if args.requirements:
            reqs = inputs.from_requirements_file(Path(args.requirements))
        else:
            reqs = inputs.from_pyproject(Path(args.pyproject), args.extra)
    except (TargetError, inputs.InputError) as exc:
        _err(str(exc))
        return 2
    if args.extra and not args.pyproject:
        _err("--extra goes with --pyproject")
        return 2
    index_args: list[str] = []
    if args.index_url:
        index_args += ["--index-url", args.index_url]
    for url in args.extra_index_url:
        index_args += ["--extra-index-url", url]
    for link in args.find_links:
        index_args += ["--find-links", link if "://" in link else str(Path(link).resolve())]
    if args.no_index:
        index_args.append("--no-index")
    options = BuildOptions(
        target=target,
        requirements=reqs,
        output=Path(args.output),
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
        runtimes_dir=Path(args.runtimes_dir) if args.runtimes_dir else Path(sys.prefix) / "lamina-runtimes",
        layout=args.layout,
        slim=args.slim,
        verify=not args.no_verify,
        bin_dir=Path(args.bin) if args.bin else None,
        lib_dir=Path(args.lib) if args.lib else None,
        index_args=index_args,
        use_cache=not args.no_cache,
        refresh=args.refresh,
    )

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        result = Builder(options, progress).run()
    except (BuildError, PipError) as exc:
        _err(f"layer build failed: {exc}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted; nothing was written")
        return 130
    report = "\n".join(summary(result, options))
    if args.json:
        if not args.quiet:
            print(report, file=sys.stderr, flush=True)
        print(json.dumps(result.json()))
    else:
        print(report)
    return 0


def check(args: argparse.Namespace) -> int:
    import zipfile

    from lamina.builder.elfcheck import check_zip, fix, platform_for
    from lamina.builder.targets import TargetError

    try:
        platform = platform_for(args.runtime, args.arch)
    except TargetError as exc:
        _err(str(exc))
        return 2
    zip_path = Path(args.zip)
    if not zip_path.is_file():
        _err(f"no such file: {zip_path}")
        return 2
    try:
        with zipfile.ZipFile(zip_path) as zf:
            result = check_zip(zf, platform)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        _err(f"{zip_path}: cannot read the zip: {exc}")
        return 2
    checked = f"{result.elf_files} ELF file(s), {result.extensions} extension module(s)"
    if result.ok:
        lines = [f"{zip_path}: ok on {platform.describe()}: {checked} checked"]
    else:
        lines = [
            f"{zip_path}: {len({p.path for p in result.problems})} file(s) cannot load on "
            f"{platform.describe()} ({checked} checked):",
            *(f"  {p}" for p in result.problems),
            f"fix: {fix(platform)}",
        ]
    if args.json:
        print("\n".join(lines), file=sys.stderr)
        print(json.dumps(result.json()))
    else:
        print("\n".join(lines))
    return 0 if result.ok else 1


def publish(args: argparse.Namespace) -> int:
    from lamina.builder.publish import PublishError, S3Upload
    from lamina.builder.publish import publish as do_publish
    from lamina.cli.awsclient import aws_error, clients

    zip_path = Path(args.zip)
    if not zip_path.is_file():
        _err(f"no such file: {zip_path}")
        return 2
    endpoint = None if args.aws else args.endpoint_url
    try:
        (lam,) = clients(endpoint, args.region, "lambda", retries={"total_max_attempts": 2}, read_timeout=300)
        region = str(lam.meta.region_name)
        # Path-style addressing: lamina's endpoint is an IP address (docs/s3.md "Addressing").
        s3_config: dict[str, Any] = {"retries": {"total_max_attempts": 3}}
        if endpoint is not None:
            s3_config["s3"] = {"addressing_style": "path"}
        (s3, sts) = clients(endpoint, region, "s3", "sts", **s3_config)

        def account() -> str:
            return str(sts.get_caller_identity()["Account"])

        def say(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        result = do_publish(
            lam,
            zip_path,
            args.layer_name,
            description=args.description,
            runtimes=args.compatible_runtimes,
            architectures=args.compatible_architectures,
            license_info=args.license_info,
            force=args.force,
            s3=S3Upload(s3, args.s3_bucket, account, say),
            region=region,
        )
    except Exception as exc:
        message = str(exc) if isinstance(exc, PublishError) else aws_error(exc)
        if message is None:
            raise
        where = endpoint or "AWS"
        _err(f"publishing {args.layer_name} to {where} failed: {message}")
        return 1
    if result.unchanged:
        line = (
            f"unchanged: the newest version of {args.layer_name}, {result.version}, already has CodeSha256 "
            f"{result.code_sha256}; nothing published (--force publishes anyway)"
        )
        if result.note:
            line += f"\nnote: {result.note}"
    else:
        line = f"published {result.arn} (CodeSha256 {result.code_sha256})"
    if args.json:
        print(line, file=sys.stderr)
        print(json.dumps(result.json()))
    else:
        print(line)
        print(result.arn)
    return 0
