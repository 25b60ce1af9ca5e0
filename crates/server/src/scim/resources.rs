//! The SCIM representation of users and groups (RFC 7643 §4) and the discovery documents
//! (`ServiceProviderConfig`, `Schemas`, `ResourceTypes`). Pure: no storage, no HTTP.
//!
//! Input is read with one rule for POST, PUT and the result of PATCH: the attributes this
//! server keeps are checked strictly; read-only ones (`id`, `meta`, `groups`) and attributes it
//! does not keep (`title`, `addresses`, extensions, ...) are ignored, as RFC 7644 §3.3 allows.
//! The published schemas list exactly the attributes kept, so a client can tell.

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::filter::{GROUP_SCHEMA, USER_SCHEMA};
use super::patch::get_ci;
use crate::storage::{ScimEmail, ScimGroupRecord, ScimName, ScimUserRecord};

/// The list response schema.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Longest string attribute kept, in characters.
pub const MAX_TEXT: usize = 256;
/// Most emails per user.
pub const MAX_EMAILS: usize = 20;
/// Most members per group in one request.
pub const MAX_MEMBERS: usize = 1000;

/// Attributes of a user no request may change.
pub const USER_READ_ONLY: &[&str] = &["id", "meta", "groups", "schemas"];
/// Attributes of a group no request may change.
pub const GROUP_READ_ONLY: &[&str] = &["id", "meta", "schemas"];
/// Sub-attributes compared exactly in value filters.
pub const CASE_EXACT: &[&str] = &["value"];

/// What a client sent for a user, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    /// `userName`.
    pub user_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `name`.
    pub name: ScimName,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `emails`.
    pub emails: Vec<ScimEmail>,
    /// `active` (default true).
    pub active: bool,
}

/// What a client sent for a group, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInput {
    /// `displayName`.
    pub display_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// Member SCIM user ids.
    pub members: Vec<String>,
}

fn text(value: &Value, name: &str) -> Result<Option<String>, ScimError> {
    match get_ci(value, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if s.chars().count() <= MAX_TEXT && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(ScimError::InvalidValue(
            "a text attribute is too long or holds control characters",
        )),
        Some(_) => Err(ScimError::InvalidValue("a text attribute is not a string")),
    }
}

fn boolean(value: &Value, name: &str) -> Result<Option<bool>, ScimError> {
    match get_ci(value, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        // Azure AD sends "True"/"False" in PATCH values.
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ScimError::InvalidValue(
            "a boolean attribute is not a boolean",
        )),
    }
}

fn require_schema(value: &Value, schema: &str) -> Result<(), ScimError> {
    let ok = get_ci(value, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema)))
        });
    if ok {
        Ok(())
    } else {
        Err(ScimError::InvalidSyntax(
            "schemas must name the resource's core schema",
        ))
    }
}

/// Reads a user from a request body (POST, PUT, or a resource after PATCH).
pub fn user_input(body: &Map<String, Value>) -> Result<UserInput, ScimError> {
    let value = Value::Object(body.clone());
    require_schema(&value, USER_SCHEMA)?;
    let user_name = text(&value, "userName")?
        .filter(|n| !n.trim().is_empty())
        .ok_or(ScimError::InvalidValue("userName is required"))?;
    let name = match get_ci(&value, "name") {
        None | Some(Value::Null) => ScimName::default(),
        Some(name @ Value::Object(_)) => ScimName {
            formatted: text(name, "formatted")?,
            given_name: text(name, "givenName")?,
            family_name: text(name, "familyName")?,
        },
        Some(_) => return Err(ScimError::InvalidValue("name must be an object")),
    };
    let emails = match get_ci(&value, "emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_EMAILS {
                return Err(ScimError::InvalidValue("at most 20 emails"));
            }
            let mut emails = Vec::with_capacity(items.len());
            for item in items {
                if !item.is_object() {
                    return Err(ScimError::InvalidValue("an email must be an object"));
                }
                let Some(address) = text(item, "value")?.filter(|v| !v.is_empty()) else {
                    return Err(ScimError::InvalidValue("an email needs a value"));
                };
                emails.push(ScimEmail {
                    value: address,
                    kind: text(item, "type")?,
                    primary: boolean(item, "primary")?.unwrap_or(false),
                });
            }
            if emails.iter().filter(|e| e.primary).count() > 1 {
                return Err(ScimError::InvalidValue("at most one primary email"));
            }
            emails
        }
        Some(_) => return Err(ScimError::InvalidValue("emails must be an array")),
    };
    Ok(UserInput {
        user_name,
        external_id: text(&value, "externalId")?,
        name,
        display_name: text(&value, "displayName")?,
        emails,
        active: boolean(&value, "active")?.unwrap_or(true),
    })
}

/// Reads a group from a request body.
pub fn group_input(body: &Map<String, Value>) -> Result<GroupInput, ScimError> {
    let value = Value::Object(body.clone());
    require_schema(&value, GROUP_SCHEMA)?;
    let display_name = text(&value, "displayName")?
        .filter(|n| !n.trim().is_empty())
        .ok_or(ScimError::InvalidValue("displayName is required"))?;
    let members = match get_ci(&value, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_MEMBERS {
                return Err(ScimError::InvalidValue("at most 1000 members per request"));
            }
            let mut members = Vec::with_capacity(items.len());
            for item in items {
                // `type` is informative: every member must be a user of the org, which the
                // caller checks by id.
                text(item, "type")?;
                let id = text(item, "value")?
                    .ok_or(ScimError::InvalidValue("a member needs a value"))?;
                if !members.contains(&id) {
                    members.push(id);
                }
            }
            members
        }
        Some(_) => return Err(ScimError::InvalidValue("members must be an array")),
    };
    Ok(GroupInput {
        display_name,
        external_id: text(&value, "externalId")?,
        members,
    })
}

/// RFC 3339 UTC time of unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn meta(kind: &str, base: &str, id: &str, created: i64, modified: i64) -> Value {
    json!({
        "resourceType": kind,
        "created": rfc3339(created),
        "lastModified": rfc3339(modified),
        "location": format!("{base}/{kind}s/{id}"),
    })
}

fn put_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), Value::String(v.clone()));
    }
}

/// A user's SCIM representation; `base` is the `/scim/v2` URL.
pub fn user_json(user: &ScimUserRecord, base: &str) -> Value {
    let mut map = Map::new();
    map.insert("schemas".into(), json!([USER_SCHEMA]));
    map.insert("id".into(), json!(user.id));
    put_opt(&mut map, "externalId", &user.external_id);
    map.insert("userName".into(), json!(user.user_name));
    let mut name = Map::new();
    put_opt(&mut name, "formatted", &user.name.formatted);
    put_opt(&mut name, "givenName", &user.name.given_name);
    put_opt(&mut name, "familyName", &user.name.family_name);
    if !name.is_empty() {
        map.insert("name".into(), Value::Object(name));
    }
    put_opt(&mut map, "displayName", &user.display_name);
    if !user.emails.is_empty() {
        let emails = user
            .emails
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("value".into(), json!(e.value));
                put_opt(&mut m, "type", &e.kind);
                m.insert("primary".into(), json!(e.primary));
                Value::Object(m)
            })
            .collect();
        map.insert("emails".into(), Value::Array(emails));
    }
    map.insert("active".into(), json!(user.active));
    map.insert(
        "meta".into(),
        meta("User", base, &user.id, user.created_at, user.updated_at),
    );
    Value::Object(map)
}

/// A group's SCIM representation.
pub fn group_json(group: &ScimGroupRecord, base: &str) -> Value {
    let mut map = Map::new();
    map.insert("schemas".into(), json!([GROUP_SCHEMA]));
    map.insert("id".into(), json!(group.id));
    put_opt(&mut map, "externalId", &group.external_id);
    map.insert("displayName".into(), json!(group.display_name));
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|m| json!({"value": m, "type": "User", "$ref": format!("{base}/Users/{m}")}))
        .collect();
    map.insert("members".into(), Value::Array(members));
    map.insert(
        "meta".into(),
        meta("Group", base, &group.id, group.created_at, group.updated_at),
    );
    Value::Object(map)
}

/// Keeps only the `attributes` asked for (plus `id` and `schemas`, always returned), or drops
/// the `excludedAttributes`; names compare without regard to case, sub-attributes by parent.
pub fn project(mut resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    fn names(list: &str) -> Vec<String> {
        list.split(',')
            .map(|n| {
                let n = n.trim();
                let n = super::filter::strip_urn(n).unwrap_or(n);
                n.split('.').next().unwrap_or("").to_ascii_lowercase()
            })
            .filter(|n| !n.is_empty())
            .collect()
    }
    let Some(map) = resource.as_object_mut() else {
        return resource;
    };
    if let Some(list) = attributes.filter(|l| !l.trim().is_empty()) {
        let keep = names(list);
        map.retain(|k, _| {
            let k = k.to_ascii_lowercase();
            k == "id" || k == "schemas" || keep.contains(&k)
        });
    } else if let Some(list) = excluded {
        let drop = names(list);
        map.retain(|k, _| {
            let k = k.to_ascii_lowercase();
            k == "id" || k == "schemas" || !drop.contains(&k)
        });
    }
    resource
}

/// A `ListResponse`.
pub fn list(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

fn attribute(
    name: &str,
    kind: &str,
    description: &str,
    required: bool,
    case_exact: bool,
    mutability: &str,
    uniqueness: &str,
) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    })
}

fn string_attr(name: &str, description: &str) -> Value {
    attribute(
        name,
        "string",
        description,
        false,
        false,
        "readWrite",
        "none",
    )
}

/// The User schema: the attributes this server keeps.
pub fn user_schema(base: &str) -> Value {
    let mut name = attribute(
        "name",
        "complex",
        "The components of the user's name.",
        false,
        false,
        "readWrite",
        "none",
    );
    name["subAttributes"] = json!([
        string_attr("formatted", "The full name."),
        string_attr("familyName", "The family name."),
        string_attr("givenName", "The given name."),
    ]);
    let mut emails = attribute(
        "emails",
        "complex",
        "Email addresses, as the directory asserts them.",
        false,
        false,
        "readWrite",
        "none",
    );
    emails["multiValued"] = json!(true);
    let mut email_value = string_attr("value", "The address.");
    email_value["caseExact"] = json!(false);
    let mut primary = attribute(
        "primary",
        "boolean",
        "Whether it is the primary address.",
        false,
        false,
        "readWrite",
        "none",
    );
    primary["caseExact"] = json!(false);
    emails["subAttributes"] = json!([
        email_value,
        string_attr("type", "A label: work, home or other."),
        primary,
    ]);
    let mut active = attribute(
        "active",
        "boolean",
        "False deprovisions: the membership, its API keys and sessions end.",
        false,
        false,
        "readWrite",
        "none",
    );
    active["caseExact"] = json!(false);
    schema_doc(
        USER_SCHEMA,
        "User",
        "A person provisioned into the org.",
        vec![
            attribute(
                "userName",
                "string",
                "Unique in the org, without regard to case.",
                true,
                false,
                "readWrite",
                "server",
            ),
            name,
            string_attr("displayName", "The name shown in the org."),
            emails,
            active,
        ],
        base,
    )
}

/// The Group schema.
pub fn group_schema(base: &str) -> Value {
    let mut members = attribute(
        "members",
        "complex",
        "The users in the group.",
        false,
        false,
        "readWrite",
        "none",
    );
    members["multiValued"] = json!(true);
    let mut value = attribute(
        "value",
        "string",
        "The user's id.",
        false,
        true,
        "immutable",
        "none",
    );
    value["returned"] = json!("default");
    let mut reference = attribute(
        "$ref",
        "reference",
        "The user's URI.",
        false,
        true,
        "immutable",
        "none",
    );
    reference["referenceTypes"] = json!(["User"]);
    let kind = attribute(
        "type",
        "string",
        "Always User.",
        false,
        false,
        "immutable",
        "none",
    );
    members["subAttributes"] = json!([value, reference, kind]);
    schema_doc(
        GROUP_SCHEMA,
        "Group",
        "A directory group; an Owner may map it to a role.",
        vec![
            attribute(
                "displayName",
                "string",
                "The group's name.",
                true,
                false,
                "readWrite",
                "none",
            ),
            members,
        ],
        base,
    )
}

fn schema_doc(
    id: &str,
    name: &str,
    description: &str,
    attributes: Vec<Value>,
    base: &str,
) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

/// The User and Group resource types.
pub fn resource_types(base: &str) -> Vec<Value> {
    [("User", "Users", USER_SCHEMA), ("Group", "Groups", GROUP_SCHEMA)]
        .into_iter()
        .map(|(name, endpoint, schema)| {
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": name,
                "name": name,
                "endpoint": format!("/{endpoint}"),
                "description": format!("{name}s of the org"),
                "schema": schema,
                "schemaExtensions": [],
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
            })
        })
        .collect()
}

/// What this server supports (RFC 7643 §5).
pub fn service_provider_config(base: &str, max_results: u64) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://edgekeep.invalid/docs/operator-guide#scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An org SCIM token (ekscim_...) in Authorization: Bearer",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn users_read_strictly_and_ignore_what_is_not_kept() {
        let body = json!({"schemas": [USER_SCHEMA], "userName": "ada", "title": "x",
            "active": "False", "emails": [{"value": "a@x", "primary": true}], "id": "forged"});
        let input = user_input(body.as_object().unwrap()).unwrap();
        assert_eq!(input.user_name, "ada");
        assert!(!input.active);
        for bad in [
            json!({"userName": "a"}),
            json!({"schemas": [USER_SCHEMA]}),
            json!({"schemas": [USER_SCHEMA], "userName": 3}),
            json!({"schemas": [USER_SCHEMA], "userName": "a", "emails": {}}),
            json!({"schemas": [USER_SCHEMA], "userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
            json!({"schemas": [USER_SCHEMA], "userName": "x".repeat(300)}),
        ] {
            assert!(user_input(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn projection_keeps_id() {
        let user = json!({"id": "1", "schemas": [], "userName": "a", "emails": []});
        let only = project(user.clone(), Some("userName"), None);
        assert_eq!(only, json!({"id": "1", "schemas": [], "userName": "a"}));
        let without = project(user, None, Some("emails,name.givenName"));
        assert!(without.get("emails").is_none());
    }
}
