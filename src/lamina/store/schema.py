"""The metadata schema: numbered migrations, applied in order by :class:`lamina.store.db.Database`.

A database records how many it has applied in ``PRAGMA user_version``; a migration, once
released, never changes (data directories made by earlier versions run only the ones after
theirs). A PostgreSQL implementation keeps the same tables and columns.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: settings, layers and their versions.
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE layers (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        last_version INTEGER NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE layer_versions (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
        description TEXT NOT NULL, created_ms INTEGER NOT NULL,
        runtimes TEXT, architectures TEXT, license_info TEXT,
        sha256 TEXT NOT NULL, code_size INTEGER NOT NULL, unzipped_size INTEGER NOT NULL,
        policy TEXT NOT NULL DEFAULT '[]', revision_id TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, name, version)
    );
    CREATE INDEX layer_versions_sha ON layer_versions (sha256);
    """,
    # 2: functions and their versions ($LATEST is seq 0). config holds the AWS-shaped
    # FunctionConfiguration; code_sha256 / layer_shas are the blobs it keeps alive.
    """
    CREATE TABLE functions (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        last_version INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE function_versions (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
        config TEXT NOT NULL, code_sha256 TEXT NOT NULL, unzipped_size INTEGER NOT NULL,
        layer_shas TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (account, region, name, seq)
    );
    CREATE INDEX function_versions_code ON function_versions (code_sha256);
    """,
    # 3: asynchronous (Event) invocations, queued durably until done or out of retries.
    """
    CREATE TABLE event_invocations (
        id TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        qualifier TEXT, payload BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL, created REAL NOT NULL
    );
    CREATE INDEX event_invocations_due ON event_invocations (next_at);
    """,
    # 4: IAM (global per account) and STS sessions.
    """
    CREATE TABLE iam_roles (
        account TEXT NOT NULL, name_lower TEXT NOT NULL, role TEXT NOT NULL,
        PRIMARY KEY (account, name_lower)
    );
    CREATE TABLE iam_role_policies (
        account TEXT NOT NULL, role_lower TEXT NOT NULL, policy_name TEXT NOT NULL, document TEXT NOT NULL,
        PRIMARY KEY (account, role_lower, policy_name)
    );
    CREATE TABLE iam_policies (
        account TEXT NOT NULL, arn TEXT NOT NULL, policy TEXT NOT NULL, document TEXT NOT NULL,
        PRIMARY KEY (account, arn)
    );
    CREATE TABLE iam_attachments (
        account TEXT NOT NULL, role_lower TEXT NOT NULL, policy_arn TEXT NOT NULL,
        PRIMARY KEY (account, role_lower, policy_arn)
    );
    CREATE TABLE sts_sessions (
        access_key TEXT PRIMARY KEY, secret TEXT NOT NULL, token TEXT NOT NULL, account TEXT NOT NULL,
        arn TEXT NOT NULL, user_id TEXT NOT NULL, role_arn TEXT NOT NULL, expires REAL NOT NULL
    );
    CREATE INDEX sts_sessions_expiry ON sts_sessions (expires);
    """,
    # 5: EC2 (VPC subset), per account and region: resources as AWS-shaped JSON, private and
    # public address allocations (unique by key), security group rules, interface memberships.
    """
    CREATE TABLE ec2_resources (
        account TEXT NOT NULL, region TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
        vpc_id TEXT, subnet_id TEXT, body TEXT NOT NULL,
        PRIMARY KEY (account, region, id)
    );
    CREATE INDEX ec2_resources_kind ON ec2_resources (account, region, kind, vpc_id);
    CREATE INDEX ec2_resources_subnet ON ec2_resources (account, region, subnet_id);
    CREATE TABLE ec2_private_ips (
        account TEXT NOT NULL, region TEXT NOT NULL, subnet_id TEXT NOT NULL, ip TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        PRIMARY KEY (account, region, subnet_id, ip)
    );
    CREATE INDEX ec2_private_ips_owner ON ec2_private_ips (account, region, owner_id);
    CREATE TABLE ec2_public_ips (
        ip TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, allocation_id TEXT NOT NULL
    );
    CREATE TABLE ec2_sg_rules (
        account TEXT NOT NULL, region TEXT NOT NULL, rule_id TEXT NOT NULL, group_id TEXT NOT NULL,
        ref_group_id TEXT, body TEXT NOT NULL,
        PRIMARY KEY (account, region, rule_id)
    );
    CREATE INDEX ec2_sg_rules_group ON ec2_sg_rules (account, region, group_id);
    CREATE INDEX ec2_sg_rules_ref ON ec2_sg_rules (account, region, ref_group_id);
    CREATE TABLE ec2_interface_groups (
        account TEXT NOT NULL, region TEXT NOT NULL, eni_id TEXT NOT NULL, group_id TEXT NOT NULL,
        PRIMARY KEY (account, region, eni_id, group_id)
    );
    CREATE INDEX ec2_interface_groups_group ON ec2_interface_groups (account, region, group_id);
    """,
    # 6: Lambda's Hyperplane interfaces: one per (account, region, subnet, sorted security groups).
    """
    CREATE TABLE lambda_enis (
        account TEXT NOT NULL, region TEXT NOT NULL, subnet_id TEXT NOT NULL, groups_key TEXT NOT NULL,
        eni_id TEXT NOT NULL, vpc_id TEXT NOT NULL,
        PRIMARY KEY (account, region, subnet_id, groups_key)
    );
    """,
    # 7: what the authorizer needs of an STS session (session policies, session tags, source
    # identity), and the encoded authorization messages DecodeAuthorizationMessage answers.
    """
    ALTER TABLE sts_sessions ADD COLUMN policy TEXT;
    ALTER TABLE sts_sessions ADD COLUMN policy_arns TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sts_sessions ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE sts_sessions ADD COLUMN transitive_tag_keys TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sts_sessions ADD COLUMN source_identity TEXT;
    CREATE TABLE sts_authorization_messages (
        encoded TEXT PRIMARY KEY, account TEXT NOT NULL, decoded TEXT NOT NULL, created REAL NOT NULL
    );
    CREATE INDEX sts_authorization_messages_created ON sts_authorization_messages (created);
    """,
    # 8: IAM users and groups: AWS-shaped JSON keyed by lower-cased name (IAM names are
    # case-insensitive), group memberships, users' access keys, and the inline policies and
    # managed-policy attachments of users and groups (kind 'user' / 'group').
    """
    CREATE TABLE iam_users (
        account TEXT NOT NULL, name_lower TEXT NOT NULL, user TEXT NOT NULL,
        PRIMARY KEY (account, name_lower)
    );
    CREATE TABLE iam_groups (
        account TEXT NOT NULL, name_lower TEXT NOT NULL, grp TEXT NOT NULL,
        PRIMARY KEY (account, name_lower)
    );
    CREATE TABLE iam_group_members (
        account TEXT NOT NULL, group_lower TEXT NOT NULL, user_lower TEXT NOT NULL,
        PRIMARY KEY (account, group_lower, user_lower)
    );
    CREATE INDEX iam_group_members_user ON iam_group_members (account, user_lower);
    CREATE TABLE iam_access_keys (
        access_key TEXT PRIMARY KEY, account TEXT NOT NULL, user_lower TEXT NOT NULL,
        secret TEXT NOT NULL, status TEXT NOT NULL, create_date TEXT NOT NULL
    );
    CREATE INDEX iam_access_keys_user ON iam_access_keys (account, user_lower);
    CREATE TABLE iam_entity_policies (
        account TEXT NOT NULL, kind TEXT NOT NULL, name_lower TEXT NOT NULL, policy_name TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (account, kind, name_lower, policy_name)
    );
    CREATE TABLE iam_entity_attachments (
        account TEXT NOT NULL, kind TEXT NOT NULL, name_lower TEXT NOT NULL, policy_arn TEXT NOT NULL,
        PRIMARY KEY (account, kind, name_lower, policy_arn)
    );
    CREATE INDEX iam_entity_attachments_arn ON iam_entity_attachments (account, policy_arn);
    """,
    # 9: function resource policies, one per version (AddPermission): the policy document as
    # GetPolicy answers it (NULL: no statements) and its RevisionId. Deleting the version deletes it;
    # a newly published version starts without one.
    """
    ALTER TABLE function_versions ADD COLUMN policy TEXT;
    ALTER TABLE function_versions ADD COLUMN policy_revision TEXT;
    """,
    # 10: function URLs (CreateFunctionUrlConfig): one per function ($LATEST, qualifier '') or
    # alias, the AWS-shaped FunctionUrlConfig as JSON, and the 32-character id of its URL (the
    # endpoint finds the function by it). Deleting the function deletes its URLs (FunctionStore.delete).
    """
    CREATE TABLE function_urls (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL,
        url_id TEXT NOT NULL UNIQUE, config TEXT NOT NULL,
        PRIMARY KEY (account, region, name, qualifier)
    );
    """,
    # 11: a function's tags (JSON object), kept with the function itself: tags belong to the
    # function, not to a version, and go with it when it is deleted.
    """
    ALTER TABLE functions ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
    """,
    # 12: function aliases (CreateAlias): the AliasConfiguration as answered (JSON), the versions it
    # routes to (primary_seq, extra_seq: $LATEST is 0, NULL without a routing config) so an invoke
    # reads the alias and its versions in one query, and the alias's own resource policy.
    """
    CREATE TABLE function_aliases (
        account TEXT NOT NULL, region TEXT NOT NULL, function TEXT NOT NULL, name TEXT NOT NULL,
        config TEXT NOT NULL, primary_seq INTEGER NOT NULL, extra_seq INTEGER,
        policy TEXT, policy_revision TEXT,
        PRIMARY KEY (account, region, function, name)
    );
    """,
    # 13: asynchronous invocation configurations (PutFunctionEventInvokeConfig), one per function
    # qualifier ($LATEST, a version or an alias) as AWS-shaped JSON, listed in the order they were
    # first put; and the qualifier each queued Event invocation named (NULL: unqualified), which
    # picks its configuration and is the functionArn of its destination record. Settings stored per
    # function or version, by kind ('recursion', 'runtime-management', 'code-signing'; qualifier ''
    # for the function itself); code signing configurations as AWS-shaped JSON.
    """
    CREATE TABLE event_invoke_configs (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL,
        config TEXT NOT NULL,
        PRIMARY KEY (account, region, name, qualifier)
    );
    ALTER TABLE event_invocations ADD COLUMN invoked TEXT;
    CREATE TABLE function_settings (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL,
        kind TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (account, region, name, qualifier, kind)
    );
    CREATE INDEX function_settings_value ON function_settings (account, region, kind, value);
    CREATE TABLE code_signing_configs (
        account TEXT NOT NULL, region TEXT NOT NULL, id TEXT NOT NULL, config TEXT NOT NULL,
        PRIMARY KEY (account, region, id)
    );
    """,
    # 14: a function's reserved concurrency (PutFunctionConcurrency; NULL: none). It lives on the
    # function, not a version, and goes with it.
    """
    ALTER TABLE functions ADD COLUMN reserved_concurrency INTEGER;
    """,
    # 15: provisioned concurrency configurations (PutProvisionedConcurrencyConfig), one per version
    # number or alias name; how far their allocation got is the server's, not stored.
    """
    CREATE TABLE provisioned_concurrency (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL,
        requested INTEGER NOT NULL, last_modified TEXT NOT NULL,
        PRIMARY KEY (account, region, name, qualifier)
    );
    """,
    # 16: S3 buckets (names are global: one row per name, whatever the account) and objects. An
    # object's bytes are the blob ``sha256`` (content-addressed, shared with code and layers: see
    # store/references.py); ``headers`` holds the system metadata it was put with (Content-Type, ...)
    # and ``metadata`` the x-amz-meta-* pairs, both JSON objects; keys sort in UTF-8 binary order
    # (SQLite's BINARY collation of UTF-8 text), as S3 lists them. ``policy`` is the bucket policy
    # (JSON text, NULL: none), kept for the bucket policy operations.
    """
    CREATE TABLE s3_buckets (
        name TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL,
        created_ms INTEGER NOT NULL, tags TEXT, policy TEXT
    );
    CREATE INDEX s3_buckets_account ON s3_buckets (account, name);
    CREATE TABLE s3_objects (
        bucket TEXT NOT NULL REFERENCES s3_buckets (name), key TEXT NOT NULL,
        sha256 TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL, crc32 TEXT NOT NULL,
        modified_ms INTEGER NOT NULL, headers TEXT NOT NULL, metadata TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (bucket, key)
    ) WITHOUT ROWID;
    CREATE INDEX s3_objects_blob ON s3_objects (sha256);
    """,
    # 17: S3 multipart uploads in progress and their parts. A part's bytes are the blob ``sha256``
    # (counted by store/references.py until the upload is completed or aborted); ``headers``,
    # ``metadata`` and ``tags`` are what CreateMultipartUpload gave for the object (JSON objects).
    # Upload IDs sort in creation order, as ListMultipartUploads lists a key's uploads.
    """
    CREATE TABLE s3_uploads (
        upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL REFERENCES s3_buckets (name),
        key TEXT NOT NULL, account TEXT NOT NULL, initiated_ms INTEGER NOT NULL,
        headers TEXT NOT NULL, metadata TEXT NOT NULL, tags TEXT NOT NULL
    );
    CREATE INDEX s3_uploads_bucket ON s3_uploads (bucket, key, upload_id);
    CREATE TABLE s3_parts (
        upload_id TEXT NOT NULL REFERENCES s3_uploads (upload_id), part_number INTEGER NOT NULL,
        sha256 TEXT NOT NULL, size INTEGER NOT NULL, md5 TEXT NOT NULL, modified_ms INTEGER NOT NULL,
        PRIMARY KEY (upload_id, part_number)
    ) WITHOUT ROWID;
    CREATE INDEX s3_parts_blob ON s3_parts (sha256);
    """,
    # 18: an S3 object's additional checksum when its upload chose one other than CRC32 (the
    # x-amz-checksum-* header or trailer it was checked with): the algorithm's name and the base64
    # value, answered by HeadObject/GetObject with ChecksumMode=ENABLED; '' for none.
    """
    ALTER TABLE s3_objects ADD COLUMN checksum_algorithm TEXT NOT NULL DEFAULT '';
    ALTER TABLE s3_objects ADD COLUMN checksum TEXT NOT NULL DEFAULT '';
    """,
    # 19: CloudWatch Logs (store/logs.py): log groups (retention in days, NULL: never expire; tags
    # a JSON object), their streams, and the events, numbered in arrival order (``id``) and found by
    # stream and time (GetLogEvents) or by group and time (FilterLogEvents).
    """
    CREATE TABLE log_groups (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, created_ms INTEGER NOT NULL,
        retention_days INTEGER, tags TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (account, region, name)
    ) WITHOUT ROWID;
    CREATE TABLE log_streams (
        account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL, name TEXT NOT NULL,
        created_ms INTEGER NOT NULL, first_ms INTEGER, last_ms INTEGER, ingested_ms INTEGER,
        PRIMARY KEY (account, region, grp, name)
    ) WITHOUT ROWID;
    CREATE TABLE log_events (
        id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL,
        stream TEXT NOT NULL, ts INTEGER NOT NULL, ingested_ms INTEGER NOT NULL, message TEXT NOT NULL
    );
    CREATE INDEX log_events_stream ON log_events (account, region, grp, stream, ts, id);
    CREATE INDEX log_events_group ON log_events (account, region, grp, ts, id);
    """,
    # 20: CloudWatch Logs' storedBytes (store/logs.py): the UTF-8 bytes of the messages a group and
    # a stream hold, kept by every write of events; counted here for the events already stored.
    """
    ALTER TABLE log_groups ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE log_streams ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE log_streams SET stored_bytes = coalesce((
        SELECT sum(length(CAST(e.message AS BLOB))) FROM log_events e
        WHERE e.account = log_streams.account AND e.region = log_streams.region
          AND e.grp = log_streams.grp AND e.stream = log_streams.name), 0);
    UPDATE log_groups SET stored_bytes = coalesce((
        SELECT sum(s.stored_bytes) FROM log_streams s
        WHERE s.account = log_groups.account AND s.region = log_groups.region
          AND s.grp = log_groups.name), 0);
    """,
    # 21: CloudWatch Logs keyed by integers (store/logs.py): a group and a stream get an id (``id``,
    # a stream names its group by ``gid``) and an event keeps only its stream's and group's ids, not
    # four names repeated in the table and in both indexes (a third of the cost of storing it).
    # Events keep their ids: GetLogEvents' tokens and FilterLogEvents' eventIds are made of them.
    """
    CREATE TABLE log_groups_keyed (
        id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        created_ms INTEGER NOT NULL, retention_days INTEGER, tags TEXT NOT NULL DEFAULT '{}',
        stored_bytes INTEGER NOT NULL DEFAULT 0,
        UNIQUE (account, region, name)
    );
    INSERT INTO log_groups_keyed (account, region, name, created_ms, retention_days, tags, stored_bytes)
        SELECT account, region, name, created_ms, retention_days, tags, stored_bytes FROM log_groups
        ORDER BY account, region, name;
    CREATE TABLE log_streams_keyed (
        id INTEGER PRIMARY KEY, gid INTEGER NOT NULL, name TEXT NOT NULL, created_ms INTEGER NOT NULL,
        first_ms INTEGER, last_ms INTEGER, ingested_ms INTEGER, stored_bytes INTEGER NOT NULL DEFAULT 0,
        UNIQUE (gid, name)
    );
    INSERT INTO log_streams_keyed (gid, name, created_ms, first_ms, last_ms, ingested_ms, stored_bytes)
        SELECT g.id, s.name, s.created_ms, s.first_ms, s.last_ms, s.ingested_ms, s.stored_bytes
        FROM log_streams s JOIN log_groups_keyed g
          ON g.account = s.account AND g.region = s.region AND g.name = s.grp
        ORDER BY g.id, s.name;
    CREATE TABLE log_events_keyed (
        id INTEGER PRIMARY KEY, gid INTEGER NOT NULL, sid INTEGER NOT NULL, ts INTEGER NOT NULL,
        ingested_ms INTEGER NOT NULL, message TEXT NOT NULL
    );
    INSERT INTO log_events_keyed (id, gid, sid, ts, ingested_ms, message)
        SELECT e.id, g.id, s.id, e.ts, e.ingested_ms, e.message
        FROM log_events e
        JOIN log_groups_keyed g ON g.account = e.account AND g.region = e.region AND g.name = e.grp
        JOIN log_streams_keyed s ON s.gid = g.id AND s.name = e.stream
        ORDER BY e.id;
    DROP TABLE log_events;
    DROP TABLE log_streams;
    DROP TABLE log_groups;
    ALTER TABLE log_groups_keyed RENAME TO log_groups;
    ALTER TABLE log_streams_keyed RENAME TO log_streams;
    ALTER TABLE log_events_keyed RENAME TO log_events;
    CREATE INDEX log_events_stream ON log_events (sid, ts, id);
    CREATE INDEX log_events_group ON log_events (gid, ts, id);
    """,
    # EC2's (account, region) partitions that have been set up: the default VPC is made once, the
    # first time a partition is used (store/ec2.py), and never again, even once it is deleted.
    """
    CREATE TABLE ec2_partitions (
        account TEXT NOT NULL, region TEXT NOT NULL, created_ms INTEGER NOT NULL,
        PRIMARY KEY (account, region)
    );
    """,
    # Network ACLs (services/ec2/handlers_nacls.py): a VPC made before them gets its default ACL
    # (rules 100 allow and 32767 deny, outbound first, as EC2 lists them) and each of its subnets
    # an association with it; ACLs are ``ec2_resources`` of kind ``network-acl``.
    """
    INSERT INTO ec2_resources (account, region, id, kind, vpc_id, subnet_id, body)
        SELECT v.account, v.region, 'acl-' || substr(lower(hex(randomblob(9))), 1, 17), 'network-acl', v.id,
               NULL, '{}'
        FROM ec2_resources v
        WHERE v.kind = 'vpc' AND NOT EXISTS (
            SELECT 1 FROM ec2_resources a
            WHERE a.account = v.account AND a.region = v.region AND a.kind = 'network-acl' AND a.vpc_id = v.id);
    UPDATE ec2_resources SET body = json_object(
        'Associations', json((
            SELECT json_group_array(json_object(
                'NetworkAclAssociationId', 'aclassoc-' || substr(lower(hex(randomblob(9))), 1, 17),
                'NetworkAclId', ec2_resources.id,
                'SubnetId', s.id))
            FROM ec2_resources s
            WHERE s.account = ec2_resources.account AND s.region = ec2_resources.region
              AND s.kind = 'subnet' AND s.vpc_id = ec2_resources.vpc_id)),
        'Entries', json_array(
            json_object('CidrBlock', '0.0.0.0/0', 'Egress', json('true'), 'Protocol', '-1',
                        'RuleAction', 'allow', 'RuleNumber', 100),
            json_object('CidrBlock', '0.0.0.0/0', 'Egress', json('true'), 'Protocol', '-1',
                        'RuleAction', 'deny', 'RuleNumber', 32767),
            json_object('CidrBlock', '0.0.0.0/0', 'Egress', json('false'), 'Protocol', '-1',
                        'RuleAction', 'allow', 'RuleNumber', 100),
            json_object('CidrBlock', '0.0.0.0/0', 'Egress', json('false'), 'Protocol', '-1',
                        'RuleAction', 'deny', 'RuleNumber', 32767)),
        'IsDefault', json('true'),
        'NetworkAclId', id,
        'Tags', json_array(),
        'VpcId', vpc_id,
        'OwnerId', account)
    WHERE kind = 'network-acl' AND body = '{}';
    """,
    # VPCs across nodes (docs/overlay.md): each VPC's VXLAN network identifier, unique, allocated
    # once (store/overlay.py) and kept while the VPC exists.
    """
    CREATE TABLE vpc_vnis (vpc_id TEXT PRIMARY KEY, vni INTEGER NOT NULL UNIQUE);
    """,
    # Several nodes sharing one database (docs/nodes.md): the node registry, each node's idle warm
    # environments by function version (what Invoke routing looks at), console sessions (any node
    # serves a session another signed in) and the leases of claimed Event invocations.
    """
    CREATE TABLE nodes (
        name TEXT PRIMARY KEY, url TEXT NOT NULL, instance TEXT NOT NULL, started REAL NOT NULL,
        heartbeat REAL NOT NULL, state TEXT NOT NULL, busy INTEGER NOT NULL DEFAULT 0,
        max_environments INTEGER NOT NULL DEFAULT 0, iam_writes INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE node_warm (
        node TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        version TEXT NOT NULL, revision TEXT NOT NULL, idle INTEGER NOT NULL,
        PRIMARY KEY (node, account, region, name, version, revision)
    );
    CREATE TABLE console_sessions (
        token_hash TEXT PRIMARY KEY, account TEXT NOT NULL, access_key_id TEXT NOT NULL, arn TEXT NOT NULL,
        principal_expires REAL, expires REAL NOT NULL, created REAL NOT NULL
    );
    CREATE INDEX console_sessions_key ON console_sessions (access_key_id, created);
    CREATE INDEX console_sessions_expires ON console_sessions (expires);
    CREATE TABLE console_downloads (
        token_hash TEXT PRIMARY KEY, session_hash TEXT NOT NULL, region TEXT NOT NULL, bucket TEXT NOT NULL,
        object_key TEXT NOT NULL, expires REAL NOT NULL, created REAL NOT NULL
    );
    CREATE INDEX console_downloads_expires ON console_downloads (expires);
    ALTER TABLE event_invocations ADD COLUMN claimed_by TEXT;
    ALTER TABLE event_invocations ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;
    CREATE INDEX event_invocations_claimed ON event_invocations (claimed_by);
    """,
    # VPCs across nodes (docs/overlay.md): each VPC's home node (where its interfaces, NAT and
    # uplink are built) and each node's underlay address (its VXLAN tunnels' endpoint).
    """
    CREATE TABLE vpc_homes (vpc_id TEXT PRIMARY KEY, node TEXT NOT NULL, since REAL NOT NULL);
    CREATE TABLE node_addresses (name TEXT PRIMARY KEY, address TEXT NOT NULL);
    """,
    # Deferred deletes of a remote blob store's objects (docs/blobs.md, store/blob_deletes.py): a
    # blob whose last reference went, 'pending' until its grace period ends, then 'deleting' while
    # a node's sweeper deletes the object; and the sweeps' counter, which every change of a
    # 'deleting' mark advances (what lets a publish skip looking its upload up again).
    """
    CREATE TABLE blob_deletes (sha256 TEXT PRIMARY KEY, state TEXT NOT NULL, since_ms INTEGER NOT NULL);
    CREATE INDEX blob_deletes_since ON blob_deletes (since_ms);
    CREATE TABLE blob_sweeps (name TEXT PRIMARY KEY, epoch INTEGER NOT NULL);
    INSERT INTO blob_sweeps (name, epoch) VALUES ('epoch', 0);
    """,
    # Reserved concurrency across nodes (docs/nodes.md): one row per running invocation of a
    # function with a reservation while other nodes are live, held by the node (and its process)
    # that received it.
    """
    CREATE TABLE concurrency_slots (
        id TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        node TEXT NOT NULL, instance TEXT NOT NULL, taken REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX concurrency_slots_function ON concurrency_slots (account, region, name);
    CREATE INDEX concurrency_slots_node ON concurrency_slots (node, instance);
    """,
    # Small blobs in the database, with a remote blob store (docs/blobs.md, store/inline_blobs.py):
    # a zip sent in a request, kept by the transaction that refers to it (no upload on its path).
    """
    CREATE TABLE inline_blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL);
    """,
)
