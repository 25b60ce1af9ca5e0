//! RFC 7644 §3.5.2 PATCH, applied to a resource's JSON representation: `add`, `replace` and
//! `remove`, with a path (`attr`, `attr.sub`, `attr[sub eq "v"]`, `attr[sub eq "v"].sub`,
//! optionally prefixed by the core schema URN) or, for `add` and `replace`, without one (the
//! value is an object of paths, as Azure AD and Okta send). The result is then read back by
//! the resource's own parser, so PATCH accepts exactly what PUT accepts.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{Comparison, MAX_FILTER_LEN, is_attr_name, parse_comparison, strip_urn};

/// The PATCH message schema.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The most operations one PATCH may carry.
pub const MAX_OPERATIONS: usize = 100;

/// A parsed PATCH path.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (`emails`).
    pub attribute: String,
    /// A value filter on a multi-valued attribute (`[type eq "work"]`).
    pub filter: Option<Comparison>,
    /// A sub-attribute (`.value`).
    pub sub: Option<String>,
}

/// Parses a PATCH path; anything outside the grammar above is `invalidPath`.
pub fn parse_path(text: &str) -> Result<PatchPath, ScimError> {
    const MALFORMED: ScimError = ScimError::InvalidPath("the path is malformed");
    if text.len() > MAX_FILTER_LEN {
        return Err(ScimError::InvalidPath("the path is too long"));
    }
    let text = strip_urn(text)?;
    let (head, filter, tail) = match text.find('[') {
        Some(open) => {
            let close = text.rfind(']').ok_or(MALFORMED)?;
            if close < open {
                return Err(MALFORMED);
            }
            let inner = &text[open + 1..close];
            let filter = parse_comparison(inner).map_err(|_| {
                ScimError::InvalidPath("the value filter must be `attribute eq \"value\"`")
            })?;
            if filter.attribute.contains('.') {
                return Err(MALFORMED);
            }
            let tail = &text[close + 1..];
            let tail = match tail {
                "" => None,
                t => Some(t.strip_prefix('.').ok_or(MALFORMED)?),
            };
            (&text[..open], Some(filter), tail)
        }
        None => match text.split_once('.') {
            Some((head, sub)) => (head, None, Some(sub)),
            None => (text, None, None),
        },
    };
    if !is_attr_name(head) || tail.is_some_and(|t| !is_attr_name(t)) {
        return Err(MALFORMED);
    }
    Ok(PatchPath {
        attribute: head.to_owned(),
        filter,
        sub: tail.map(str::to_owned),
    })
}

/// The value of `name` in an object, compared without regard to case.
pub fn get_ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn key_ci(map: &Map<String, Value>, name: &str) -> String {
    map.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies the operations of a PatchOp message to `resource` (a JSON object). `read_only`
/// names the attributes no operation may touch (`id`, `meta`, ...); `case_exact` those whose
/// string values filters compare exactly.
pub fn apply(
    resource: &mut Map<String, Value>,
    message: &Map<String, Value>,
    read_only: &[&str],
    case_exact: &[&str],
) -> Result<(), ScimError> {
    let schemas = message
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .and_then(|(_, v)| v.as_array())
        .ok_or(ScimError::InvalidSyntax("a PatchOp message needs schemas"))?;
    if !schemas.iter().any(|s| s.as_str() == Some(PATCH_SCHEMA)) {
        return Err(ScimError::InvalidSyntax("the message is not a PatchOp"));
    }
    let operations = message
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .ok_or(ScimError::InvalidSyntax(
            "a PatchOp message needs Operations",
        ))?;
    if operations.is_empty() || operations.len() > MAX_OPERATIONS {
        return Err(ScimError::InvalidValue(
            "a PatchOp carries 1 to 100 operations",
        ));
    }
    for operation in operations {
        let op = match get_ci(operation, "op").and_then(Value::as_str) {
            Some(o) if o.eq_ignore_ascii_case("add") => Op::Add,
            Some(o) if o.eq_ignore_ascii_case("replace") => Op::Replace,
            Some(o) if o.eq_ignore_ascii_case("remove") => Op::Remove,
            _ => {
                return Err(ScimError::InvalidSyntax(
                    "op must be add, replace or remove",
                ));
            }
        };
        let value = get_ci(operation, "value");
        match get_ci(operation, "path") {
            Some(Value::String(path)) => {
                let path = parse_path(path)?;
                apply_one(resource, op, &path, value, read_only, case_exact)?;
            }
            Some(_) => return Err(ScimError::InvalidPath("path must be a string")),
            None if op == Op::Remove => return Err(ScimError::NoTarget),
            None => {
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::InvalidValue(
                        "an operation without a path needs an object value",
                    ));
                };
                for (key, value) in values {
                    let path = parse_path(key)?;
                    apply_one(resource, op, &path, Some(value), read_only, case_exact)?;
                }
            }
        }
    }
    Ok(())
}

fn apply_one(
    resource: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
    read_only: &[&str],
    case_exact: &[&str],
) -> Result<(), ScimError> {
    if read_only
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&path.attribute))
    {
        return Err(ScimError::Mutability("the attribute is read-only"));
    }
    let key = key_ci(resource, &path.attribute);
    let value = match (op, value) {
        (Op::Remove, v) => v.cloned(),
        (_, None) | (_, Some(Value::Null)) if op != Op::Remove => {
            return Err(ScimError::InvalidValue("the operation needs a value"));
        }
        (_, v) => v.cloned(),
    };
    match (&path.filter, &path.sub) {
        (None, None) => match op {
            Op::Remove => match value {
                Some(Value::Array(items)) => {
                    if let Some(Value::Array(existing)) = resource.get_mut(&key) {
                        existing.retain(|e| !items.iter().any(|i| same_element(e, i)));
                    }
                }
                _ => {
                    resource.remove(&key);
                }
            },
            Op::Add => {
                let value = value.unwrap_or(Value::Null);
                match (resource.get_mut(&key), value) {
                    (Some(Value::Array(existing)), Value::Array(items)) => {
                        for item in items {
                            if !existing.iter().any(|e| same_element(e, &item)) {
                                existing.push(item);
                            }
                        }
                    }
                    (Some(Value::Object(existing)), Value::Object(items)) => {
                        for (k, v) in items {
                            let k = key_ci(existing, &k);
                            existing.insert(k, v);
                        }
                    }
                    (_, value) => {
                        resource.insert(key, value);
                    }
                }
            }
            Op::Replace => {
                let value = value.unwrap_or(Value::Null);
                match (resource.get_mut(&key), value) {
                    (Some(Value::Object(existing)), Value::Object(items)) => {
                        for (k, v) in items {
                            let k = key_ci(existing, &k);
                            existing.insert(k, v);
                        }
                    }
                    (_, value) => {
                        resource.insert(key, value);
                    }
                }
            }
        },
        (None, Some(sub)) => {
            let entry = resource
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(object) = entry else {
                return Err(ScimError::InvalidPath(
                    "the attribute has no sub-attributes",
                ));
            };
            let sub_key = key_ci(object, sub);
            match value {
                Some(v) if op != Op::Remove => {
                    object.insert(sub_key, v);
                }
                _ => {
                    object.remove(&sub_key);
                }
            }
        }
        (Some(filter), sub) => {
            let exact = case_exact
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&filter.attribute));
            let entry = resource
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = entry else {
                return Err(ScimError::InvalidPath(
                    "a value filter needs a multi-valued attribute",
                ));
            };
            let matched = items.iter().filter(|e| filter.matches(e, exact)).count();
            match (op, sub) {
                (Op::Remove, None) => items.retain(|e| !filter.matches(e, exact)),
                (Op::Remove, Some(sub)) => {
                    for item in items.iter_mut().filter(|e| filter.matches(e, exact)) {
                        if let Value::Object(object) = item {
                            let k = key_ci(object, sub);
                            object.remove(&k);
                        }
                    }
                }
                (_, Some(sub)) => {
                    let value = value.unwrap_or(Value::Null);
                    if matched == 0 {
                        let mut created = Map::new();
                        created.insert(filter.attribute.clone(), filter.value.clone());
                        created.insert(sub.clone(), value);
                        items.push(Value::Object(created));
                    } else {
                        for item in items.iter_mut().filter(|e| filter.matches(e, exact)) {
                            if let Value::Object(object) = item {
                                let k = key_ci(object, sub);
                                object.insert(k, value.clone());
                            }
                        }
                    }
                }
                (_, None) => {
                    if matched == 0 {
                        return Err(ScimError::NoTarget);
                    }
                    let value = value.unwrap_or(Value::Null);
                    for item in items.iter_mut().filter(|e| filter.matches(e, exact)) {
                        match (&mut *item, &value) {
                            (Value::Object(object), Value::Object(update)) => {
                                for (k, v) in update {
                                    let k = key_ci(object, k);
                                    object.insert(k, v.clone());
                                }
                            }
                            _ => *item = value.clone(),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Two elements of a multi-valued attribute are the same when their `value`s are (or, without
/// one, when they are equal).
fn same_element(a: &Value, b: &Value) -> bool {
    match (get_ci(a, "value"), get_ci(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn run(mut resource: Value, ops: Value) -> Result<Value, ScimError> {
        let message = json!({"schemas": [PATCH_SCHEMA], "Operations": ops});
        apply(
            resource.as_object_mut().unwrap(),
            message.as_object().unwrap(),
            &["id", "meta"],
            &["value"],
        )?;
        Ok(resource)
    }

    #[test]
    fn paths_parse() {
        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attribute, "emails");
        assert!(p.filter.unwrap().is("type"));
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_path("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName").unwrap();
        assert_eq!(
            (p.attribute.as_str(), p.sub.as_deref()),
            ("name", Some("givenName"))
        );
        for bad in [
            "",
            "a..b",
            "a[",
            "a]b[",
            "emails[type]",
            "a.b.c",
            "9a",
            "a[x eq \"y\"]b",
        ] {
            assert!(
                matches!(parse_path(bad), Err(ScimError::InvalidPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn azure_and_okta_shapes() {
        let user = json!({"id": "1", "active": true, "name": {"givenName": "A"}, "emails": []});
        let out = run(
            user.clone(),
            json!([{"op": "Replace", "value": {"active": false, "name.familyName": "B"}}]),
        )
        .unwrap();
        assert_eq!(out["active"], false);
        assert_eq!(out["name"], json!({"givenName": "A", "familyName": "B"}));
        let out = run(
            user.clone(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{"type": "work", "value": "a@x"}]));
        let group = json!({"id": "g", "members": [{"value": "u1"}, {"value": "u2"}]});
        let out = run(
            group.clone(),
            json!([{"op": "remove", "path": "members[value eq \"u1\"]"},
                   {"op": "add", "path": "members", "value": [{"value": "u3"}, {"value": "u2"}]}]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u2"}, {"value": "u3"}]));
        let out = run(
            group,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u2"}]}]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u1"}]));
    }

    #[test]
    fn refusals() {
        let user = json!({"id": "1"});
        assert_eq!(
            run(user.clone(), json!([{"op": "remove"}])).unwrap_err(),
            ScimError::NoTarget
        );
        assert!(matches!(
            run(
                user.clone(),
                json!([{"op": "replace", "path": "id", "value": "2"}])
            ),
            Err(ScimError::Mutability(_))
        ));
        assert!(matches!(
            run(user.clone(), json!([{"op": "move", "path": "a"}])),
            Err(ScimError::InvalidSyntax(_))
        ));
        assert_eq!(
            run(
                user,
                json!([{"op": "replace", "path": "emails[type eq \"x\"]", "value": {}}])
            )
            .unwrap_err(),
            ScimError::NoTarget
        );
    }

    proptest! {
        #[test]
        fn path_parser_never_panics(text in ".{0,120}") {
            let _ = parse_path(&text);
        }

        #[test]
        fn structured_paths_never_panic(
            attr in "[a-zA-Z][a-zA-Z0-9]{0,8}",
            sub in proptest::option::of("[a-zA-Z.\\[\\]\" ]{0,12}"),
            value in proptest::option::of(".{0,12}"),
        ) {
            let text = format!("{attr}{}{}", sub.unwrap_or_default(), value.unwrap_or_default());
            let _ = parse_path(&text);
            let _ = run(json!({"id": "1", "emails": [{"value": "a"}]}),
                json!([{"op": "add", "path": text, "value": "x"}]));
        }
    }
}
