//! Wire bodies of the `/v1` endpoints that administer SCIM provisioning: org SCIM tokens and
//! the mapping of SCIM groups to roles. The SCIM protocol itself (`/scim/v2`, RFC 7643/7644)
//! speaks its own standard JSON and is not described here.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::api::Role;

/// An org SCIM token's metadata; the secret is never listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScimTokenInfo {
    /// Token id (`sct_...`), as audited (`scim_token:<id>`).
    pub id: String,
    /// Display name (which directory uses it).
    pub name: String,
    /// The visible start of the token (`ekscim_` and its lookup id).
    pub prefix: String,
    /// Creation time.
    pub created_at: i64,
    /// End of validity, set when the token is rotated (end of the overlap window).
    pub expires_at: Option<i64>,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Last time the token authenticated a SCIM request (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// The token that replaced this one by rotation.
    pub replaced_by: Option<String>,
}

/// `POST /v1/scim-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateScimTokenRequest {
    /// Display name, 1 to 100 characters.
    pub name: String,
}

/// The answer to creating or rotating a SCIM token: the secret, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedScimToken {
    /// The token's metadata.
    pub token: ScimTokenInfo,
    /// The secret (`ekscim_...`) to configure in the directory. Only its hash is stored.
    pub secret: String,
}

/// `POST /v1/scim-tokens/{id}/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateScimTokenRequest {
    /// How long the old token stays valid, in seconds (0 to 86400, default 300).
    #[serde(default)]
    pub overlap_seconds: Option<u32>,
}

/// `PUT /v1/scim-groups/{id}/role`: the role membership in a SCIM group grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetScimGroupRoleRequest {
    /// `admin` or `owner`; `null` (or `member`) removes the mapping.
    pub role: Option<Role>,
}

/// A SCIM group as the org's Owners see it, with the role it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScimGroupInfo {
    /// SCIM group id.
    pub id: String,
    /// The directory's display name of the group.
    pub display_name: String,
    /// The role its members get (highest wins), if mapped.
    pub role: Option<Role>,
    /// How many users are in it.
    pub members: u64,
}
