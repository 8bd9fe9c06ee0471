//! Just enough XML reading for S3 responses: element text by tag name, element sections.
//! Deliberately independent of the server's own XML code.

/// Inner XML of every `<tag>...</tag>` (or `""` for `<tag/>`), in document order.
/// Elements of the same name must not nest (true of every S3 response element).
pub fn sections(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        // The name must end here: `<Key>` must not match `<KeyCount>`.
        let Some(end_of_tag) = after.find('>') else {
            break;
        };
        let attributes = &after[..end_of_tag];
        if !(attributes.is_empty() || attributes.starts_with(' ') || attributes.starts_with('/')) {
            rest = after;
            continue;
        }
        if attributes.ends_with('/') {
            out.push(String::new());
            rest = &after[end_of_tag + 1..];
            continue;
        }
        let body = &after[end_of_tag + 1..];
        let Some(stop) = body.find(&close) else {
            break;
        };
        out.push(body[..stop].to_string());
        rest = &body[stop + close.len()..];
    }
    out
}

/// Unescaped text of every element named `tag`.
pub fn values(xml: &str, tag: &str) -> Vec<String> {
    sections(xml, tag).iter().map(|s| unescape(s)).collect()
}

/// Unescaped text of the first element named `tag`.
pub fn first(xml: &str, tag: &str) -> Option<String> {
    values(xml, tag).into_iter().next()
}

/// Replaces the five predefined entities and numeric character references.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an XML element body.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_and_sections() {
        let xml = "<R><KeyCount>2</KeyCount><Contents><Key>a&amp;b</Key></Contents>\
                   <Contents><Key>c&#x20;d</Key></Contents><Prefix/><Owner a=\"1\"><ID>x</ID></Owner></R>";
        assert_eq!(values(xml, "Key"), vec!["a&b", "c d"]);
        assert_eq!(first(xml, "KeyCount").as_deref(), Some("2"));
        assert_eq!(sections(xml, "Contents").len(), 2);
        assert_eq!(values(xml, "Prefix"), vec![""]);
        assert_eq!(first(xml, "ID").as_deref(), Some("x"));
        assert_eq!(sections(xml, "Owner"), vec!["<ID>x</ID>"]);
    }
}
