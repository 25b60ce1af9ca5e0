//! Persistence of people: users, their memberships, invitations, passkeys, sessions and the
//! WebAuthn ceremonies in progress.

use edgekeep_protocol::api::Role;

use super::{AuditEvent, MemberRecord, OrgRecord, StorageError};

/// A person. One user can hold memberships in several orgs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// User id (`usr_...`).
    pub id: String,
    /// The WebAuthn user handle (a random UUID, never the id or the email).
    pub handle: String,
    /// Verified email, when known (lowercase).
    pub email: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Creation time.
    pub created_at: i64,
    /// Deactivation time (deprovisioned); a deactivated user cannot sign in.
    pub deactivated_at: Option<i64>,
}

/// A single-use invitation into an org; only the hash of its token is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    /// Invitation id (`inv_...`).
    pub id: String,
    /// Org.
    pub org_id: String,
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// The email it is bound to, if any.
    pub email: Option<String>,
    /// Role granted on acceptance.
    pub role: Role,
    /// An existing member the accepting person becomes (the first Owner from `init`); a new
    /// member is created otherwise.
    pub member_id: Option<String>,
    /// Audit actor who created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Acceptance time.
    pub accepted_at: Option<i64>,
    /// Revocation time.
    pub revoked_at: Option<i64>,
}

impl InvitationRecord {
    /// Whether it can still be accepted at `now`.
    pub fn is_open(&self, now: i64) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Credential id (base64url).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Name given by the person.
    pub name: String,
    /// The serialized WebAuthn credential (public key, counter, flags).
    pub passkey_json: String,
    /// Registration time.
    pub created_at: i64,
    /// Last successful assertion.
    pub last_used_at: Option<i64>,
}

/// A session bound to one org; only the hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public id (`ses_...`), safe to show and audit.
    pub id: String,
    /// SHA-256 of the cookie secret.
    pub hash: [u8; 32],
    /// The person.
    pub user_id: String,
    /// The org.
    pub org_id: String,
    /// The person's membership there.
    pub member_id: String,
    /// How the person signed in.
    pub method: String,
    /// Start.
    pub created_at: i64,
    /// Last request (idle timeout).
    pub last_seen_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// Last step-up.
    pub stepped_up_at: Option<i64>,
    /// Revocation (logout, deprovisioning, removal).
    pub revoked_at: Option<i64>,
}

/// A WebAuthn ceremony in progress, single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// SHA-256 of the ceremony token.
    pub hash: [u8; 32],
    /// What it is for (`register`, `login`, `step_up`, `invitation`, ...).
    pub kind: String,
    /// Whom it is for (a user id, an invitation id, or `-`).
    pub subject: String,
    /// Serialized server-side ceremony state (challenge, allowed credentials).
    pub state: String,
    /// Expiry.
    pub expires_at: i64,
}

/// What accepting an invitation creates, all in one transaction.
#[derive(Debug, Clone)]
pub struct Acceptance<'a> {
    /// The invitation token's hash.
    pub token_hash: [u8; 32],
    /// The person: created when new, otherwise existing.
    pub user: &'a UserRecord,
    /// Whether `user` must be created.
    pub new_user: bool,
    /// The person's first (or an additional) passkey.
    pub passkey: Option<&'a PasskeyRecord>,
    /// The membership to create when the invitation does not name an existing member.
    pub new_member: &'a MemberRecord,
    /// The session that starts.
    pub session: &'a SessionRecord,
    /// The audit events (invitation accepted, passkey added, login).
    pub audit: &'a [AuditEvent],
    /// Now.
    pub at: i64,
}

/// People, invitations, passkeys, sessions and ceremonies.
pub trait PeopleStorage {
    /// Stores an invitation.
    fn insert_invitation(
        &self,
        invitation: &InvitationRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// The org's invitations, newest first.
    fn invitations(&self, org_id: &str) -> Result<Vec<InvitationRecord>, StorageError>;

    /// The invitation with this token hash.
    fn invitation_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<InvitationRecord>, StorageError>;

    /// Revokes an open invitation of the org; `false` when there is none.
    fn revoke_invitation(
        &self,
        org_id: &str,
        invitation_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Accepts an invitation: consumes it (once: a second acceptance is a conflict), creates
    /// the user and passkey when new, the membership (or links the named member to the
    /// user) and the session. Returns the membership.
    fn accept_invitation(&self, acceptance: &Acceptance<'_>) -> Result<MemberRecord, StorageError>;

    /// A user by id.
    fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StorageError>;

    /// A user by WebAuthn user handle.
    fn user_by_handle(&self, handle: &str) -> Result<Option<UserRecord>, StorageError>;

    /// A user by email.
    fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StorageError>;

    /// The user's current memberships with their orgs, oldest first.
    fn memberships(&self, user_id: &str) -> Result<Vec<(MemberRecord, OrgRecord)>, StorageError>;

    /// The user's passkeys.
    fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StorageError>;

    /// A passkey by credential id.
    fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, StorageError>;

    /// Registers a passkey (a credential id is unique across users: a conflict otherwise).
    fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// Records a successful assertion, with the credential's updated state when it changed.
    fn record_passkey_use(
        &self,
        credential_id: &str,
        updated_json: Option<&str>,
        at: i64,
    ) -> Result<(), StorageError>;

    /// Renames one of the user's passkeys; `false` when not found.
    fn rename_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Removes one of the user's passkeys; a conflict if it is the last one, `false` when not
    /// found.
    fn remove_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Starts a session.
    fn insert_session(
        &self,
        session: &SessionRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// The session with this secret hash, with its membership and user, if the membership
    /// still exists (revocation and expiry are checked by the caller).
    fn session_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, MemberRecord, UserRecord)>, StorageError>;

    /// Records activity on a session.
    fn touch_session(&self, org_id: &str, session_id: &str, at: i64) -> Result<(), StorageError>;

    /// Records a step-up on a session.
    fn step_up_session(
        &self,
        org_id: &str,
        session_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// The user's sessions that are neither revoked nor past their absolute end.
    fn sessions_of_user(&self, user_id: &str, now: i64)
    -> Result<Vec<SessionRecord>, StorageError>;

    /// Revokes one of the user's sessions; `false` when not found or already ended.
    fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Revokes every session of the user (logout everywhere, deprovisioning); returns how
    /// many. `audit` holds one event per org concerned.
    fn revoke_user_sessions(
        &self,
        user_id: &str,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<usize, StorageError>;

    /// Stores a ceremony in progress (and forgets expired ones).
    fn insert_ceremony(&self, ceremony: &CeremonyRecord, now: i64) -> Result<(), StorageError>;

    /// Takes a ceremony of `kind`: returns and deletes it when it exists, has that kind and
    /// has not expired (single use).
    fn take_ceremony(
        &self,
        hash: &[u8; 32],
        kind: &str,
        now: i64,
    ) -> Result<Option<CeremonyRecord>, StorageError>;
}
