//! Bucket CORS: the `CORSConfiguration` document (validated as S3 validates it, and written
//! back), matching a request against the rules, and the headers a matching rule puts on a
//! preflight or an actual response.

use coffre_storage::CorsRule;
use http::{HeaderMap, HeaderValue};

use super::error::{S3Error, S3ErrorCode};
use super::xml::{XmlElement, XmlWriter};

/// Rules per configuration, at most.
pub const MAX_RULES: usize = 100;
/// The largest configuration document S3 accepts.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];
const MAX_ID_CHARS: usize = 255;

/// The rules of a PutBucketCors body, in order.
pub fn parse_configuration(root: &XmlElement) -> Result<Vec<CorsRule>, S3Error> {
    let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
    if root.name != "CORSConfiguration" || root.children.iter().any(|c| c.name != "CORSRule") {
        return Err(malformed());
    }
    if root.children.is_empty() || root.children.len() > MAX_RULES {
        return Err(malformed());
    }
    root.children.iter().map(parse_rule).collect()
}

fn parse_rule(element: &XmlElement) -> Result<CorsRule, S3Error> {
    let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
    let invalid = |message: String| S3Error::with_message(S3ErrorCode::InvalidRequest, message);
    let mut rule = CorsRule::default();
    for child in &element.children {
        let text = child.text.clone();
        match child.name.as_str() {
            "ID" if rule.id.is_none() && text.chars().count() <= MAX_ID_CHARS => {
                rule.id = Some(text)
            }
            "AllowedOrigin" => {
                if text.matches('*').count() > 1 {
                    return Err(invalid(format!(
                        "AllowedOrigin \"{text}\" can not have more than one wildcard."
                    )));
                }
                rule.allowed_origins.push(text);
            }
            "AllowedMethod" => {
                if !METHODS.contains(&text.as_str()) {
                    return Err(invalid(format!(
                        "Found unsupported HTTP method in CORS config. Unsupported method is \
                         {text}"
                    )));
                }
                rule.allowed_methods.push(text);
            }
            "AllowedHeader" => {
                if text.matches('*').count() > 1 {
                    return Err(invalid(format!(
                        "AllowedHeader \"{text}\" can not have more than one wildcard."
                    )));
                }
                rule.allowed_headers.push(text);
            }
            "ExposeHeader" => {
                if text.contains('*') {
                    return Err(invalid(format!(
                        "ExposeHeader \"{text}\" contains wildcard. We currently do not support \
                         wildcard for ExposeHeader."
                    )));
                }
                if HeaderValue::from_str(&text).is_err() {
                    return Err(malformed());
                }
                rule.expose_headers.push(text);
            }
            "MaxAgeSeconds" if rule.max_age_seconds.is_none() => {
                rule.max_age_seconds = Some(text.trim().parse().map_err(|_| malformed())?);
            }
            _ => return Err(malformed()),
        }
    }
    if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
        return Err(malformed());
    }
    Ok(rule)
}

/// The GetBucketCors response.
pub fn configuration_document(rules: &[CorsRule]) -> String {
    let mut w = XmlWriter::new();
    w.open_root("CORSConfiguration");
    for rule in rules {
        w.open("CORSRule");
        if let Some(id) = &rule.id {
            w.element("ID", id);
        }
        for origin in &rule.allowed_origins {
            w.element("AllowedOrigin", origin);
        }
        for method in &rule.allowed_methods {
            w.element("AllowedMethod", method);
        }
        for header in &rule.allowed_headers {
            w.element("AllowedHeader", header);
        }
        for header in &rule.expose_headers {
            w.element("ExposeHeader", header);
        }
        if let Some(age) = rule.max_age_seconds {
            w.element_display("MaxAgeSeconds", age);
        }
        w.close("CORSRule");
    }
    w.close("CORSConfiguration");
    w.finish()
}

/// What a browser asks for: from the preflight's `Access-Control-Request-*` headers, or
/// from the actual request itself (whose headers are not checked, as on S3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRequest<'a> {
    pub origin: &'a str,
    pub method: &'a str,
    /// Lowercase header names.
    pub headers: Vec<String>,
}

/// The rule that allows `request`, and whether it allowed it only as any origin (`*`): the
/// first rule, in order, whose origins, methods and headers all admit it, as S3 evaluates a
/// bucket's rules. Within that rule, an origin listed by name (or by a pattern such as
/// `https://*.example.com`) wins over `*`: the origin is echoed, with credentials allowed.
pub fn matching_rule<'r>(
    rules: &'r [CorsRule],
    request: &CorsRequest<'_>,
) -> Option<(&'r CorsRule, bool)> {
    rules
        .iter()
        .find_map(|rule| admits(rule, request).map(|any_origin| (rule, any_origin)))
}

/// The rule that answers an unauthenticated preflight, from the rules that every tenant
/// with a bucket of that name published (their union, in no meaningful order): the first
/// rule that admits the request by its origin's name, else the first that admits it as any
/// origin (`*`). One tenant's `*` rule does not hide another tenant's rule for the origin;
/// the actual, signed request still gets its headers from its own bucket's rules only.
pub fn preflight_rule<'r>(
    rules: &'r [CorsRule],
    request: &CorsRequest<'_>,
) -> Option<(&'r CorsRule, bool)> {
    let admitted = || {
        rules
            .iter()
            .filter_map(|rule| admits(rule, request).map(|any_origin| (rule, any_origin)))
    };
    admitted()
        .find(|(_, any_origin)| !any_origin)
        .or_else(|| admitted().next())
}

/// `Some(any_origin)` when `rule` admits `request`: `any_origin` is true when only `*` among
/// its origins matched.
fn admits(rule: &CorsRule, request: &CorsRequest<'_>) -> Option<bool> {
    let named = rule
        .allowed_origins
        .iter()
        .any(|pattern| pattern != "*" && wildcard_match(pattern, request.origin));
    let any = rule.allowed_origins.iter().any(|pattern| pattern == "*");
    let method = rule.allowed_methods.iter().any(|m| m == request.method);
    let headers = request.headers.iter().all(|header| {
        rule.allowed_headers
            .iter()
            .any(|pattern| wildcard_match(&pattern.to_ascii_lowercase(), header))
    });
    ((named || any) && method && headers).then_some(!named)
}

/// `pattern` with at most one `*` standing for any run of characters.
fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len()
                && value.starts_with(prefix)
                && value.ends_with(suffix)
        }
    }
}

/// `Access-Control-Request-Headers` as lowercase names.
pub fn requested_headers(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

/// The headers of a successful preflight answered by `rule`.
pub fn write_preflight_headers(
    rule: &CorsRule,
    any_origin: bool,
    request: &CorsRequest<'_>,
    out: &mut HeaderMap,
) {
    write_common_headers(rule, any_origin, request.origin, out);
    if !request.headers.is_empty() {
        set(
            out,
            "access-control-allow-headers",
            &request.headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        out.insert("access-control-max-age", HeaderValue::from(age));
    }
    out.append(
        http::header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    );
}

/// The headers an actual (authenticated) response gets when `rule` allows its request.
pub fn write_response_headers(
    rule: &CorsRule,
    any_origin: bool,
    origin: &str,
    out: &mut HeaderMap,
) {
    write_common_headers(rule, any_origin, origin, out);
    out.append(http::header::VARY, HeaderValue::from_static("Origin"));
}

/// Adds the headers of the first of `rules` allowing an actual `method` request with the
/// `Origin` of `request`; nothing without an `Origin` or a matching rule.
pub fn add_actual_response_headers(
    rules: &[CorsRule],
    request: &HeaderMap,
    method: &str,
    out: &mut HeaderMap,
) {
    let Some(origin) = request.get("origin").and_then(|v| v.to_str().ok()) else {
        return;
    };
    let actual = CorsRequest {
        origin,
        method,
        headers: Vec::new(),
    };
    if let Some((rule, any_origin)) = matching_rule(rules, &actual) {
        write_response_headers(rule, any_origin, origin, out);
    }
}

fn write_common_headers(rule: &CorsRule, any_origin: bool, origin: &str, out: &mut HeaderMap) {
    if any_origin {
        out.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    } else {
        set(out, "access-control-allow-origin", origin);
        out.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
    set(
        out,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        set(
            out,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
}

fn set(out: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        out.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::xml;

    fn parse(body: &str) -> Result<Vec<CorsRule>, S3ErrorCode> {
        let root = xml::parse(body.as_bytes()).map_err(|e| e.code())?;
        parse_configuration(&root).map_err(|e| e.code())
    }

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        CorsRule {
            allowed_origins: owned(origins),
            allowed_methods: owned(methods),
            allowed_headers: owned(headers),
            ..CorsRule::default()
        }
    }

    fn request<'a>(origin: &'a str, method: &'a str, headers: &[&str]) -> CorsRequest<'a> {
        CorsRequest {
            origin,
            method,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        }
    }

    #[test]
    fn configurations_parse_and_round_trip() {
        let body = r#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <CORSRule><ID>web</ID><AllowedOrigin>https://*.example.com</AllowedOrigin>
            <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
            <AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>
            <MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>
          <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
        </CORSConfiguration>"#;
        let rules = parse(body).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].id.as_deref(), Some("web"));
        assert_eq!(rules[0].allowed_methods, ["GET", "PUT"]);
        assert_eq!(rules[0].max_age_seconds, Some(3000));
        assert_eq!(parse(&configuration_document(&rules)), Ok(rules));
    }

    #[test]
    fn invalid_configurations_get_aws_codes() {
        let one = |inner: &str| {
            format!("<CORSConfiguration><CORSRule>{inner}</CORSRule></CORSConfiguration>")
        };
        let origin = "<AllowedOrigin>*</AllowedOrigin>";
        let method = "<AllowedMethod>GET</AllowedMethod>";
        for (body, code) in [
            ("<CORSConfiguration/>".to_owned(), S3ErrorCode::MalformedXML),
            (
                "<Other><CORSRule/></Other>".to_owned(),
                S3ErrorCode::MalformedXML,
            ),
            (one(origin), S3ErrorCode::MalformedXML),
            (one(method), S3ErrorCode::MalformedXML),
            (
                one(&format!("{origin}{method}<Bogus/>")),
                S3ErrorCode::MalformedXML,
            ),
            (
                one(&format!("{origin}{method}<MaxAgeSeconds>x</MaxAgeSeconds>")),
                S3ErrorCode::MalformedXML,
            ),
            (
                one(&format!("{origin}<AllowedMethod>PATCH</AllowedMethod>")),
                S3ErrorCode::InvalidRequest,
            ),
            (
                one(&format!("{origin}<AllowedMethod>get</AllowedMethod>")),
                S3ErrorCode::InvalidRequest,
            ),
            (
                one(&format!(
                    "<AllowedOrigin>https://*.*.com</AllowedOrigin>{method}"
                )),
                S3ErrorCode::InvalidRequest,
            ),
            (
                one(&format!(
                    "{origin}{method}<AllowedHeader>x-*-*</AllowedHeader>"
                )),
                S3ErrorCode::InvalidRequest,
            ),
            (
                one(&format!("{origin}{method}<ExposeHeader>x-*</ExposeHeader>")),
                S3ErrorCode::InvalidRequest,
            ),
        ] {
            assert_eq!(parse(&body).err(), Some(code), "{body}");
        }
        let rule = format!("<CORSRule>{origin}{method}</CORSRule>");
        let hundred = format!(
            "<CORSConfiguration>{}</CORSConfiguration>",
            rule.repeat(100)
        );
        assert!(parse(&hundred).is_ok());
        let too_many = format!(
            "<CORSConfiguration>{}</CORSConfiguration>",
            rule.repeat(101)
        );
        assert_eq!(parse(&too_many).err(), Some(S3ErrorCode::MalformedXML));
    }

    #[test]
    fn r12_a_named_origin_wins_over_any_origin() {
        let origin = "https://app.example.com";
        // Within a rule: the named origin is echoed, whatever the order of the list.
        for origins in [["*", origin], [origin, "*"]] {
            let rules = vec![rule(&origins, &["GET"], &[])];
            let (_, any) = matching_rule(&rules, &request(origin, "GET", &[]))
                .unwrap_or_else(|| panic!("no rule"));
            assert!(!any, "{origins:?}");
            let (_, any) = matching_rule(&rules, &request("https://other.example", "GET", &[]))
                .unwrap_or_else(|| panic!("no rule"));
            assert!(any);
        }
        // Across rules: S3's order for a bucket's own rules; a named origin first for the
        // union a preflight is answered from.
        let rules = vec![
            rule(&["*"], &["GET"], &[]),
            rule(&[origin], &["GET", "PUT"], &["content-type"]),
        ];
        let position = |found: Option<(&CorsRule, bool)>| {
            found.map(|(r, any)| (rules.iter().position(|x| x == r), any))
        };
        let get = request(origin, "GET", &[]);
        assert_eq!(position(matching_rule(&rules, &get)), Some((Some(0), true)));
        assert_eq!(
            position(preflight_rule(&rules, &get)),
            Some((Some(1), false))
        );
        let other = request("https://other.example", "GET", &[]);
        assert_eq!(
            position(preflight_rule(&rules, &other)),
            Some((Some(0), true))
        );
        let put = request(origin, "PUT", &["content-type"]);
        assert_eq!(
            position(preflight_rule(&rules, &put)),
            Some((Some(1), false))
        );
        let delete = request(origin, "DELETE", &[]);
        assert_eq!(preflight_rule(&rules, &delete), None);
    }

    #[test]
    fn rules_match_origin_method_and_every_header() {
        let rules = vec![
            rule(
                &["https://app.example.com"],
                &["PUT"],
                &["content-type", "x-amz-*"],
            ),
            rule(&["https://*.example.com"], &["GET", "HEAD"], &[]),
            rule(&["*"], &["GET"], &["*"]),
        ];
        let first = |r: &CorsRequest<'_>| {
            matching_rule(&rules, r).map(|(rule, any)| (rules.iter().position(|x| x == rule), any))
        };
        assert_eq!(
            first(&request(
                "https://app.example.com",
                "PUT",
                &["content-type", "x-amz-date"]
            )),
            Some((Some(0), false))
        );
        // A header the rule does not allow: no rule takes PUT.
        assert_eq!(
            first(&request(
                "https://app.example.com",
                "PUT",
                &["authorization"]
            )),
            None
        );
        assert_eq!(
            first(&request("https://cdn.example.com", "HEAD", &[])),
            Some((Some(1), false))
        );
        assert_eq!(first(&request("https://example.com", "HEAD", &[])), None);
        assert_eq!(
            first(&request("https://other.org", "GET", &["x-anything"])),
            Some((Some(2), true))
        );
        assert_eq!(first(&request("https://other.org", "DELETE", &[])), None);
        assert_eq!(matching_rule(&[], &request("https://a", "GET", &[])), None);
    }

    #[test]
    fn actual_responses_need_an_origin_and_a_rule_for_their_method() {
        let rules = vec![rule(&["https://a.example"], &["POST"], &[])];
        let mut request = HeaderMap::new();
        let mut out = HeaderMap::new();
        add_actual_response_headers(&rules, &request, "POST", &mut out);
        assert!(out.is_empty(), "no Origin");
        request.insert("origin", HeaderValue::from_static("https://a.example"));
        add_actual_response_headers(&rules, &request, "GET", &mut out);
        assert!(out.is_empty(), "GET is not allowed");
        add_actual_response_headers(&rules, &request, "POST", &mut out);
        assert_eq!(
            out.get("access-control-allow-origin").map(|v| v.as_bytes()),
            Some(&b"https://a.example"[..])
        );
        assert_eq!(out.get("vary").map(|v| v.as_bytes()), Some(&b"Origin"[..]));
    }

    #[test]
    fn wildcards_stand_for_any_run_once() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("https://*.a.com", "https://x.y.a.com"));
        assert!(!wildcard_match("https://*.a.com", "https://a.com"));
        assert!(wildcard_match("x-amz-*", "x-amz-"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "Exact"));
    }

    #[test]
    fn preflight_headers_name_the_rule() {
        let mut r = rule(&["https://a.example"], &["GET", "PUT"], &["*"]);
        r.expose_headers = vec!["ETag".into(), "x-amz-request-id".into()];
        r.max_age_seconds = Some(600);
        let req = request("https://a.example", "PUT", &["content-type", "x-amz-date"]);
        let mut out = HeaderMap::new();
        write_preflight_headers(&r, false, &req, &mut out);
        let get = |name: &str| {
            out.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            get("access-control-allow-origin").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            get("access-control-allow-methods").as_deref(),
            Some("GET, PUT")
        );
        assert_eq!(
            get("access-control-allow-headers").as_deref(),
            Some("content-type, x-amz-date")
        );
        assert_eq!(
            get("access-control-expose-headers").as_deref(),
            Some("ETag, x-amz-request-id")
        );
        assert_eq!(get("access-control-max-age").as_deref(), Some("600"));
        assert_eq!(
            get("access-control-allow-credentials").as_deref(),
            Some("true")
        );
        assert!(get("vary").is_some_and(|v| v.starts_with("Origin")));

        let mut out = HeaderMap::new();
        write_response_headers(&r, true, "https://a.example", &mut out);
        assert_eq!(
            out.get("access-control-allow-origin").map(|v| v.as_bytes()),
            Some(&b"*"[..])
        );
        assert!(out.get("access-control-allow-credentials").is_none());
        assert!(out.get("access-control-max-age").is_none());
        assert_eq!(
            requested_headers(Some(" Content-Type ,X-Amz-Date,")),
            ["content-type", "x-amz-date"]
        );
    }
}
