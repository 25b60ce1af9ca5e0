//! What rotating a credential with an overlap means, for API keys and SCIM tokens alike: the
//! optional request body, the overlap window's bounds, and which credentials may rotate.

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// How long the old credential stays valid by default, seconds.
pub const DEFAULT_OVERLAP_SECS: u32 = 300;
/// The longest overlap, seconds.
pub const MAX_OVERLAP_SECS: u32 = 86_400;

/// The overlap a rotate request asks for: its body (`T`, empty for the defaults) read with
/// `overlap_of`, checked against [`MAX_OVERLAP_SECS`].
pub fn overlap<T: DeserializeOwned + Default>(
    body: &[u8],
    overlap_of: impl FnOnce(T) -> Option<u32>,
) -> Result<i64, ApiError> {
    let request: T = if body.is_empty() {
        T::default()
    } else {
        serde_json::from_slice(body).map_err(|_| {
            ApiError::bad_request("request body is not valid JSON for this endpoint")
        })?
    };
    let overlap = overlap_of(request).unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::bad_request(
            "overlap_seconds must be at most 86400",
        ));
    }
    Ok(i64::from(overlap))
}

/// Refuses to rotate a credential that was revoked or already rotated.
pub fn ensure_rotatable(
    revoked_at: Option<i64>,
    replaced_by: Option<&str>,
) -> Result<(), ApiError> {
    if revoked_at.is_some() || replaced_by.is_some() {
        return Err(ApiError::new(
            edgekeep_protocol::ErrorCode::Conflict,
            "the credential was revoked or already rotated",
        ));
    }
    Ok(())
}
