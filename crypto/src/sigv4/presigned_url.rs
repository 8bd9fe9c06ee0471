//! Parsing of presigned-URL query parameters (`X-Amz-Algorithm`, `X-Amz-Credential`, ...).

use time::OffsetDateTime;

use super::authorization::{parse_credential, parse_signed_headers, AuthVia};
use super::query_string::QueryString;
use super::signature::{parse_amz_date, parse_signature, CredentialScope, ALGORITHM};
use super::{AuthError, AuthErrorCode};
use crate::ids::AccessKeyId;

pub(crate) const X_AMZ_ALGORITHM: &str = "X-Amz-Algorithm";
pub(crate) const X_AMZ_CREDENTIAL: &str = "X-Amz-Credential";
pub(crate) const X_AMZ_DATE: &str = "X-Amz-Date";
pub(crate) const X_AMZ_EXPIRES: &str = "X-Amz-Expires";
pub(crate) const X_AMZ_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
pub(crate) const X_AMZ_SIGNATURE: &str = "X-Amz-Signature";

/// A presigned URL is valid for at most a week.
pub(crate) const MAX_EXPIRES_SECS: u32 = 604_800;

/// The auth parameters of a presigned URL.
#[derive(Debug)]
pub(crate) struct QueryAuth {
    pub access_key: AccessKeyId,
    pub scope: CredentialScope,
    pub date: OffsetDateTime,
    pub expires_secs: u32,
    pub signed_headers: Vec<String>,
    pub signature: [u8; 32],
}

fn query_error(message: impl Into<String>) -> AuthError {
    AuthError::new(AuthErrorCode::AuthorizationQueryParametersError, message)
}

/// The query parameters relevant to authentication, read from the request's one decoded
/// query string.
pub(crate) struct AuthParams<'q> {
    query: &'q QueryString,
}

impl<'q> AuthParams<'q> {
    pub fn new(query: &'q QueryString) -> Self {
        Self { query }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.query.has(name)
    }

    /// SigV4 presigned parameters: any of them makes the request a presigned one.
    pub fn has_sigv4(&self) -> bool {
        [X_AMZ_ALGORITHM, X_AMZ_CREDENTIAL, X_AMZ_SIGNATURE]
            .iter()
            .any(|name| self.contains(name))
    }

    /// SigV2 presigned parameters, which Coffre does not accept.
    pub fn has_sigv2(&self) -> bool {
        self.contains("AWSAccessKeyId") && self.contains("Signature")
    }

    /// The single value of `name`; a repeated auth parameter is ambiguous and rejected.
    fn single(&self, name: &str) -> Result<Option<&'q str>, AuthError> {
        let mut values = self.query.pairs().filter(|(n, _)| *n == name);
        let first = values.next().map(|(_, v)| v);
        if values.next().is_some() {
            return Err(query_error(format!("{name} appears more than once.")));
        }
        Ok(first)
    }
}

pub(crate) fn parse_query_auth(params: &AuthParams<'_>) -> Result<QueryAuth, AuthError> {
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        params.single(X_AMZ_ALGORITHM)?,
        params.single(X_AMZ_CREDENTIAL)?,
        params.single(X_AMZ_DATE)?,
        params.single(X_AMZ_EXPIRES)?,
        params.single(X_AMZ_SIGNED_HEADERS)?,
        params.single(X_AMZ_SIGNATURE)?,
    )
    else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let date = parse_amz_date(date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires_secs = parse_expires(expires)?;
    let (access_key, scope) = parse_credential(credential, AuthVia::Query)?;
    let signed_headers = parse_signed_headers(signed_headers, AuthVia::Query)?;
    let signature = parse_signature(signature)
        .ok_or_else(|| query_error("X-Amz-Signature must be 64 hexadecimal digits."))?;
    Ok(QueryAuth {
        access_key,
        scope,
        date,
        expires_secs,
        signed_headers,
        signature,
    })
}

fn parse_expires(value: &str) -> Result<u32, AuthError> {
    let value = value.trim();
    if value.starts_with('-') && value.len() > 1 && value[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(query_error("X-Amz-Expires should be a number"));
    }
    match value.parse::<u64>() {
        Ok(secs @ 1..) if secs <= u64::from(MAX_EXPIRES_SECS) => {
            u32::try_from(secs).map_err(|_| query_error("X-Amz-Expires should be a number"))
        }
        Ok(0) => Err(query_error("X-Amz-Expires must be at least 1 second")),
        _ => Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    fn query(raw: &str) -> QueryString {
        QueryString::parse(raw).unwrap()
    }

    #[test]
    fn parses_the_aws_example() {
        let query = query(VALID);
        let params = AuthParams::new(&query);
        assert!(params.has_sigv4());
        let auth = parse_query_auth(&params).unwrap();
        assert_eq!(auth.access_key.as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(auth.expires_secs, 86400);
        assert_eq!(auth.signed_headers, ["host"]);
        assert_eq!(auth.scope.region, "us-east-1");
    }

    #[test]
    fn rejects_bad_parameters() {
        let replace = |from: &str, to: &str| VALID.replace(from, to);
        let cases = [
            replace("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
            replace("X-Amz-Expires=86400", "X-Amz-Expires=-1"),
            replace("X-Amz-Expires=86400", "X-Amz-Expires=0"),
            replace("X-Amz-Expires=86400", "X-Amz-Expires=soon"),
            replace("X-Amz-Expires=86400&", ""),
            replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
            replace("20130524T000000Z", "2013-05-24"),
            replace("X-Amz-Signature=aee", "X-Amz-Signature=zee"),
            format!("{VALID}&X-Amz-Date=20130524T000000Z"),
            replace("%2Fs3%2F", "%2Fiam%2F"),
        ];
        for query in cases {
            let err = parse_query_auth(&AuthParams::new(&self::query(&query))).unwrap_err();
            assert_eq!(
                err.code(),
                AuthErrorCode::AuthorizationQueryParametersError,
                "{query}"
            );
        }
        let week = replace("X-Amz-Expires=86400", "X-Amz-Expires=604801");
        assert_eq!(
            parse_query_auth(&AuthParams::new(&query(&week)))
                .unwrap_err()
                .message(),
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        );
    }
}
