-- user_version = 7
CREATE INDEX api_keys_org ON api_keys(org_id);
CREATE INDEX audit_log_time ON audit_log(org_id, at);
CREATE INDEX device_status_org ON device_status(org_id);
CREATE INDEX device_tokens_family ON device_tokens(family);
CREATE INDEX devices_org_group ON devices(org_id, device_group);
CREATE INDEX identity_links_user ON identity_links(org_id, provider, issuer, user_id);
CREATE INDEX invitations_org ON invitations(org_id);
CREATE INDEX members_org ON members(org_id);
CREATE UNIQUE INDEX members_org_user ON members(org_id, user_id)
    WHERE user_id IS NOT NULL AND removed_at IS NULL;
CREATE INDEX passkeys_user ON passkeys(user_id);
CREATE INDEX rollout_progress_org ON rollout_progress(org_id);
CREATE INDEX rollouts_org_model ON rollouts(org_id, model);
CREATE INDEX scim_group_members_user ON scim_group_members(user_id);
CREATE INDEX scim_groups_org ON scim_groups(org_id);
CREATE INDEX scim_tokens_org ON scim_tokens(org_id);
CREATE INDEX scim_users_external ON scim_users(org_id, external_id);
CREATE UNIQUE INDEX scim_users_name ON scim_users(org_id, user_name COLLATE NOCASE);
CREATE INDEX sessions_member ON sessions(member_id);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX telemetry_events_org ON telemetry_events(org_id, at);
CREATE INDEX telemetry_health_org ON telemetry_health(org_id, at);
CREATE INDEX telemetry_latency_org ON telemetry_latency(org_id, at);
CREATE INDEX telemetry_quality_org ON telemetry_quality(org_id, at);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    member_id TEXT NOT NULL REFERENCES members(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER,
    replaced_by TEXT
);
CREATE TABLE audit_heads (
    org_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
, mac TEXT NOT NULL DEFAULT '');
CREATE TABLE audit_log (
    org_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE TABLE bootstrap_tokens (
    hash BLOB PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    device_group TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    device_id TEXT
);
CREATE TABLE ceremonies (
    hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE device_status (
    device_id TEXT PRIMARY KEY REFERENCES devices(id),
    org_id TEXT NOT NULL,
    last_seen_at INTEGER,
    sdk_version TEXT,
    active_models TEXT,
    health TEXT,
    health_at INTEGER,
    acked_through INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE device_tokens (
    hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    device_id TEXT NOT NULL REFERENCES devices(id),
    org_id TEXT NOT NULL REFERENCES orgs(id),
    family TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    revoked_at INTEGER
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    device_group TEXT,
    identity_key BLOB NOT NULL,
    sealed_kwk BLOB NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE fleet_snapshots (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    at INTEGER NOT NULL,
    enrolled INTEGER NOT NULL,
    online INTEGER NOT NULL,
    never_seen INTEGER NOT NULL,
    PRIMARY KEY (org_id, at)
);
CREATE TABLE identity_links (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    provider TEXT NOT NULL CHECK (provider IN ('oidc', 'saml')),
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, provider, issuer, subject)
);
CREATE TABLE idp_configs (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    sealed_client_secret BLOB NOT NULL,
    allowed_email_domains TEXT NOT NULL,
    sso_required INTEGER NOT NULL CHECK (sso_required IN (0, 1)),
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    token_hash BLOB NOT NULL UNIQUE,
    email TEXT,
    role TEXT NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
    member_id TEXT REFERENCES members(id),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER,
    accepted_by TEXT,
    revoked_at INTEGER
);
CREATE TABLE members (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
    created_at INTEGER NOT NULL,
    removed_at INTEGER
, user_id TEXT REFERENCES users(id));
CREATE TABLE model_versions (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    artifact_id TEXT NOT NULL UNIQUE,
    manifest TEXT NOT NULL,
    sealed_content_key BLOB NOT NULL,
    uploaded_at INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    approved_at INTEGER,
    approved_by TEXT,
    PRIMARY KEY (org_id, model, version)
);
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE TABLE publisher_keys (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    key_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (org_id, key_id)
);
CREATE TABLE rollout_progress (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    org_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    previous_version INTEGER,
    device_group TEXT,
    basis_points INTEGER NOT NULL CHECK (basis_points BETWEEN 0 AND 10000),
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'rolled_back')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE saml_configs (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    idp_entity_id TEXT NOT NULL,
    sso_url TEXT NOT NULL,
    certificate BLOB NOT NULL,
    allowed_email_domains TEXT NOT NULL,
    sso_required INTEGER NOT NULL CHECK (sso_required IN (0, 1)),
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups(id),
    user_id TEXT NOT NULL REFERENCES scim_users(id),
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    display_name TEXT NOT NULL,
    external_id TEXT,
    role TEXT CHECK (role IN ('admin', 'owner')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER,
    replaced_by TEXT
);
CREATE TABLE scim_users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    member_id TEXT NOT NULL REFERENCES members(id),
    user_name TEXT NOT NULL,
    external_id TEXT,
    given_name TEXT,
    family_name TEXT,
    formatted_name TEXT,
    display_name TEXT,
    emails TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    org_id TEXT NOT NULL REFERENCES orgs(id),
    member_id TEXT NOT NULL REFERENCES members(id),
    method TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    stepped_up_at INTEGER,
    revoked_at INTEGER
);
CREATE TABLE telemetry_batches (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE TABLE telemetry_events (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE telemetry_health (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    health TEXT NOT NULL
);
CREATE TABLE telemetry_latency (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    at INTEGER NOT NULL,
    counts TEXT NOT NULL
);
CREATE TABLE telemetry_quality (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    metric TEXT NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    display_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deactivated_at INTEGER
);
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
