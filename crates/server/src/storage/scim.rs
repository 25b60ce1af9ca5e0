//! Persistence of SCIM provisioning: org SCIM tokens, the users and groups a directory
//! provisions, and the mapping of groups to roles.
//!
//! A SCIM user is a person ([`super::UserRecord`]) with a membership in the token's org. Every
//! change that can alter access runs in one transaction with its audit events: deprovisioning
//! removes the membership (its API keys and sessions end with it), group changes recompute the
//! roles of the users concerned, and a change that would leave the org without an Owner is a
//! `Conflict` that changes nothing.

use edgekeep_protocol::api::Role;
use serde::{Deserialize, Serialize};

use super::{AuditEvent, MemberRecord, StorageError, UserRecord};

/// The conflict message when a `userName` is already taken in the org.
pub const USER_NAME_TAKEN: &str = "userName is already taken in this org";

/// An org SCIM token; only the SHA-256 of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimTokenRecord {
    /// Token id (`sct_...`).
    pub id: String,
    /// The org it provisions.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// Visible prefix (`ekscim_` + lookup id).
    pub prefix: String,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    /// Creation time.
    pub created_at: i64,
    /// End of validity (set by rotation).
    pub expires_at: Option<i64>,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Last use.
    pub last_used_at: Option<i64>,
    /// Replacement token id after rotation.
    pub replaced_by: Option<String>,
}

/// One email of a SCIM user, as the directory asserted it (not verified by the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScimEmail {
    /// The address.
    pub value: String,
    /// `work`, `home`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether it is the primary address.
    #[serde(default)]
    pub primary: bool,
}

/// The name parts of a SCIM user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScimName {
    /// `name.formatted`.
    pub formatted: Option<String>,
    /// `name.givenName`.
    pub given_name: Option<String>,
    /// `name.familyName`.
    pub family_name: Option<String>,
}

/// A SCIM user of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimUserRecord {
    /// SCIM id (`scu_...`).
    pub id: String,
    /// The org.
    pub org_id: String,
    /// The person.
    pub user_id: String,
    /// The person's membership in the org (the last one, when deprovisioned).
    pub member_id: String,
    /// `userName`, unique in the org without regard to case.
    pub user_name: String,
    /// `externalId`, the directory's own id.
    pub external_id: Option<String>,
    /// `name`.
    pub name: ScimName,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `emails`.
    pub emails: Vec<ScimEmail>,
    /// `active`: false means deprovisioned (no membership, no keys, no sessions).
    pub active: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl ScimUserRecord {
    /// The person's name shown in the org: `displayName`, else the formatted or composed
    /// name, else the `userName`.
    pub fn shown_name(&self) -> String {
        let composed = [&self.name.given_name, &self.name.family_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        self.display_name
            .clone()
            .or_else(|| self.name.formatted.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| (!composed.is_empty()).then_some(composed))
            .unwrap_or_else(|| self.user_name.clone())
    }
}

/// A SCIM group of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroupRecord {
    /// SCIM id (`scg_...`).
    pub id: String,
    /// The org.
    pub org_id: String,
    /// `displayName`.
    pub display_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// The role membership grants (Admin or Owner), set by an Owner.
    pub role: Option<Role>,
    /// The SCIM user ids in the group.
    pub members: Vec<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// Which SCIM resources a list returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimLookup {
    /// Every resource of the org.
    All,
    /// `userName eq` (users, case-insensitive) or `displayName eq` (groups, case-insensitive).
    Name(String),
    /// `externalId eq` (case-sensitive).
    ExternalId(String),
    /// `id eq`.
    Id(String),
}

/// One page of a list: the total that matched and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimPage<T> {
    /// How many resources matched in all.
    pub total: u64,
    /// The resources from the requested offset.
    pub items: Vec<T>,
}

/// A user provisioned by a directory: the person, the membership and the SCIM record.
#[derive(Debug, Clone)]
pub struct NewScimUser<'a> {
    /// The SCIM record (`member_id` and `user_id` name the rows below).
    pub record: &'a ScimUserRecord,
    /// The new person.
    pub user: &'a UserRecord,
    /// The new membership (ignored when the record is inactive).
    pub member: &'a MemberRecord,
    /// What is audited.
    pub audit: &'a AuditEvent,
}

/// SCIM provisioning: tokens, users, groups, group roles.
pub trait ScimStorage {
    /// Stores a new SCIM token.
    fn insert_scim_token(
        &self,
        token: &ScimTokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// The org's SCIM tokens, oldest first.
    fn scim_tokens(&self, org_id: &str) -> Result<Vec<ScimTokenRecord>, StorageError>;

    /// One SCIM token of the org.
    fn scim_token(
        &self,
        org_id: &str,
        token_id: &str,
    ) -> Result<Option<ScimTokenRecord>, StorageError>;

    /// The token with this secret hash.
    fn scim_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ScimTokenRecord>, StorageError>;

    /// Stores `new` and makes `old_id` expire at `old_expires_at`, replaced by `new`; a
    /// conflict when `old_id` was revoked or already rotated.
    fn rotate_scim_token(
        &self,
        org_id: &str,
        old_id: &str,
        old_expires_at: i64,
        new: &ScimTokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// Revokes a token now; `false` when it was already revoked or does not exist.
    fn revoke_scim_token(
        &self,
        org_id: &str,
        token_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Records that a token was used.
    fn touch_scim_token(&self, org_id: &str, token_id: &str, at: i64) -> Result<(), StorageError>;

    /// Provisions a user: a conflict when the `userName` is taken in the org.
    fn create_scim_user(&self, new: &NewScimUser<'_>) -> Result<(), StorageError>;

    /// One SCIM user of the org.
    fn scim_user(&self, org_id: &str, id: &str) -> Result<Option<ScimUserRecord>, StorageError>;

    /// A page of the org's SCIM users (`offset` from 0), oldest first.
    fn scim_users(
        &self,
        org_id: &str,
        lookup: &ScimLookup,
        offset: u64,
        limit: u64,
    ) -> Result<ScimPage<ScimUserRecord>, StorageError>;

    /// Replaces a SCIM user with `record` (same id and org). Turning `active` off
    /// deprovisions: the membership is removed (its keys and sessions end) and the person is
    /// deactivated when no other org has them. Turning it on again creates the membership
    /// `new_member_id` and gives it its groups' role. A conflict when the `userName` is taken
    /// or the org would lose its last Owner; `None` when the user does not exist.
    fn update_scim_user(
        &self,
        record: &ScimUserRecord,
        new_member_id: &str,
        audit: &AuditEvent,
    ) -> Result<Option<ScimUserRecord>, StorageError>;

    /// Deprovisions (as above) and forgets a SCIM user; `false` when it does not exist.
    fn delete_scim_user(
        &self,
        org_id: &str,
        id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Creates a group; every member must be a SCIM user of the org (a conflict otherwise).
    /// Members get the group's role (none for a new group).
    fn create_scim_group(
        &self,
        group: &ScimGroupRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// One group of the org.
    fn scim_group(&self, org_id: &str, id: &str) -> Result<Option<ScimGroupRecord>, StorageError>;

    /// A page of the org's groups (`offset` from 0), oldest first.
    fn scim_groups(
        &self,
        org_id: &str,
        lookup: &ScimLookup,
        offset: u64,
        limit: u64,
    ) -> Result<ScimPage<ScimGroupRecord>, StorageError>;

    /// Replaces a group's name, external id and members (its role mapping stays) and
    /// recomputes the roles of the users who joined or left. `false` when it does not exist.
    fn update_scim_group(
        &self,
        group: &ScimGroupRecord,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Deletes a group; its members lose its role. `false` when it does not exist.
    fn delete_scim_group(
        &self,
        org_id: &str,
        id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Maps a group to a role (`None`: no role) and recomputes its members' roles. `false`
    /// when the group does not exist.
    fn set_scim_group_role(
        &self,
        org_id: &str,
        id: &str,
        role: Option<Role>,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;
}
