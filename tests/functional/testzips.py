"""Zip files for tests."""

from __future__ import annotations

import io
import zipfile


def make_zip(files: dict[str, bytes | str] | None = None, *, modes: dict[str, int] | None = None) -> bytes:
    """A zip with the given files (default: a tiny python/ package); ``modes`` sets unix permissions."""
    files = files if files is not None else {"python/mylib/__init__.py": "VALUE = 42\n"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((modes or {}).get(name, 0o100644)) << 16
            zf.writestr(info, data)
    return buf.getvalue()
