//! The parts of a ListObjectsV2 response the load generator needs: keys, common prefixes and
//! the continuation token. A tag scanner is enough for this well-formed, flat XML.

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
}

impl ListPage {
    pub fn parse(xml: &str) -> Self {
        let keys = blocks(xml, "Contents")
            .filter_map(|contents| blocks(contents, "Key").next())
            .map(unescape)
            .collect();
        let common_prefixes = blocks(xml, "CommonPrefixes")
            .filter_map(|prefix| blocks(prefix, "Prefix").next())
            .map(unescape)
            .collect();
        let is_truncated = blocks(xml, "IsTruncated")
            .next()
            .is_some_and(|value| value.trim() == "true");
        let next_continuation_token = blocks(xml, "NextContinuationToken")
            .next()
            .map(unescape)
            .filter(|token| !token.is_empty());
        Self {
            keys,
            common_prefixes,
            is_truncated,
            next_continuation_token,
        }
    }
}

/// The text between each `<tag>` and the following `</tag>`, in document order.
fn blocks<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let len = rest[start..].find(&close)?;
        let inner = &rest[start..start + len];
        rest = &rest[start + len + close.len()..];
        Some(inner)
    })
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::ListPage;

    #[test]
    fn reads_keys_prefixes_and_token() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>b</Name><Prefix>list/</Prefix><KeyCount>3</KeyCount>
<IsTruncated>true</IsTruncated><NextContinuationToken>a+b/c=</NextContinuationToken>
<Contents><Key>list/a&amp;b</Key><Size>0</Size></Contents>
<Contents><Key>list/c&#x3c;</Key></Contents>
<CommonPrefixes><Prefix>list/0001/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let page = ListPage::parse(xml);
        assert_eq!(page.keys, ["list/a&b", "list/c<"]);
        assert_eq!(page.common_prefixes, ["list/0001/"]);
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("a+b/c="));
    }

    #[test]
    fn last_page_has_no_token() {
        let page = ListPage::parse(
            "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
        );
        assert!(!page.is_truncated);
        assert_eq!(page.next_continuation_token, None);
    }
}
