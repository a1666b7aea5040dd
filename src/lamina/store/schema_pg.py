"""The PostgreSQL schema: the tables as SQLite has them after its first ``BASELINE_VERSION``
migrations, and the translation of later migrations' DDL.

A PostgreSQL database is new with lamina's multi-node support: it never ran the earlier SQLite
migrations (data migrations among them, in SQLite's own functions), so it starts at the baseline,
the same tables, columns, keys and indexes, with these differences:
- types: INTEGER is BIGINT (SQLite's integers are 64-bit), REAL is DOUBLE PRECISION, BLOB is BYTEA,
  TEXT is ``TEXT COLLATE "C"`` (byte order, as SQLite's BINARY collation: listings sort alike);
- a table with a rowid in SQLite has a ``rowid`` identity column (``ORDER BY rowid`` is insertion
  order on both); ``INTEGER PRIMARY KEY`` is an identity column, as SQLite's alias of the rowid;
- the column named ``user`` is quoted (a reserved word in PostgreSQL).
A later migration is written once, in the portable subset, and runs on both engines
(:func:`postgresql_ddl` translating its column types).
"""

from __future__ import annotations

import re
from typing import Final

# The SQLite migrations the baseline stands for.
BASELINE_VERSION: Final = 23

# Generated once from a SQLite database migrated to BASELINE_VERSION (its sqlite_master, through
# postgresql_ddl); never edited since: changes are new migrations.
BASELINE: Final = """
CREATE TABLE settings (key TEXT COLLATE "C" PRIMARY KEY, value TEXT COLLATE "C" NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE layers (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        last_version BIGINT NOT NULL,
        PRIMARY KEY (account, region, name),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE layer_versions (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
        description TEXT COLLATE "C" NOT NULL, created_ms BIGINT NOT NULL,
        runtimes TEXT COLLATE "C", architectures TEXT COLLATE "C", license_info TEXT COLLATE "C",
        sha256 TEXT COLLATE "C" NOT NULL, code_size BIGINT NOT NULL, unzipped_size BIGINT NOT NULL,
        policy TEXT COLLATE "C" NOT NULL DEFAULT '[]', revision_id TEXT COLLATE "C",
        deleted BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, name, version),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX layer_versions_sha ON layer_versions (sha256);
CREATE TABLE functions (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        last_version BIGINT NOT NULL DEFAULT 0, tags TEXT COLLATE "C" NOT NULL DEFAULT '{}', reserved_concurrency BIGINT,
        PRIMARY KEY (account, region, name),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE function_versions (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
        config TEXT COLLATE "C" NOT NULL, code_sha256 TEXT COLLATE "C" NOT NULL, unzipped_size BIGINT NOT NULL,
        layer_shas TEXT COLLATE "C" NOT NULL DEFAULT '[]', policy TEXT COLLATE "C", policy_revision TEXT COLLATE "C",
        PRIMARY KEY (account, region, name, seq),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX function_versions_code ON function_versions (code_sha256);
CREATE TABLE event_invocations (
        id TEXT COLLATE "C" PRIMARY KEY, account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        qualifier TEXT COLLATE "C", payload BYTEA NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,
        next_at DOUBLE PRECISION NOT NULL, created DOUBLE PRECISION NOT NULL
    , invoked TEXT COLLATE "C",
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX event_invocations_due ON event_invocations (next_at);
CREATE TABLE iam_roles (
        account TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, role TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, name_lower),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE iam_role_policies (
        account TEXT COLLATE "C" NOT NULL, role_lower TEXT COLLATE "C" NOT NULL, policy_name TEXT COLLATE "C" NOT NULL, document TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, role_lower, policy_name),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE iam_policies (
        account TEXT COLLATE "C" NOT NULL, arn TEXT COLLATE "C" NOT NULL, policy TEXT COLLATE "C" NOT NULL, document TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, arn),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE iam_attachments (
        account TEXT COLLATE "C" NOT NULL, role_lower TEXT COLLATE "C" NOT NULL, policy_arn TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, role_lower, policy_arn),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE sts_sessions (
        access_key TEXT COLLATE "C" PRIMARY KEY, secret TEXT COLLATE "C" NOT NULL, token TEXT COLLATE "C" NOT NULL, account TEXT COLLATE "C" NOT NULL,
        arn TEXT COLLATE "C" NOT NULL, user_id TEXT COLLATE "C" NOT NULL, role_arn TEXT COLLATE "C" NOT NULL, expires DOUBLE PRECISION NOT NULL
    , policy TEXT COLLATE "C", policy_arns TEXT COLLATE "C" NOT NULL DEFAULT '[]', tags TEXT COLLATE "C" NOT NULL DEFAULT '{}', transitive_tag_keys TEXT COLLATE "C" NOT NULL DEFAULT '[]', source_identity TEXT COLLATE "C",
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX sts_sessions_expiry ON sts_sessions (expires);
CREATE TABLE ec2_resources (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL,
        vpc_id TEXT COLLATE "C", subnet_id TEXT COLLATE "C", body TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, id),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX ec2_resources_kind ON ec2_resources (account, region, kind, vpc_id);
CREATE INDEX ec2_resources_subnet ON ec2_resources (account, region, subnet_id);
CREATE TABLE ec2_private_ips (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, subnet_id TEXT COLLATE "C" NOT NULL, ip TEXT COLLATE "C" NOT NULL,
        owner_id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, subnet_id, ip),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX ec2_private_ips_owner ON ec2_private_ips (account, region, owner_id);
CREATE TABLE ec2_public_ips (
        ip TEXT COLLATE "C" PRIMARY KEY, account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, allocation_id TEXT COLLATE "C" NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE ec2_sg_rules (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, rule_id TEXT COLLATE "C" NOT NULL, group_id TEXT COLLATE "C" NOT NULL,
        ref_group_id TEXT COLLATE "C", body TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, rule_id),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX ec2_sg_rules_group ON ec2_sg_rules (account, region, group_id);
CREATE INDEX ec2_sg_rules_ref ON ec2_sg_rules (account, region, ref_group_id);
CREATE TABLE ec2_interface_groups (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, eni_id TEXT COLLATE "C" NOT NULL, group_id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, eni_id, group_id),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX ec2_interface_groups_group ON ec2_interface_groups (account, region, group_id);
CREATE TABLE lambda_enis (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, subnet_id TEXT COLLATE "C" NOT NULL, groups_key TEXT COLLATE "C" NOT NULL,
        eni_id TEXT COLLATE "C" NOT NULL, vpc_id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, subnet_id, groups_key),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE sts_authorization_messages (
        encoded TEXT COLLATE "C" PRIMARY KEY, account TEXT COLLATE "C" NOT NULL, decoded TEXT COLLATE "C" NOT NULL, created DOUBLE PRECISION NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX sts_authorization_messages_created ON sts_authorization_messages (created);
CREATE TABLE iam_users (
        account TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, "user" TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, name_lower),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE iam_groups (
        account TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, grp TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, name_lower),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE iam_group_members (
        account TEXT COLLATE "C" NOT NULL, group_lower TEXT COLLATE "C" NOT NULL, user_lower TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, group_lower, user_lower),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX iam_group_members_user ON iam_group_members (account, user_lower);
CREATE TABLE iam_access_keys (
        access_key TEXT COLLATE "C" PRIMARY KEY, account TEXT COLLATE "C" NOT NULL, user_lower TEXT COLLATE "C" NOT NULL,
        secret TEXT COLLATE "C" NOT NULL, status TEXT COLLATE "C" NOT NULL, create_date TEXT COLLATE "C" NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX iam_access_keys_user ON iam_access_keys (account, user_lower);
CREATE TABLE iam_entity_policies (
        account TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, policy_name TEXT COLLATE "C" NOT NULL,
        document TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, kind, name_lower, policy_name),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE iam_entity_attachments (
        account TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, policy_arn TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, kind, name_lower, policy_arn),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX iam_entity_attachments_arn ON iam_entity_attachments (account, policy_arn);
CREATE TABLE function_urls (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, qualifier TEXT COLLATE "C" NOT NULL,
        url_id TEXT COLLATE "C" NOT NULL UNIQUE, config TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, name, qualifier),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE function_aliases (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, function TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        config TEXT COLLATE "C" NOT NULL, primary_seq BIGINT NOT NULL, extra_seq BIGINT,
        policy TEXT COLLATE "C", policy_revision TEXT COLLATE "C",
        PRIMARY KEY (account, region, function, name),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE event_invoke_configs (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, qualifier TEXT COLLATE "C" NOT NULL,
        config TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, name, qualifier),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE function_settings (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, qualifier TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, name, qualifier, kind),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX function_settings_value ON function_settings (account, region, kind, value);
CREATE TABLE code_signing_configs (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, config TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, id),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE provisioned_concurrency (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, qualifier TEXT COLLATE "C" NOT NULL,
        requested BIGINT NOT NULL, last_modified TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account, region, name, qualifier),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE s3_buckets (
        name TEXT COLLATE "C" PRIMARY KEY, account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL, tags TEXT COLLATE "C", policy TEXT COLLATE "C",
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX s3_buckets_account ON s3_buckets (account, name);
CREATE TABLE s3_objects (
        bucket TEXT COLLATE "C" NOT NULL REFERENCES s3_buckets (name), key TEXT COLLATE "C" NOT NULL,
        sha256 TEXT COLLATE "C" NOT NULL, size BIGINT NOT NULL, etag TEXT COLLATE "C" NOT NULL, crc32 TEXT COLLATE "C" NOT NULL,
        modified_ms BIGINT NOT NULL, headers TEXT COLLATE "C" NOT NULL, metadata TEXT COLLATE "C" NOT NULL,
        tags TEXT COLLATE "C" NOT NULL DEFAULT '{}', checksum_algorithm TEXT COLLATE "C" NOT NULL DEFAULT '', checksum TEXT COLLATE "C" NOT NULL DEFAULT '',
        PRIMARY KEY (bucket, key)
    );
CREATE INDEX s3_objects_blob ON s3_objects (sha256);
CREATE TABLE s3_uploads (
        upload_id TEXT COLLATE "C" PRIMARY KEY, bucket TEXT COLLATE "C" NOT NULL REFERENCES s3_buckets (name),
        key TEXT COLLATE "C" NOT NULL, account TEXT COLLATE "C" NOT NULL, initiated_ms BIGINT NOT NULL,
        headers TEXT COLLATE "C" NOT NULL, metadata TEXT COLLATE "C" NOT NULL, tags TEXT COLLATE "C" NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX s3_uploads_bucket ON s3_uploads (bucket, key, upload_id);
CREATE TABLE s3_parts (
        upload_id TEXT COLLATE "C" NOT NULL REFERENCES s3_uploads (upload_id), part_number BIGINT NOT NULL,
        sha256 TEXT COLLATE "C" NOT NULL, size BIGINT NOT NULL, md5 TEXT COLLATE "C" NOT NULL, modified_ms BIGINT NOT NULL,
        PRIMARY KEY (upload_id, part_number)
    );
CREATE INDEX s3_parts_blob ON s3_parts (sha256);
CREATE TABLE "log_groups" (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL, retention_days BIGINT, tags TEXT COLLATE "C" NOT NULL DEFAULT '{}',
        stored_bytes BIGINT NOT NULL DEFAULT 0,
        UNIQUE (account, region, name)
    );
CREATE TABLE "log_streams" (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, gid BIGINT NOT NULL, name TEXT COLLATE "C" NOT NULL, created_ms BIGINT NOT NULL,
        first_ms BIGINT, last_ms BIGINT, ingested_ms BIGINT, stored_bytes BIGINT NOT NULL DEFAULT 0,
        UNIQUE (gid, name)
    );
CREATE TABLE "log_events" (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, gid BIGINT NOT NULL, sid BIGINT NOT NULL, ts BIGINT NOT NULL,
        ingested_ms BIGINT NOT NULL, message TEXT COLLATE "C" NOT NULL
    );
CREATE INDEX log_events_stream ON log_events (sid, ts, id);
CREATE INDEX log_events_group ON log_events (gid, ts, id);
CREATE TABLE ec2_partitions (
        account TEXT COLLATE "C" NOT NULL, region TEXT COLLATE "C" NOT NULL, created_ms BIGINT NOT NULL,
        PRIMARY KEY (account, region),
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
"""

_TYPES: Final = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    (re.compile(r"(?<![\w\"])user TEXT"), '"user" TEXT'),
)
_ROWID_TABLE: Final = re.compile(r"(CREATE TABLE\s+\w+\s*\()(.*)\)\s*$", re.S)


def postgresql_ddl(script: str) -> str:
    """``script`` (SQLite DDL of lamina's migrations) as PostgreSQL runs it."""
    out: list[str] = []
    for statement in (s.strip() for s in script.split(";")):
        if not statement:
            continue
        without_rowid = re.search(r"\)\s*WITHOUT ROWID\s*$", statement) is not None
        if without_rowid:
            statement = re.sub(r"\s*WITHOUT ROWID\s*$", "", statement)
        for pattern, replacement in _TYPES:
            statement = pattern.sub(replacement, statement)
        match = _ROWID_TABLE.match(statement)
        if match is not None and not without_rowid:
            statement = (
                f"{match.group(1)}{match.group(2).rstrip()},\n    rowid BIGINT GENERATED ALWAYS AS IDENTITY)"
            )
        out.append(statement)
    return ";\n".join(out) + ";\n"
