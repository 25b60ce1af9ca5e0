//! Persistence behind one trait, so PostgreSQL can follow the embedded SQLite default.
//!
//! Every mutating method takes the audit event(s) that describe it and records them in the same
//! transaction: an action and its audit entry are committed together or not at all. Methods are
//! synchronous; the HTTP layer calls them through `spawn_blocking`.

#[cfg(test)]
mod conformance;
mod fleet;
mod idp;
mod migrations;
mod people;
pub mod postgres;
mod scim;
mod sqlite;
mod sqlite_fleet;
mod sqlite_idp;
mod sqlite_people;
mod sqlite_scim;

pub use fleet::{
    DeviceStatusRecord, FLEET_HISTORY_SECS, FleetStorage, ModelVersionRecord, PublisherKeyRecord,
    RolloutChange, RolloutRecord, TelemetryWindow, VersionLatency, VersionQuality,
};
pub use idp::{IdentityLink, IdpConfigRecord, IdpStorage, SamlConfigRecord};
pub use people::{
    Acceptance, CeremonyRecord, InvitationRecord, PasskeyRecord, PeopleStorage, SessionRecord,
    UserRecord,
};
pub use postgres::{ARTIFACT_CHUNK, PgStorage};
pub use scim::{
    NewScimUser, ScimEmail, ScimGroupRecord, ScimLookup, ScimName, ScimPage, ScimStorage,
    ScimTokenRecord, ScimUserRecord, USER_NAME_TAKEN,
};
pub use sqlite::{SqliteStorage, restrict_to_owner};

use edgekeep_protocol::api::{AuditEntry, Permission, Role};

/// Why a storage call failed. Carries no user data.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The change conflicts with the current state (lost a race, last Owner, ...).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database schema is newer than this binary understands.
    #[error("database schema version {0} is newer than supported")]
    SchemaTooNew(i64),
    /// A file operation on the database failed.
    #[error("database file: {0}")]
    Io(String),
    /// PostgreSQL reported an error (its SQLSTATE code and message: no values of the request).
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The database cannot be used as configured (refused, unsafe role, unreadable URL).
    #[error("database unusable: {0}")]
    Unusable(String),
    /// The database cannot be reached now (connection lost, none free in time); retrying later
    /// may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// An org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    /// Org id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
}

/// A member of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Member id.
    pub id: String,
    /// Org id.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// Current role.
    pub role: Role,
    /// Creation time.
    pub created_at: i64,
    /// The person holding this membership; `None` for a service member that only holds API
    /// keys (and for members created before people could sign in).
    pub user_id: Option<String>,
}

/// An API key; only the SHA-256 of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Key id.
    pub id: String,
    /// Org id.
    pub org_id: String,
    /// The member the key acts for.
    pub member_id: String,
    /// Display name.
    pub name: String,
    /// Visible prefix (`ek_` + lookup id).
    pub prefix: String,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    /// Scope.
    pub scopes: Vec<Permission>,
    /// Creation time.
    pub created_at: i64,
    /// End of validity (set by rotation).
    pub expires_at: Option<i64>,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Last use.
    pub last_used_at: Option<i64>,
    /// Replacement key id after rotation.
    pub replaced_by: Option<String>,
}

/// A single-use bootstrap token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapRecord {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Org id.
    pub org_id: String,
    /// Device group the device joins.
    pub device_group: Option<String>,
    /// Actor that minted it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Time of use, once used.
    pub used_at: Option<i64>,
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device id.
    pub id: String,
    /// Org id.
    pub org_id: String,
    /// Device group.
    pub device_group: Option<String>,
    /// Uncompressed SEC1 P-256 identity public key.
    pub identity_key: Vec<u8>,
    /// The device's key-wrapping key, sealed with the server secret.
    pub sealed_kwk: Vec<u8>,
    /// Enrollment time.
    pub enrolled_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
}

/// Which kind of device credential a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceTokenKind {
    /// Short-lived access token.
    Access,
    /// Single-use refresh token.
    Refresh,
}

/// A device credential; only the SHA-256 of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTokenRecord {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Access or refresh.
    pub kind: DeviceTokenKind,
    /// Device id.
    pub device_id: String,
    /// Org id.
    pub org_id: String,
    /// Credential family: every token descending from one enrollment.
    pub family: String,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When a refresh token was used.
    pub used_at: Option<i64>,
    /// When the family was revoked.
    pub revoked_at: Option<i64>,
}

/// The recorded head of an org's audit chain, authenticated with the [`crate::audit::AuditKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// Sequence number of the newest entry.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// HMAC over the org, `seq` and `hash` (hex).
    pub mac: String,
}

/// One event to append to an org's audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Org the event belongs to.
    pub org_id: String,
    /// Who acted.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// What it happened to.
    pub target: String,
    /// `ok` or an error code.
    pub outcome: String,
    /// Request id.
    pub request_id: String,
    /// Time.
    pub at: i64,
}

/// Outcome of presenting a refresh token for rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The old token was consumed and the new tokens stored.
    Rotated,
    /// The old token had been used before: its whole family is now revoked.
    Reused,
}

/// The control plane's persistence. Implementations must be safe to share across threads.
/// The model registry, rollouts and telemetry are in the [`FleetStorage`] supertrait; people,
/// invitations, passkeys and sessions in [`PeopleStorage`]; identity providers in
/// [`IdpStorage`]; SCIM provisioning in [`ScimStorage`].
pub trait Storage:
    FleetStorage + PeopleStorage + IdpStorage + ScimStorage + Send + Sync + 'static
{
    /// Creates an org with its first Owner and that Owner's first API key.
    fn create_org(
        &self,
        org: &OrgRecord,
        owner: &MemberRecord,
        key: &ApiKeyRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StorageError>;
    /// Reads an org.
    fn org(&self, org_id: &str) -> Result<Option<OrgRecord>, StorageError>;
    /// Lists every org id (for audit verification).
    fn org_ids(&self) -> Result<Vec<String>, StorageError>;

    /// Lists the current members of an org.
    fn members(&self, org_id: &str) -> Result<Vec<MemberRecord>, StorageError>;
    /// Reads a current member of an org.
    fn member(&self, org_id: &str, member_id: &str) -> Result<Option<MemberRecord>, StorageError>;
    /// Adds a member.
    fn insert_member(&self, member: &MemberRecord, audit: &AuditEvent) -> Result<(), StorageError>;
    /// Changes a member's role. Fails with `Conflict` if it would leave the org without an Owner,
    /// or when the member was provisioned by SCIM and the org maps groups to roles (the directory
    /// decides then).
    fn set_member_role(
        &self,
        org_id: &str,
        member_id: &str,
        role: Role,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;
    /// Removes a member and revokes its keys. Fails with `Conflict` for the last Owner.
    fn remove_member(
        &self,
        org_id: &str,
        member_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// Stores a new API key.
    fn insert_api_key(&self, key: &ApiKeyRecord, audit: &AuditEvent) -> Result<(), StorageError>;
    /// Lists an org's API keys.
    fn api_keys(&self, org_id: &str) -> Result<Vec<ApiKeyRecord>, StorageError>;
    /// Reads one API key of an org.
    fn api_key(&self, org_id: &str, key_id: &str) -> Result<Option<ApiKeyRecord>, StorageError>;
    /// Finds a key by the hash of its secret, with its (current) member.
    fn api_key_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(ApiKeyRecord, MemberRecord)>, StorageError>;
    /// Stores `new` and makes `old_id` expire at `old_expires_at`, replaced by `new`.
    fn rotate_api_key(
        &self,
        org_id: &str,
        old_id: &str,
        old_expires_at: i64,
        new: &ApiKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;
    /// Revokes a key now. Returns false if it was already revoked.
    fn revoke_api_key(
        &self,
        org_id: &str,
        key_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;
    /// Records that a key of the org was used.
    fn touch_api_key(&self, org_id: &str, key_id: &str, at: i64) -> Result<(), StorageError>;

    /// Stores a bootstrap token.
    fn insert_bootstrap_token(
        &self,
        token: &BootstrapRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;
    /// Finds a bootstrap token by hash.
    fn bootstrap_token(&self, hash: &[u8; 32]) -> Result<Option<BootstrapRecord>, StorageError>;
    /// Consumes a bootstrap token (unused, unexpired, of the device's org) and stores the device
    /// and its first tokens. Fails with `Conflict` if the token cannot be consumed.
    fn enroll_device(
        &self,
        bootstrap_hash: &[u8; 32],
        device: &DeviceRecord,
        tokens: &[DeviceTokenRecord],
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// Finds a device token by hash, with its device.
    fn device_token(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(DeviceTokenRecord, DeviceRecord)>, StorageError>;
    /// Consumes refresh token `old_hash` and stores `new_tokens`; if it was consumed before,
    /// revokes its whole family instead. `audit` describes a successful rotation; `reuse_audit`
    /// the reuse.
    fn rotate_refresh_token(
        &self,
        old_hash: &[u8; 32],
        now: i64,
        new_tokens: &[DeviceTokenRecord],
        audit: &AuditEvent,
        reuse_audit: &AuditEvent,
    ) -> Result<RefreshOutcome, StorageError>;
    /// Lists an org's devices.
    fn devices(&self, org_id: &str) -> Result<Vec<DeviceRecord>, StorageError>;
    /// Reads one device of an org.
    fn device(&self, org_id: &str, device_id: &str) -> Result<Option<DeviceRecord>, StorageError>;
    /// Revokes a device. Returns false if it was already revoked.
    fn revoke_device(
        &self,
        org_id: &str,
        device_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;
    /// Revokes every device of a group; returns how many were newly revoked.
    fn revoke_device_group(
        &self,
        org_id: &str,
        group: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<u64, StorageError>;

    /// Appends events that go with no other change (e.g. rejected attempts).
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StorageError>;
    /// Reads an org's audit entries with `from <= at < to`, in chain order.
    fn audit_entries(
        &self,
        org_id: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StorageError>;
    /// The recorded head of an org's audit chain.
    fn audit_head(&self, org_id: &str) -> Result<Option<AuditHead>, StorageError>;

    /// The schema version the database is at (its newest applied migration).
    fn schema_version(&self) -> Result<i64, StorageError>;
}
