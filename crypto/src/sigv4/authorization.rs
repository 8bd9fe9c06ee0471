//! Parsing of the `Authorization: AWS4-HMAC-SHA256 ...` header and of the credential scope,
//! which presigned URLs share.

use super::signature::{parse_signature, CredentialScope, ALGORITHM};
use super::{AuthError, AuthErrorCode};
use crate::ids::AccessKeyId;

/// Where the auth parameters came from; decides the S3 error code and message prefix of
/// malformed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthVia {
    Header,
    Query,
}

impl AuthVia {
    pub fn code(self) -> AuthErrorCode {
        match self {
            Self::Header => AuthErrorCode::AuthorizationHeaderMalformed,
            Self::Query => AuthErrorCode::AuthorizationQueryParametersError,
        }
    }

    pub fn malformed(self, detail: &str) -> AuthError {
        let prefix = match self {
            Self::Header => "The authorization header is malformed",
            Self::Query => "Error parsing the X-Amz-Credential parameter",
        };
        AuthError::new(self.code(), format!("{prefix}; {detail}"))
    }
}

pub(crate) fn invalid_access_key() -> AuthError {
    AuthError::new(
        AuthErrorCode::InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records.",
    )
}

/// Parses `AKID/YYYYMMDD/region/s3/aws4_request`. The service and terminal are checked here;
/// the date against the request date and the region against the server's by the caller.
pub(crate) fn parse_credential(
    value: &str,
    via: AuthVia,
) -> Result<(AccessKeyId, CredentialScope), AuthError> {
    let parts: Vec<&str> = value.trim().split('/').collect();
    let [akid, date, region, service, terminal] = parts.as_slice() else {
        return Err(via.malformed(
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        ));
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || region.is_empty() {
        return Err(via.malformed(
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        ));
    }
    if *service != super::signature::SERVICE {
        return Err(via.malformed(&format!(
            "incorrect service \"{service}\". This endpoint belongs to \"s3\"."
        )));
    }
    if *terminal != super::signature::TERMINAL {
        return Err(via.malformed(&format!(
            "incorrect terminal \"{terminal}\". This endpoint uses \"aws4_request\"."
        )));
    }
    let access_key = AccessKeyId::parse(akid).map_err(|_| invalid_access_key())?;
    Ok((
        access_key,
        CredentialScope {
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
            terminal: (*terminal).to_owned(),
        },
    ))
}

/// Parses `a;b;c` into lowercase names; empty or duplicate names are malformed.
pub(crate) fn parse_signed_headers(value: &str, via: AuthVia) -> Result<Vec<String>, AuthError> {
    let names: Vec<String> = value
        .trim()
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut seen = std::collections::HashSet::new();
    let valid = names.iter().all(|name| {
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            && seen.insert(name.as_str())
    });
    if valid {
        Ok(names)
    } else {
        Err(AuthError::new(
            via.code(),
            match via {
                AuthVia::Header => {
                    "The authorization header is malformed; SignedHeaders is invalid."
                }
                AuthVia::Query => "X-Amz-SignedHeaders is invalid.",
            },
        ))
    }
}

/// The three components of an `Authorization` header.
#[derive(Debug)]
pub(crate) struct HeaderAuth {
    pub access_key: AccessKeyId,
    pub scope: CredentialScope,
    pub signed_headers: Vec<String>,
    pub signature: [u8; 32],
}

const UNSUPPORTED: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";

/// Parses the `Authorization` header value. Components may come in any order, separated by
/// commas and/or whitespace, as SDKs differ there.
pub(crate) fn parse_authorization(value: &str) -> Result<HeaderAuth, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        let known = algorithm == "AWS" || algorithm.starts_with("AWS4-");
        return Err(if known {
            AuthError::new(AuthErrorCode::InvalidRequest, UNSUPPORTED)
        } else {
            AuthError::new(
                AuthErrorCode::InvalidArgument,
                "Unsupported Authorization Type",
            )
        });
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split([',', ' ', '\t']).filter(|c| !c.is_empty()) {
        let (key, val) = component.split_once('=').ok_or_else(|| {
            AuthVia::Header.malformed(&format!(
                "the authorization component \"{component}\" is malformed."
            ))
        })?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(AuthVia::Header.malformed(&format!(
                    "the authorization component \"{component}\" is malformed."
                )))
            }
        };
        if slot.replace(val).is_some() {
            return Err(AuthVia::Header.malformed(&format!(
                "the authorization component \"{key}\" appears more than once."
            )));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(AuthVia::Header.malformed(
            "the authorization header requires three components: Credential, SignedHeaders, and Signature.",
        ));
    };

    let (access_key, scope) = parse_credential(credential, AuthVia::Header)?;
    let signed_headers = parse_signed_headers(signed_headers, AuthVia::Header)?;
    let signature = parse_signature(signature)
        .ok_or_else(|| AuthVia::Header.malformed("the Signature is not 64 hexadecimal digits."))?;
    Ok(HeaderAuth {
        access_key,
        scope,
        signed_headers,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    #[test]
    fn parses_sdk_variants() {
        for value in [
            format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-date,Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature={SIG}"),
            format!("  AWS4-HMAC-SHA256   Signature={SIG} ,SignedHeaders=host;range;x-amz-date,  Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request "),
        ] {
            let auth = parse_authorization(&value).unwrap();
            assert_eq!(auth.access_key.as_str(), "AKIAIOSFODNN7EXAMPLE");
            assert_eq!(auth.scope.to_scope_string(), "20130524/us-east-1/s3/aws4_request");
            assert_eq!(auth.signed_headers, ["host", "range", "x-amz-date"]);
            assert_eq!(hex::encode(auth.signature), SIG);
        }
    }

    #[test]
    fn rejects_malformed_headers() {
        let cases = [
            ("AWS AKIAIOSFODNN7EXAMPLE:abc", AuthErrorCode::InvalidRequest),
            ("Bearer token", AuthErrorCode::InvalidArgument),
            ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request", AuthErrorCode::AuthorizationHeaderMalformed),
            ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3, SignedHeaders=host, Signature=00", AuthErrorCode::AuthorizationHeaderMalformed),
            ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00", AuthErrorCode::AuthorizationHeaderMalformed),
            ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00", AuthErrorCode::AuthorizationHeaderMalformed),
            ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;;a, Signature=00", AuthErrorCode::AuthorizationHeaderMalformed),
            ("AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, Credential=b", AuthErrorCode::AuthorizationHeaderMalformed),
            ("AWS4-HMAC-SHA256 Credential=lower/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00", AuthErrorCode::InvalidAccessKeyId),
        ];
        for (value, code) in cases {
            assert_eq!(
                parse_authorization(value).unwrap_err().code(),
                code,
                "{value}"
            );
        }
    }
}
