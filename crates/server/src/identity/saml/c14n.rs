//! Exclusive XML Canonicalization 1.0 without comments (`http://www.w3.org/2001/10/xml-exc-c14n#`)
//! of one element's subtree, optionally leaving one descendant out (the enveloped signature).
//!
//! This is the only canonicalization SAML signers use in practice, and the only one accepted.
//! The input is a parsed [`roxmltree`] document, so entities, line ends and attribute values
//! are already normalized; what is left is the rendering rules: namespace declarations only
//! where visibly used (or named in the `InclusiveNamespaces` prefix list) and not already in
//! effect on an output ancestor, namespaces sorted by prefix, attributes by namespace URI then
//! local name, and the fixed escapes of text and attribute values.

use roxmltree::{Node, NodeId, NodeType};

/// The URI of the only canonicalization accepted.
pub const EXCLUSIVE: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// Why a subtree cannot be canonicalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum C14nError {
    /// An element's or attribute's qualified name could not be read back from the input.
    #[error("unreadable qualified name")]
    Name,
    /// A prefix is used without a namespace in scope.
    #[error("unbound prefix")]
    UnboundPrefix,
}

/// The namespace declarations in effect on the output so far: `(prefix, uri)`, `""` for the
/// default namespace.
type Rendered<'a> = Vec<(&'a str, &'a str)>;

/// Canonicalizes `root`'s subtree, leaving out the subtree at `omit`. `inclusive` are the
/// prefixes of an `InclusiveNamespaces PrefixList` (`#default` for the default namespace).
pub fn exclusive(
    root: Node<'_, '_>,
    omit: Option<NodeId>,
    inclusive: &[&str],
) -> Result<String, C14nError> {
    let mut out = String::new();
    write_element(root, omit, inclusive, &Vec::new(), &mut out)?;
    Ok(out)
}

fn write_element<'a>(
    node: Node<'a, '_>,
    omit: Option<NodeId>,
    inclusive: &[&str],
    inherited: &Rendered<'a>,
    out: &mut String,
) -> Result<(), C14nError> {
    let qname = element_qname(node)?;
    let mut used: Vec<&str> = vec![prefix_of(qname)];
    let attributes: Vec<(&str, &str, &str, &str)> = node
        .attributes()
        .map(|attr| {
            let qname = attribute_qname(node, &attr)?;
            let prefix = prefix_of(qname);
            if !prefix.is_empty() && !used.contains(&prefix) {
                used.push(prefix);
            }
            Ok((
                attr.namespace().unwrap_or(""),
                attr.name(),
                qname,
                attr.value(),
            ))
        })
        .collect::<Result<_, C14nError>>()?;
    for prefix in inclusive {
        let prefix = if *prefix == "#default" { "" } else { prefix };
        if !used.contains(&prefix) && (prefix.is_empty() || bound(node, prefix).is_some()) {
            used.push(prefix);
        }
    }

    let mut rendered = inherited.clone();
    let mut declarations: Vec<(&str, &str)> = Vec::new();
    for prefix in used {
        if prefix == "xml" {
            continue;
        }
        let uri = if prefix.is_empty() {
            node.default_namespace().unwrap_or("")
        } else {
            bound(node, prefix).ok_or(C14nError::UnboundPrefix)?
        };
        let in_effect = rendered.iter().find(|(p, _)| *p == prefix).map(|(_, u)| *u);
        let needed = match in_effect {
            Some(current) => current != uri,
            None => !uri.is_empty(),
        };
        if needed {
            declarations.push((prefix, uri));
            rendered.retain(|(p, _)| *p != prefix);
            rendered.push((prefix, uri));
        }
    }
    declarations.sort_unstable();

    out.push('<');
    out.push_str(qname);
    for (prefix, uri) in &declarations {
        out.push_str(if prefix.is_empty() {
            " xmlns"
        } else {
            " xmlns:"
        });
        out.push_str(prefix);
        out.push_str("=\"");
        escape_attribute(uri, out);
        out.push('"');
    }
    let mut attributes = attributes;
    attributes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, _, qname, value) in attributes {
        out.push(' ');
        out.push_str(qname);
        out.push_str("=\"");
        escape_attribute(value, out);
        out.push('"');
    }
    out.push('>');
    for child in node.children() {
        if Some(child.id()) == omit {
            continue;
        }
        match child.node_type() {
            NodeType::Element => write_element(child, omit, inclusive, &rendered, out)?,
            NodeType::Text => escape_text(child.text().unwrap_or(""), out),
            NodeType::PI => {
                if let Some(pi) = child.pi() {
                    out.push_str("<?");
                    out.push_str(pi.target);
                    if let Some(value) = pi.value {
                        out.push(' ');
                        out.push_str(value);
                    }
                    out.push_str("?>");
                }
            }
            NodeType::Comment | NodeType::Root => {}
        }
    }
    out.push_str("</");
    out.push_str(qname);
    out.push('>');
    Ok(())
}

/// The namespace bound to a (non-empty) prefix on `node`.
fn bound<'a>(node: Node<'a, '_>, prefix: &str) -> Option<&'a str> {
    if prefix == "xml" {
        return Some(XML_NAMESPACE);
    }
    node.namespaces()
        .find(|ns| ns.name() == Some(prefix))
        .map(|ns| ns.uri())
}

fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map_or("", |(prefix, _)| prefix)
}

/// The element's qualified name as written (`saml:Assertion`), read from the input.
fn element_qname<'i>(node: Node<'_, 'i>) -> Result<&'i str, C14nError> {
    let text = node.document().input_text();
    let start = node.range().start;
    let rest = text
        .get(start..)
        .and_then(|t| t.strip_prefix('<'))
        .ok_or(C14nError::Name)?;
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .ok_or(C14nError::Name)?;
    let qname = &rest[..end];
    let local = qname.rsplit(':').next().unwrap_or(qname);
    if local != node.tag_name().name() {
        return Err(C14nError::Name);
    }
    Ok(qname)
}

/// An attribute's qualified name as written, read from the input.
fn attribute_qname<'i>(
    node: Node<'_, 'i>,
    attr: &roxmltree::Attribute<'_, 'i>,
) -> Result<&'i str, C14nError> {
    let qname = node
        .document()
        .input_text()
        .get(attr.range_qname())
        .ok_or(C14nError::Name)?;
    let local = qname.rsplit(':').next().unwrap_or(qname);
    if local != attr.name() {
        return Err(C14nError::Name);
    }
    Ok(qname)
}

fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attribute(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(xml: &str, inclusive: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let root = doc.root_element().first_element_child().unwrap();
        exclusive(root, None, inclusive).unwrap()
    }

    #[test]
    fn renders_only_visibly_used_namespaces_once() {
        let xml = r#"<r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d"><a:x b:k="1" z="2"><a:y/><c/></a:x></r>"#;
        assert_eq!(
            canon(xml, &[]),
            r#"<a:x xmlns:a="urn:a" xmlns:b="urn:b" z="2" b:k="1"><a:y></a:y><c xmlns="urn:d"></c></a:x>"#
        );
    }

    #[test]
    fn inclusive_prefixes_are_rendered_when_in_scope() {
        let xml = r#"<r xmlns:xs="urn:xs" xmlns:a="urn:a"><a:x/></r>"#;
        assert_eq!(
            canon(xml, &["xs", "nope"]),
            r#"<a:x xmlns:a="urn:a" xmlns:xs="urn:xs"></a:x>"#
        );
    }

    #[test]
    fn escapes_text_and_attributes_and_drops_comments() {
        let xml = "<r><x v=\"a&amp;&lt;&quot;&#9;&#10;\">1 &lt; 2 &amp;&gt; 3<!-- c --><![CDATA[<&>]]></x></r>";
        assert_eq!(
            canon(xml, &[]),
            "<x v=\"a&amp;&lt;&quot;&#x9;&#xA;\">1 &lt; 2 &amp;&gt; 3&lt;&amp;&gt;</x>"
        );
    }

    #[test]
    fn undeclares_the_default_namespace_only_when_it_was_rendered() {
        let xml = r#"<r xmlns="urn:d"><x><y xmlns=""/></x></r>"#;
        assert_eq!(canon(xml, &[]), r#"<x xmlns="urn:d"><y xmlns=""></y></x>"#);
        let plain = r#"<r><x><y xmlns=""/></x></r>"#;
        assert_eq!(canon(plain, &[]), "<x><y></y></x>");
    }

    #[test]
    fn omits_the_given_subtree() {
        let xml = r#"<r><x><s>sig</s><k/></x></r>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let x = doc.root_element().first_element_child().unwrap();
        let s = x.first_element_child().unwrap();
        assert_eq!(exclusive(x, Some(s.id()), &[]).unwrap(), "<x><k></k></x>");
    }
}
