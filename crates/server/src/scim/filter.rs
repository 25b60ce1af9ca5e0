//! The SCIM filter subset IdPs send on lists (`userName eq "..."`, `externalId eq "..."`,
//! `displayName eq "..."`, `id eq "..."`) and the comparison inside PATCH value paths
//! (`members[value eq "..."]`). Parsed strictly: anything else is refused, never guessed at.

use super::error::ScimError;

/// The longest filter or path accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 1024;

/// The core schema URNs an attribute name may be prefixed with.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// `attribute eq value`: an attribute name (no URN, as sent) and the JSON value compared to.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The attribute name (`userName`, `value`, `type`), or `parent.sub` for a list filter.
    pub attribute: String,
    /// A string or boolean.
    pub value: serde_json::Value,
}

impl Comparison {
    /// Whether `attribute` names `name` (case-insensitively, as RFC 7643 §2.1 requires).
    pub fn is(&self, name: &str) -> bool {
        self.attribute.eq_ignore_ascii_case(name)
    }

    /// Whether `element`'s attribute equals the value; strings without regard to case unless
    /// `case_exact`.
    pub fn matches(&self, element: &serde_json::Value, case_exact: bool) -> bool {
        let Some(found) = super::patch::get_ci(element, &self.attribute) else {
            return false;
        };
        match (found, &self.value) {
            (serde_json::Value::String(a), serde_json::Value::String(b)) if !case_exact => {
                a.eq_ignore_ascii_case(b)
            }
            (a, b) => a == b,
        }
    }
}

/// Whether `name` is an attribute name: `ALPHA *(ALPHA / DIGIT / "-" / "_")`.
pub fn is_attr_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Strips a core schema URN prefix (`urn:...:User:userName` → `userName`).
pub fn strip_urn(path: &str) -> Result<&str, ScimError> {
    if !path
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        return Ok(path);
    }
    for schema in [USER_SCHEMA, GROUP_SCHEMA] {
        if path.len() > schema.len() + 1
            && path.is_char_boundary(schema.len())
            && path[..schema.len()].eq_ignore_ascii_case(schema)
            && path.as_bytes()[schema.len()] == b':'
        {
            return Ok(&path[schema.len() + 1..]);
        }
    }
    Err(ScimError::InvalidPath(
        "the path names an unsupported schema",
    ))
}

/// Parses `attrPath SP "eq" SP compValue` where `attrPath` is an attribute name, optionally
/// with one sub-attribute (`emails.value`) and a core schema URN, and `compValue` a JSON
/// string or `true`/`false`. Any other operator, a logical expression, grouping, or trailing
/// text is `invalidFilter`.
pub fn parse_comparison(text: &str) -> Result<Comparison, ScimError> {
    const UNSUPPORTED: ScimError =
        ScimError::InvalidFilter("only `attribute eq \"value\"` filters are supported");
    if text.len() > MAX_FILTER_LEN {
        return Err(ScimError::InvalidFilter("the filter is too long"));
    }
    let text = text.trim_matches(' ');
    let (path, rest) = text.split_once(' ').ok_or(UNSUPPORTED)?;
    let rest = rest.trim_start_matches(' ');
    let (op, value) = rest.split_once(' ').ok_or(UNSUPPORTED)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(UNSUPPORTED);
    }
    let path = strip_urn(path).map_err(|_| UNSUPPORTED)?;
    let valid = match path.split_once('.') {
        Some((parent, sub)) => is_attr_name(parent) && is_attr_name(sub),
        None => is_attr_name(path),
    };
    if !valid {
        return Err(ScimError::InvalidFilter("the attribute name is malformed"));
    }
    let value = value.trim_matches(' ');
    let value = match value {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        quoted if quoted.starts_with('"') => match serde_json::from_str::<String>(quoted) {
            Ok(s) => serde_json::Value::String(s),
            Err(_) => return Err(ScimError::InvalidFilter("the value is not a JSON string")),
        },
        _ => return Err(UNSUPPORTED),
    };
    Ok(Comparison {
        attribute: path.to_owned(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_what_idps_send() {
        let c = parse_comparison(r#"userName eq "ada@example.com""#).unwrap();
        assert!(c.is("username"));
        assert_eq!(c.value, "ada@example.com");
        let c = parse_comparison(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:externalId eq "a \"q\" b""#,
        )
        .unwrap();
        assert!(c.is("externalId"));
        assert_eq!(c.value, "a \"q\" b");
        assert_eq!(
            parse_comparison("primary eq true").unwrap().value,
            serde_json::Value::Bool(true)
        );
        assert!(
            parse_comparison(r#"emails.value EQ "x""#)
                .unwrap()
                .is("emails.value")
        );
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "userName",
            r#"userName co "a""#,
            r#"userName eq "a" and externalId eq "b""#,
            r#"(userName eq "a")"#,
            r#"userName eq "a"#,
            "userName eq a",
            "userName eq 12",
            r#"userName pr"#,
            r#"1user eq "a""#,
            r#"urn:x:y:userName eq "a""#,
            r#"not(userName eq "a")"#,
            r#"emails[type eq "work"] eq "a""#,
        ] {
            let err = parse_comparison(bad).unwrap_err();
            assert!(matches!(err, ScimError::InvalidFilter(_)), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = parse_comparison(&text);
        }

        #[test]
        fn any_string_value_round_trips(value in ".{0,64}") {
            let quoted = serde_json::to_string(&value).unwrap();
            let parsed = parse_comparison(&format!("externalId eq {quoted}")).unwrap();
            prop_assert_eq!(parsed.value, serde_json::Value::String(value));
        }
    }
}
