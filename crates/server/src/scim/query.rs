//! List parameters: `filter`, `startIndex`, `count` (RFC 7644 §3.4.2), and the
//! `attributes`/`excludedAttributes` projection.

use super::error::ScimError;
use super::filter::parse_comparison;
use crate::storage::ScimLookup;

/// The default page size.
pub const DEFAULT_COUNT: u64 = 100;
/// The largest page.
pub const MAX_COUNT: u64 = 200;

/// Checked list parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which resources.
    pub lookup: ScimLookup,
    /// 1-based index of the first result.
    pub start_index: u64,
    /// Page size.
    pub count: u64,
    /// `attributes`.
    pub attributes: Option<String>,
    /// `excludedAttributes`.
    pub excluded: Option<String>,
}

impl ListQuery {
    /// The `ListResponse` of one page: each item as JSON, projected as asked.
    pub fn answer<T>(
        &self,
        page: &crate::storage::ScimPage<T>,
        to_json: impl Fn(&T) -> serde_json::Value,
    ) -> serde_json::Value {
        let items = page
            .items
            .iter()
            .map(|item| {
                super::resources::project(
                    to_json(item),
                    self.attributes.as_deref(),
                    self.excluded.as_deref(),
                )
            })
            .collect();
        super::resources::list(page.total, self.start_index, items)
    }
}

/// Projection parameters of a single-resource answer.
pub fn projection(params: &[(String, String)]) -> (Option<String>, Option<String>) {
    (
        param(params, "attributes"),
        param(params, "excludedAttributes"),
    )
}

fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn number(params: &[(String, String)], name: &str) -> Result<Option<i64>, ScimError> {
    param(params, name)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ScimError::InvalidValue("startIndex and count must be integers"))
        })
        .transpose()
}

/// Reads list parameters. `name_attribute` is the attribute that maps to
/// [`ScimLookup::Name`] (`userName` or `displayName`).
pub fn list_query(
    params: &[(String, String)],
    name_attribute: &str,
) -> Result<ListQuery, ScimError> {
    let lookup = match param(params, "filter") {
        None => ScimLookup::All,
        Some(text) => {
            let comparison = parse_comparison(&text)?;
            let serde_json::Value::String(value) = comparison.value.clone() else {
                return Err(ScimError::InvalidFilter("the value must be a string"));
            };
            if comparison.is(name_attribute) {
                ScimLookup::Name(value)
            } else if comparison.is("externalId") {
                ScimLookup::ExternalId(value)
            } else if comparison.is("id") {
                ScimLookup::Id(value)
            } else {
                return Err(ScimError::InvalidFilter(
                    "filters are supported on the name attribute, externalId and id",
                ));
            }
        }
    };
    // RFC 7644 §3.4.2.4: a startIndex below 1 is 1; a negative count is 0.
    let start_index = number(params, "startIndex")?.unwrap_or(1).max(1) as u64;
    let count = number(params, "count")?
        .map_or(DEFAULT_COUNT, |c| c.max(0) as u64)
        .min(MAX_COUNT);
    let (attributes, excluded) = projection(params);
    Ok(ListQuery {
        lookup,
        start_index,
        count,
        attributes,
        excluded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, ScimError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        list_query(&owned, "userName")
    }

    #[test]
    fn pagination_is_clamped() {
        let query = q(&[("startIndex", "0"), ("count", "-5")]).unwrap();
        assert_eq!((query.start_index, query.count), (1, 0));
        assert_eq!(q(&[("count", "100000")]).unwrap().count, MAX_COUNT);
        assert!(q(&[("count", "x")]).is_err());
    }

    #[test]
    fn filters_map_to_lookups() {
        assert_eq!(
            q(&[("filter", r#"userName eq "A""#)]).unwrap().lookup,
            ScimLookup::Name("A".into())
        );
        assert!(matches!(
            q(&[("filter", r#"displayName eq "A""#)]),
            Err(ScimError::InvalidFilter(_))
        ));
        assert!(matches!(
            q(&[("filter", "active eq true")]),
            Err(ScimError::InvalidFilter(_))
        ));
    }
}
