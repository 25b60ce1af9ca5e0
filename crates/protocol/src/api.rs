//! Request and response bodies of the `/v1` API, roles and the permission table.
//!
//! Times are unix seconds (`i64`). Binary values (public keys) are unpadded base64url.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A member's role in an org. Ordered: `Member < Admin < Owner`.
///
/// Members upload model versions and read the fleet; Admins also approve versions and run
/// rollouts; Owners also register publisher keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the org, mints bootstrap tokens, manages its own API keys.
    Member,
    /// Also manages Members and their keys, revokes devices, reads the audit trail.
    Admin,
    /// Also grants and withdraws Admin and Owner, and manages everyone.
    Owner,
}

impl Role {
    /// The wire name (`"admin"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    /// Every permission the role holds; an API key's scope is always a subset of this.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Self::Member => &[
                OrgRead,
                MembersRead,
                KeysRead,
                KeysWrite,
                DevicesRead,
                BootstrapCreate,
                ModelsRead,
                ModelsWrite,
                FleetRead,
            ],
            Self::Admin => &[
                OrgRead,
                MembersRead,
                MembersWrite,
                KeysRead,
                KeysWrite,
                DevicesRead,
                DevicesWrite,
                BootstrapCreate,
                AuditRead,
                ModelsRead,
                ModelsWrite,
                ModelsApprove,
                RolloutsWrite,
                FleetRead,
            ],
            Self::Owner => Permission::ALL,
        }
    }

    /// Whether the role holds `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// Whether an actor with this role (and id `actor_id`) may manage member `target` (its keys,
    /// its removal). Everyone manages themselves; Owners manage everyone; Admins manage Members.
    pub fn may_manage(self, actor_id: &str, target_id: &str, target_role: Role) -> bool {
        actor_id == target_id
            || self == Role::Owner
            || (self == Role::Admin && target_role == Role::Member)
    }
}

/// One permission an API key scope may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum Permission {
    /// Read the org's own record.
    #[serde(rename = "org:read")]
    OrgRead,
    /// List members.
    #[serde(rename = "members:read")]
    MembersRead,
    /// Add and remove members the caller may manage.
    #[serde(rename = "members:write")]
    MembersWrite,
    /// Grant or withdraw roles (Owner only).
    #[serde(rename = "roles:grant")]
    RolesGrant,
    /// List API keys (metadata only).
    #[serde(rename = "keys:read")]
    KeysRead,
    /// Create, rotate and revoke API keys of members the caller may manage.
    #[serde(rename = "keys:write")]
    KeysWrite,
    /// List devices.
    #[serde(rename = "devices:read")]
    DevicesRead,
    /// Revoke devices and device groups.
    #[serde(rename = "devices:write")]
    DevicesWrite,
    /// Mint device bootstrap tokens.
    #[serde(rename = "bootstrap:create")]
    BootstrapCreate,
    /// Read, export and verify the audit trail.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Register and revoke publisher keys (Owner only).
    #[serde(rename = "publishers:write")]
    PublishersWrite,
    /// List publisher keys, models and versions.
    #[serde(rename = "models:read")]
    ModelsRead,
    /// Upload model artifacts.
    #[serde(rename = "models:write")]
    ModelsWrite,
    /// Approve model versions for rollout.
    #[serde(rename = "models:approve")]
    ModelsApprove,
    /// Create, promote, pause, resume and roll back rollouts.
    #[serde(rename = "rollouts:write")]
    RolloutsWrite,
    /// Read fleet health, device status and rollouts.
    #[serde(rename = "fleet:read")]
    FleetRead,
}

impl Permission {
    /// Every permission.
    pub const ALL: &'static [Permission] = &[
        Permission::OrgRead,
        Permission::MembersRead,
        Permission::MembersWrite,
        Permission::RolesGrant,
        Permission::KeysRead,
        Permission::KeysWrite,
        Permission::DevicesRead,
        Permission::DevicesWrite,
        Permission::BootstrapCreate,
        Permission::AuditRead,
        Permission::PublishersWrite,
        Permission::ModelsRead,
        Permission::ModelsWrite,
        Permission::ModelsApprove,
        Permission::RolloutsWrite,
        Permission::FleetRead,
    ];

    /// The wire name (`"keys:write"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrgRead => "org:read",
            Self::MembersRead => "members:read",
            Self::MembersWrite => "members:write",
            Self::RolesGrant => "roles:grant",
            Self::KeysRead => "keys:read",
            Self::KeysWrite => "keys:write",
            Self::DevicesRead => "devices:read",
            Self::DevicesWrite => "devices:write",
            Self::BootstrapCreate => "bootstrap:create",
            Self::AuditRead => "audit:read",
            Self::PublishersWrite => "publishers:write",
            Self::ModelsRead => "models:read",
            Self::ModelsWrite => "models:write",
            Self::ModelsApprove => "models:approve",
            Self::RolloutsWrite => "rollouts:write",
            Self::FleetRead => "fleet:read",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.as_str() == text)
    }
}

/// An org as its members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OrgInfo {
    /// Org id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
}

/// A member of an org (a person or a backend service holding API keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MemberInfo {
    /// Member id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Current role.
    pub role: Role,
    /// Creation time.
    pub created_at: i64,
}

/// `POST /v1/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMemberRequest {
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// Role; anything above Member needs an Owner.
    pub role: Role,
}

/// `PUT /v1/members/{id}/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// The new role.
    pub role: Role,
}

/// An API key's metadata. The secret is never returned after creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ApiKeyInfo {
    /// Key id.
    pub id: String,
    /// The member the key acts for.
    pub member_id: String,
    /// Display name.
    pub name: String,
    /// The visible start of the key (`ek_` and its lookup id).
    pub prefix: String,
    /// Permissions of the key (further limited by the member's current role).
    pub scopes: Vec<Permission>,
    /// Creation time.
    pub created_at: i64,
    /// End of validity, set when the key is rotated (end of the overlap window).
    pub expires_at: Option<i64>,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Last time the key authenticated a request (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// The key that replaced this one by rotation.
    pub replaced_by: Option<String>,
}

/// `POST /v1/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// The member the key acts for; the caller itself when absent.
    #[serde(default)]
    pub member_id: Option<String>,
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// Scope; every permission of the member's role when absent. Must be a subset of it.
    #[serde(default)]
    pub scopes: Option<Vec<Permission>>,
}

/// A newly created or rotated key, with its secret shown this one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedApiKey {
    /// The key's metadata.
    pub key: ApiKeyInfo,
    /// The secret (`ek_...`). Store it now; it cannot be retrieved again.
    pub secret: String,
}

/// `POST /v1/api-keys/{id}/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateApiKeyRequest {
    /// How long the old key stays valid, in seconds (0 to 86400, default 300).
    #[serde(default)]
    pub overlap_seconds: Option<u32>,
}

/// `POST /v1/bootstrap-tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateBootstrapTokenRequest {
    /// Device group the enrolled device joins (`[A-Za-z0-9._-]{1,64}`).
    #[serde(default)]
    pub device_group: Option<String>,
    /// Lifetime in seconds, 1 to 600 (default 600).
    #[serde(default)]
    pub ttl_seconds: Option<u32>,
}

/// A single-use bootstrap token for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BootstrapTokenResponse {
    /// The token (`ekb_...`), to hand to one device.
    pub token: String,
    /// The org the token enrolls into.
    pub org_id: String,
    /// The device group, if any.
    pub device_group: Option<String>,
    /// Expiry time.
    pub expires_at: i64,
}

/// `POST /v1/device/enroll`, sent with a proof signed by the identity key whose `ath` is the
/// hash of the bootstrap token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The org the device expects to join; must be the bootstrap token's org.
    pub org_id: String,
    /// The bootstrap token (`ekb_...`).
    pub bootstrap_token: String,
    /// ECDSA P-256 identity public key, uncompressed SEC1, base64url.
    pub identity_public_key: String,
    /// Ephemeral X25519 public key, base64url.
    pub agreement_public_key: String,
}

impl EnrollRequest {
    /// Builds the request, encoding the raw public keys (65-byte SEC1 P-256 identity key,
    /// 32-byte X25519 key) as the wire expects.
    pub fn new(
        org_id: &str,
        bootstrap_token: &str,
        identity_public_key: &[u8],
        agreement_public_key: &[u8],
    ) -> Self {
        Self {
            org_id: org_id.to_owned(),
            bootstrap_token: bootstrap_token.to_owned(),
            identity_public_key: crate::b64_encode(identity_public_key),
            agreement_public_key: crate::b64_encode(agreement_public_key),
        }
    }
}

/// Credentials of an enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeviceCredentials {
    /// Access token (`eka_...`), sent as `Authorization: DPoP <token>` with a proof.
    pub access_token: String,
    /// Access token expiry.
    pub access_expires_at: i64,
    /// Refresh token (`ekr_...`), single use.
    pub refresh_token: String,
    /// Refresh token expiry.
    pub refresh_expires_at: i64,
}

/// Answer to enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EnrollResponse {
    /// The new device id.
    pub device_id: String,
    /// The org the device joined.
    pub org_id: String,
    /// The device group, if any.
    pub device_group: Option<String>,
    /// The server's ephemeral X25519 public key, base64url; with the device's ephemeral key it
    /// yields the device's key-wrapping key ([`crate::key_agreement`]).
    pub server_agreement_public_key: String,
    /// The first credentials.
    pub credentials: DeviceCredentials,
}

/// `POST /v1/device/refresh`, sent with a proof whose `ath` is the hash of the refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The current refresh token (`ekr_...`).
    pub refresh_token: String,
}

/// A device as the org sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Org id.
    pub org_id: String,
    /// Device group, if any.
    pub device_group: Option<String>,
    /// Enrollment time.
    pub enrolled_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// Answer to a group revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RevokedCount {
    /// Number of devices newly revoked.
    pub revoked: u64,
}

/// One entry of the hash-chained audit trail (also one line of the JSON Lines export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Time of the event.
    pub at: i64,
    /// Org the event belongs to.
    pub org_id: String,
    /// Who acted: `member:<id>`, `device:<id>`, `system` or `anonymous`.
    pub actor: String,
    /// What happened (`api_key.rotate`, `device.enroll.rejected`, ...).
    pub action: String,
    /// What it happened to (`api_key:<id>`, `device:<id>`, ...).
    pub target: String,
    /// `ok` or the error code of a rejected attempt.
    pub outcome: String,
    /// Request id (also returned in the `x-request-id` response header).
    pub request_id: String,
    /// Hash of the previous entry (hex).
    pub prev_hash: String,
    /// Hash of this entry (hex): SHA-256 over the previous hash and this entry's fields.
    pub hash: String,
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct AuditRange {
    /// Earliest time, inclusive.
    #[serde(default)]
    pub from: Option<i64>,
    /// Latest time, exclusive.
    #[serde(default)]
    pub to: Option<i64>,
}

/// Answer of `GET /v1/audit/verify`: the state of the caller's org chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditVerification {
    /// Whether every entry and the head check out.
    pub intact: bool,
    /// Number of entries checked (when intact).
    pub entries: u64,
    /// Where the chain first breaks, in words (when not intact).
    pub problem: Option<String>,
}

/// `GET /v1/audit/checkpoint`: the head of the caller's org chain, signed by the server's
/// desired-state key (`GET /v1/desired-state-key`). Keep it outside the server; handing it back
/// to `POST /v1/audit/verify-checkpoint` (or `edgekeep-server audit verify --checkpoints`) proves
/// the chain was not cut back or rewritten since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpoint {
    /// Org id.
    pub org_id: String,
    /// Sequence number of the head entry.
    pub seq: i64,
    /// Hash of the head entry.
    pub hash: String,
    /// When the server signed it.
    pub signed_at: i64,
    /// Id of the signing key.
    pub key_id: String,
    /// Base64url Ed25519 signature.
    pub signature: String,
}

/// Whether a display name is acceptable: 1 to 100 characters, no control characters, no
/// bidirectional overrides or isolates and no invisible (zero-width) characters, so a name
/// shown to a person reads as what it is.
pub fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=100).contains(&count)
        && name.trim() == name
        && !name
            .chars()
            .any(|c| c.is_control() || is_invisible_or_bidi(c))
}

/// Whether `c` reorders or hides text when displayed: bidirectional embeddings, overrides,
/// isolates and marks, zero-width characters, the byte-order mark, and other format
/// characters that render as nothing.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Whether a device group name is acceptable: `[A-Za-z0-9._-]{1,64}`.
pub fn valid_group(group: &str) -> bool {
    (1..=64).contains(&group.len())
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_escalate() {
        assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
        for p in Role::Member.permissions() {
            assert!(Role::Admin.allows(*p));
        }
        for p in Role::Admin.permissions() {
            assert!(Role::Owner.allows(*p));
        }
        assert!(!Role::Admin.allows(Permission::RolesGrant));
        assert!(!Role::Member.allows(Permission::AuditRead));
    }

    #[test]
    fn management_rules() {
        assert!(Role::Member.may_manage("a", "a", Role::Member));
        assert!(!Role::Member.may_manage("a", "b", Role::Member));
        assert!(Role::Admin.may_manage("a", "b", Role::Member));
        assert!(!Role::Admin.may_manage("a", "b", Role::Admin));
        assert!(Role::Owner.may_manage("a", "b", Role::Owner));
    }

    #[test]
    fn permission_names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
            assert_eq!(
                serde_json::to_string(p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
    }

    #[test]
    fn names_and_groups() {
        assert!(valid_name("Acme backend"));
        assert!(!valid_name(""));
        assert!(!valid_name("a\nb"));
        assert!(valid_name("Zoë Müller-Åström"));
        assert!(valid_name("名前"));
        for bad in [
            "",
            " padded",
            "evil\u{202E}gpj.exe",
            "zero\u{200B}width",
            "isolate\u{2066}x\u{2069}",
            "bom\u{FEFF}",
            "line\nbreak",
            "tag\u{E0041}",
        ] {
            assert!(!valid_name(bad), "{bad:?} accepted");
        }
        assert!(valid_group("beta-1.eu"));
        assert!(!valid_group("a b"));
        assert!(!valid_group(&"x".repeat(65)));
    }
}
