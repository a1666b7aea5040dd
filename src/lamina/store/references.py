"""Which blobs are still referenced: the one rule both layer and function deletes apply.

A blob (a code or layer zip, an S3 object's bytes) stays while a live layer version, a function
version's code, a layer attached to a function version (a deleted layer version stays usable by
the functions that have it) an S3 object or a part of an S3 multipart upload in progress refers to it. Repositories call :func:`blob_referenced` inside their delete's write
transaction, so a concurrent publish cannot slip in between the check and the removal.
"""

from __future__ import annotations

from lamina.store.db import Connection


def blob_referenced(conn: Connection, sha256_hex: str) -> bool:
    """Whether anything still refers to blob ``sha256_hex`` (run inside the caller's transaction)."""
    return (
        conn.execute(
            "SELECT 1 FROM layer_versions WHERE sha256=? AND deleted=0"
            " UNION ALL SELECT 1 FROM function_versions WHERE code_sha256=?"
            # layer_shas is a JSON array of hex digests: '"<sha>"' inside it is the element.
            " UNION ALL SELECT 1 FROM function_versions WHERE layer_shas LIKE ?"
            " UNION ALL SELECT 1 FROM s3_objects WHERE sha256=?"
            " UNION ALL SELECT 1 FROM s3_parts WHERE sha256=? LIMIT 1",
            (sha256_hex, sha256_hex, f'%"{sha256_hex}"%', sha256_hex, sha256_hex),
        ).fetchone()
        is not None
    )
