-- edgekeep-server on PostgreSQL, schema 1: the SQLite schema after its nine migrations, table for
-- table (times are Unix seconds in BIGINT, hashes and keys BYTEA, flags BOOLEAN), with row-level
-- security on every org-scoped table (ADR 0018).
--
-- The server connects as the owner of these tables, a role that is neither superuser nor
-- BYPASSRLS (checked at start). FORCE ROW LEVEL SECURITY makes the policies bind the owner too:
-- each transaction names its org with set_config('edgekeep.org_id', …, true), and a query that
-- forgets `WHERE org_id` sees that org's rows only, or none without an org.

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- People exist across orgs: a user and their passkeys are reached through a membership or a
-- session of one org, or by an unguessable credential, never listed.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deactivated_at BIGINT
);
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);
CREATE TABLE ceremonies (
    hash BYTEA PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Which org a secret belongs to, by the secret's hash: how a request presenting an API key, a
-- device token, a session, a SCIM token or an invitation finds the org to scope itself to. Holds
-- nothing else; written in the transaction that issues the credential.
CREATE TABLE credential_orgs (
    hash BYTEA PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('api_key', 'device_token', 'session', 'scim_token', 'invitation', 'bootstrap')),
    org_id TEXT NOT NULL REFERENCES orgs(id)
);

CREATE TABLE members (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
    created_at BIGINT NOT NULL,
    removed_at BIGINT,
    user_id TEXT REFERENCES users(id)
);
CREATE INDEX members_org ON members(org_id);
CREATE UNIQUE INDEX members_org_user ON members(org_id, user_id)
    WHERE user_id IS NOT NULL AND removed_at IS NULL;
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    member_id TEXT NOT NULL REFERENCES members(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BYTEA NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    replaced_by TEXT
);
CREATE INDEX api_keys_org ON api_keys(org_id);
CREATE TABLE bootstrap_tokens (
    hash BYTEA PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    device_group TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    device_id TEXT
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    device_group TEXT,
    identity_key BYTEA NOT NULL,
    sealed_kwk BYTEA NOT NULL,
    enrolled_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX devices_org_group ON devices(org_id, device_group);
CREATE TABLE device_tokens (
    hash BYTEA PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    device_id TEXT NOT NULL REFERENCES devices(id),
    org_id TEXT NOT NULL REFERENCES orgs(id),
    family TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX device_tokens_family ON device_tokens(family);

CREATE TABLE audit_log (
    org_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_log_time ON audit_log(org_id, at);
-- One row per org; an append takes it FOR UPDATE, so instances append one chain per org.
CREATE TABLE audit_heads (
    org_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE publisher_keys (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    key_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (org_id, key_id)
);
CREATE TABLE model_versions (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    model TEXT NOT NULL,
    version BIGINT NOT NULL,
    artifact_id TEXT NOT NULL UNIQUE,
    manifest TEXT NOT NULL,
    sealed_content_key BYTEA NOT NULL,
    uploaded_at BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    approved_at BIGINT,
    approved_by TEXT,
    PRIMARY KEY (org_id, model, version)
);
CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    model TEXT NOT NULL,
    version BIGINT NOT NULL,
    previous_version BIGINT,
    device_group TEXT,
    basis_points INTEGER NOT NULL CHECK (basis_points BETWEEN 0 AND 10000),
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'rolled_back')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX rollouts_org_model ON rollouts(org_id, model);
CREATE TABLE rollout_progress (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    org_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_progress_org ON rollout_progress(org_id);
CREATE TABLE device_status (
    device_id TEXT PRIMARY KEY REFERENCES devices(id),
    org_id TEXT NOT NULL,
    last_seen_at BIGINT,
    sdk_version TEXT,
    active_models TEXT,
    health TEXT,
    health_at BIGINT,
    acked_through BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX device_status_org ON device_status(org_id);
-- SQLite keys batches by device alone; here the org is kept too, for the policy.
CREATE TABLE telemetry_batches (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE TABLE telemetry_latency (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version BIGINT NOT NULL,
    at BIGINT NOT NULL,
    counts TEXT NOT NULL
);
CREATE INDEX telemetry_latency_org ON telemetry_latency(org_id, at);
CREATE TABLE telemetry_quality (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version BIGINT NOT NULL,
    metric TEXT NOT NULL,
    sum DOUBLE PRECISION NOT NULL,
    count BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX telemetry_quality_org ON telemetry_quality(org_id, at);
CREATE TABLE telemetry_events (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    code TEXT NOT NULL,
    count BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX telemetry_events_org ON telemetry_events(org_id, at);
CREATE TABLE telemetry_health (
    org_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    health TEXT NOT NULL
);
CREATE INDEX telemetry_health_org ON telemetry_health(org_id, at);
CREATE TABLE fleet_snapshots (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    at BIGINT NOT NULL,
    enrolled BIGINT NOT NULL,
    online BIGINT NOT NULL,
    never_seen BIGINT NOT NULL,
    PRIMARY KEY (org_id, at)
);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    token_hash BYTEA NOT NULL UNIQUE,
    email TEXT,
    role TEXT NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
    member_id TEXT REFERENCES members(id),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT,
    revoked_at BIGINT
);
CREATE INDEX invitations_org ON invitations(org_id);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    org_id TEXT NOT NULL REFERENCES orgs(id),
    member_id TEXT NOT NULL REFERENCES members(id),
    method TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    stepped_up_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_member ON sessions(member_id);
CREATE TABLE idp_configs (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    sealed_client_secret BYTEA NOT NULL,
    allowed_email_domains TEXT NOT NULL,
    sso_required BOOLEAN NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE saml_configs (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    idp_entity_id TEXT NOT NULL,
    sso_url TEXT NOT NULL,
    certificate BYTEA NOT NULL,
    allowed_email_domains TEXT NOT NULL,
    sso_required BOOLEAN NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE identity_links (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    provider TEXT NOT NULL CHECK (provider IN ('oidc', 'saml')),
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider, issuer, subject)
);
CREATE INDEX identity_links_user ON identity_links(org_id, provider, issuer, user_id);

CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    replaced_by TEXT
);
CREATE INDEX scim_tokens_org ON scim_tokens(org_id);
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
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- SQLite's `COLLATE NOCASE` (ASCII case folding) as an expression index.
CREATE UNIQUE INDEX scim_users_name ON scim_users(org_id, lower(user_name));
CREATE INDEX scim_users_external ON scim_users(org_id, external_id);
CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    display_name TEXT NOT NULL,
    external_id TEXT,
    role TEXT CHECK (role IN ('admin', 'owner')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX scim_groups_org ON scim_groups(org_id);
-- SQLite keys group members by group and user alone; here the org is kept too, for the policy.
CREATE TABLE scim_group_members (
    org_id TEXT NOT NULL,
    group_id TEXT NOT NULL REFERENCES scim_groups(id),
    user_id TEXT NOT NULL REFERENCES scim_users(id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members(user_id);

-- Shared by every instance: what one instance kept in memory before (ADR 0018). No tenant data
-- (random proof ids, counter keys), and some keys precede any org (sign-in starts per address):
-- not under the policies.
CREATE TABLE used_proofs (
    scope TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
);
CREATE INDEX used_proofs_expiry ON used_proofs(expires_at);
CREATE TABLE rate_counters (
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- The policies: one per org-scoped table, binding the owner too.
DO $$
DECLARE
    scoped TEXT;
BEGIN
    FOREACH scoped IN ARRAY ARRAY[
        'members', 'api_keys', 'bootstrap_tokens', 'devices', 'device_tokens', 'audit_log',
        'audit_heads', 'publisher_keys', 'model_versions', 'rollouts', 'rollout_progress',
        'device_status', 'telemetry_batches', 'telemetry_latency', 'telemetry_quality',
        'telemetry_events', 'telemetry_health', 'fleet_snapshots', 'invitations', 'sessions',
        'idp_configs', 'saml_configs', 'identity_links', 'scim_tokens', 'scim_users',
        'scim_groups', 'scim_group_members'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', scoped);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', scoped);
        EXECUTE format(
            'CREATE POLICY tenant ON %I USING (org_id = current_setting(''edgekeep.org_id'', true)) '
            'WITH CHECK (org_id = current_setting(''edgekeep.org_id'', true))',
            scoped
        );
    END LOOP;
END;
$$;
ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON orgs
    USING (id = current_setting('edgekeep.org_id', true))
    WITH CHECK (id = current_setting('edgekeep.org_id', true));
