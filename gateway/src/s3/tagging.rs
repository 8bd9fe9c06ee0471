//! Object tag sets: S3's limits on them, the `x-amz-tagging` header (a URL query string:
//! `k1=v1&k2=v2`) and the `Tagging` document of PutObjectTagging and GetObjectTagging.
//!
//! A validated tag set is sorted by key, as S3 gives it back, with unique keys.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::{S3Error, S3ErrorCode};
use super::xml::{XmlElement, XmlWriter};

/// Tags per object, at most.
pub const MAX_OBJECT_TAGS: usize = 10;
/// A key's length at most, in UTF-16 code units (S3 counts tags in UTF-16).
pub const MAX_KEY_LENGTH: usize = 128;
/// A value's length at most, in UTF-16 code units.
pub const MAX_VALUE_LENGTH: usize = 256;

/// (key, value) pairs, sorted by key.
pub type TagSet = Vec<(String, String)>;

/// The tag set of an `x-amz-tagging` header. A key without `=` has the empty value.
pub fn parse_header(value: &[u8]) -> Result<TagSet, S3Error> {
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query \
             parameters without tag name duplicates.",
        )
    };
    let value = std::str::from_utf8(value).map_err(|_| invalid())?;
    let decode = |s: &str| -> Result<String, S3Error> {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| invalid())
    };
    let mut tags = Vec::new();
    for pair in value.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if value.contains('=') {
            return Err(invalid());
        }
        let key = decode(key)?;
        if tags.iter().any(|(k, _)| *k == key) {
            return Err(invalid());
        }
        tags.push((key, decode(value)?));
    }
    validate(tags)
}

/// The tag set of a `Tagging` document; an empty `TagSet` is an empty tag set.
pub fn parse_document(root: &XmlElement) -> Result<TagSet, S3Error> {
    let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
    if root.name != "Tagging" {
        return Err(malformed());
    }
    let mut sets = root.children_named("TagSet");
    let set = sets.next().ok_or_else(malformed)?;
    if sets.next().is_some() || root.children.iter().any(|c| c.name != "TagSet") {
        return Err(malformed());
    }
    let mut tags: TagSet = Vec::new();
    for tag in &set.children {
        let only = |name: &str| -> Result<String, S3Error> {
            let mut found = tag.children_named(name);
            match (found.next(), found.next()) {
                (Some(element), None) => Ok(element.text.clone()),
                _ => Err(malformed()),
            }
        };
        if tag.name != "Tag" || tag.children.len() != 2 {
            return Err(malformed());
        }
        let (key, value) = (only("Key")?, only("Value")?);
        if tags.iter().any(|(k, _)| *k == key) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidTag,
                "Cannot provide multiple Tags with the same key",
            )
            .detail("TagKey", key));
        }
        tags.push((key, value));
    }
    validate(tags)
}

/// Checks S3's limits on an object's tag set and sorts it by key.
pub fn validate(mut tags: TagSet) -> Result<TagSet, S3Error> {
    if tags.len() > MAX_OBJECT_TAGS {
        // AWS answers this one BadRequest, not InvalidTag.
        return Err(S3Error::with_message(
            S3ErrorCode::BadRequest,
            "Object tags cannot be greater than 10",
        ));
    }
    let invalid = |message: String, key: &str| {
        S3Error::with_message(S3ErrorCode::InvalidTag, message).detail("TagKey", key)
    };
    for (key, value) in &tags {
        if key.encode_utf16().count() > MAX_KEY_LENGTH {
            return Err(invalid(
                format!("The TagKey you have provided is too long, max {MAX_KEY_LENGTH}"),
                key,
            ));
        }
        if key.is_empty() || !key.chars().all(allowed) {
            return Err(invalid(
                "The TagKey you have provided is invalid".into(),
                key,
            ));
        }
        if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(invalid(
                "Your TagKey cannot be prefixed with aws:".into(),
                key,
            ));
        }
        if value.encode_utf16().count() > MAX_VALUE_LENGTH {
            return Err(invalid(
                format!("The TagValue you have provided is too long, max {MAX_VALUE_LENGTH}"),
                key,
            ));
        }
        if !value.chars().all(allowed) {
            return Err(invalid(
                "The TagValue you have provided is invalid".into(),
                key,
            ));
        }
    }
    tags.sort();
    Ok(tags)
}

/// What S3 allows in tag keys and values: `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
fn allowed(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

/// The tags of a CopyObject's new object: the source's (`x-amz-tagging-directive: COPY`,
/// the default) or those of `x-amz-tagging` (`REPLACE`).
pub fn for_copy(headers: &http::HeaderMap, source: &[(String, String)]) -> Result<TagSet, S3Error> {
    match headers.get("x-amz-tagging-directive").map(|v| v.as_bytes()) {
        None | Some(b"COPY") => Ok(source.to_vec()),
        Some(b"REPLACE") => match headers.get("x-amz-tagging") {
            Some(value) => parse_header(value.as_bytes()),
            None => Ok(Vec::new()),
        },
        Some(other) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!(
                "Unknown tagging directive: {}",
                String::from_utf8_lossy(other)
            ),
        )),
    }
}

/// The GetObjectTagging response.
pub fn document(tags: &[(String, String)]) -> String {
    let mut w = XmlWriter::new();
    w.open_root("Tagging");
    w.open("TagSet");
    for (key, value) in tags {
        w.open("Tag");
        w.element("Key", key);
        w.element("Value", value);
        w.close("Tag");
    }
    w.close("TagSet");
    w.close("Tagging");
    w.finish()
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `x-amz-tagging` header value of a tag set.
pub fn header_value(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, QUERY_VALUE),
                utf8_percent_encode(v, QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::xml;

    fn pairs(list: &[(&str, &str)]) -> TagSet {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn code<T>(result: Result<T, S3Error>) -> Option<S3ErrorCode> {
        result.err().map(|e| e.code())
    }

    #[test]
    fn headers_decode_and_sort() {
        let tags =
            parse_header(b"foo=bar&bar&a%20b=c+d%2Be&empty=").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            tags,
            pairs(&[("a b", "c d+e"), ("bar", ""), ("empty", ""), ("foo", "bar")])
        );
        assert_eq!(parse_header(b"").ok(), Some(Vec::new()));
        assert_eq!(
            parse_header("k=%C3%A9t%C3%A9".as_bytes()).ok(),
            Some(pairs(&[("k", "été")]))
        );
    }

    #[test]
    fn malformed_headers_are_invalid_arguments() {
        for bad in [
            &b"a=1&a=2"[..],
            b"TagSet=[{Key=string,Value=string}]",
            b"k=%FF",
            b"\xff=1",
        ] {
            assert_eq!(
                code(parse_header(bad)),
                Some(S3ErrorCode::InvalidArgument),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_are_enforced_with_aws_codes() {
        let ten: TagSet = (0..10).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(validate(ten.clone()).is_ok());
        let mut eleven = ten;
        eleven.push(("k10".into(), "v".into()));
        assert_eq!(code(validate(eleven)), Some(S3ErrorCode::BadRequest));

        let key = |len: usize| "k".repeat(len);
        assert!(validate(pairs(&[(&key(128), &"v".repeat(256))])).is_ok());
        assert_eq!(
            code(validate(pairs(&[(&key(129), "v")]))),
            Some(S3ErrorCode::InvalidTag)
        );
        assert_eq!(
            code(validate(pairs(&[("k", &"v".repeat(257))]))),
            Some(S3ErrorCode::InvalidTag)
        );
        // Counted in UTF-16: a character outside the BMP takes two.
        assert!(validate(pairs(&[(&"é".repeat(128), "v")])).is_ok());
        assert_eq!(
            code(validate(pairs(&[(&"😀".repeat(65), "v")]))),
            Some(S3ErrorCode::InvalidTag)
        );
        for bad in [
            ("", "v"),
            ("a,b", "v"),
            ("k", "v!"),
            ("aws:x", "v"),
            ("AWS:x", "v"),
            ("é!", ""),
        ] {
            assert_eq!(
                code(validate(pairs(&[bad]))),
                Some(S3ErrorCode::InvalidTag),
                "{bad:?}"
            );
        }
        assert!(validate(pairs(&[("a b_.:/=+-@", "Été 2024")])).is_ok());
    }

    #[test]
    fn copies_keep_or_replace_the_source_tags() {
        let source = pairs(&[("from", "source")]);
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-tagging", http::HeaderValue::from_static("new=1"));
        assert_eq!(for_copy(&h, &source).ok(), Some(source.clone()));
        h.insert(
            "x-amz-tagging-directive",
            http::HeaderValue::from_static("REPLACE"),
        );
        assert_eq!(for_copy(&h, &source).ok(), Some(pairs(&[("new", "1")])));
        h.remove("x-amz-tagging");
        assert_eq!(for_copy(&h, &source).ok(), Some(Vec::new()));
        h.insert(
            "x-amz-tagging-directive",
            http::HeaderValue::from_static("MERGE"),
        );
        assert_eq!(
            code(for_copy(&h, &source)),
            Some(S3ErrorCode::InvalidArgument)
        );
    }

    #[test]
    fn documents_parse_and_round_trip() {
        let body = br#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>
            <Tag><Key>z</Key><Value>last</Value></Tag>
            <Tag><Value></Value><Key>a &amp; b</Key></Tag>
        </TagSet></Tagging>"#;
        let root = xml::parse(body).unwrap_or_else(|e| panic!("{e}"));
        let tags = parse_document(&root);
        assert_eq!(
            code(tags),
            Some(S3ErrorCode::InvalidTag),
            "& is not allowed"
        );

        let body = br#"<Tagging><TagSet><Tag><Key>z</Key><Value>last</Value></Tag><Tag><Key>a b</Key><Value/></Tag></TagSet></Tagging>"#;
        let root = xml::parse(body).unwrap_or_else(|e| panic!("{e}"));
        let tags = parse_document(&root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tags, pairs(&[("a b", ""), ("z", "last")]));
        let again = xml::parse(document(&tags).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parse_document(&again).ok(), Some(tags.clone()));
        assert_eq!(
            parse_header(header_value(&tags).as_bytes()).ok(),
            Some(tags)
        );

        let empty = xml::parse(b"<Tagging><TagSet/></Tagging>").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parse_document(&empty).ok(), Some(Vec::new()));
    }

    #[test]
    fn malformed_documents() {
        for body in [
            &b"<Other><TagSet/></Other>"[..],
            b"<Tagging/>",
            b"<Tagging><TagSet/><TagSet/></Tagging>",
            b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
            b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value><Value>w</Value></Tag></TagSet></Tagging>",
            b"<Tagging><TagSet><Other><Key>k</Key><Value>v</Value></Other></TagSet></Tagging>",
        ] {
            let root = xml::parse(body).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(code(parse_document(&root)), Some(S3ErrorCode::MalformedXML), "{body:?}");
        }
        let dup = xml::parse(
            b"<Tagging><TagSet><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></TagSet></Tagging>",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code(parse_document(&dup)), Some(S3ErrorCode::InvalidTag));
    }
}
