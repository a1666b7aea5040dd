"""``lamina layer build`` and Lambda's size limits: a layer over 250 MB unzipped can never be used
(the limit is for a function and all its layers together), so the build fails and writes nothing;
over 50 MB zipped is fine (``lamina layer publish`` goes through S3). Advice about ``--slim`` only
when it was not given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from wheelhouse import lamina_build, make_wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    house = tmp_path_factory.mktemp("wheelhouse")
    # 255 MB of data (zeros: a small wheel) and some tests that --slim leaves out: over 250 MB
    # unzipped with or without --slim.
    make_wheel(
        house,
        "hugedata",
        "1.0",
        {
            "hugedata/__init__.py": "",
            "hugedata/data.bin": bytes(255 << 20),
            "hugedata/tests/test_it.py": "def test():\n    pass\n" * 100,
        },
    )
    # 60 MB that does not compress: over the 50 MB of a direct upload, well under 250 MB unzipped.
    make_wheel(
        house, "bigrandom", "1.0", {"bigrandom/__init__.py": "", "bigrandom/blob.bin": os.urandom(60 << 20)}
    )
    return house


@pytest.mark.parametrize(
    ("slim", "advice"), [pytest.param(False, True, id="plain"), pytest.param(True, False, id="slim")]
)
def test_over_250_mb_unzipped_fails_and_writes_nothing(
    tmp_path: Path, wheels: Path, slim: bool, advice: bool
) -> None:
    (tmp_path / "requirements.txt").write_text("hugedata==1.0\n")
    args = ["-r", "requirements.txt", "--runtime", "python3.12", "--no-verify", *(["--slim"] if slim else [])]
    proc = lamina_build(args, tmp_path, wheels, expect=1)
    err = proc.stderr
    assert "lamina: layer build failed: unzipped the layer is 255.0 MB" in err, err
    assert "over the 250.0 MB (262144000 bytes) a function and all its layers may take together" in err
    assert "splitting it into several layers does not help" in err
    assert "Largest: hugedata 1.0 255.0 MB" in err and "No zip was written." in err
    assert ("--slim" in err) is advice
    assert not (tmp_path / "layer.zip").exists()


def test_over_50_mb_zipped_is_built_and_publishing_goes_through_s3(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "requirements.txt").write_text("bigrandom==1.0\n")
    proc = lamina_build(
        ["-r", "requirements.txt", "--runtime", "python3.12", "--no-verify"], tmp_path, wheels
    )
    assert "over the 50.0 MB Lambda takes in the request itself: `lamina layer publish` uploads it to S3" in (
        proc.stdout
    )
    assert "; --slim makes it smaller" in proc.stdout
    assert (tmp_path / "layer.zip").stat().st_size > 50 << 20
    slim = lamina_build(
        ["-r", "requirements.txt", "--runtime", "python3.12", "--no-verify", "--slim", "-o", "slim.zip"],
        tmp_path,
        wheels,
    )
    assert "uploads it to S3" in slim.stdout and "--slim makes it smaller" not in slim.stdout
