//! Browser-form uploads (S3 POST Object): the SigV4 signature of a POST policy and the
//! policy itself.
//!
//! A form carries no signed request: it carries a base64 policy (the string to sign), the
//! credential scope, the date and the hex HMAC-SHA256 of the policy under the signing key.
//! [`verify_post`] checks that signature before the policy is even decoded, and is, with
//! [`super::verify`], the only producer of a [`TenantScope`]. The decoded [`PostPolicy`] then
//! decides whether the form's fields may be used: expiration, every condition, and every
//! field covered by some condition.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::signature::{
    format_scope_date, parse_amz_date, parse_signature, signature_matches, CredentialScope,
    SigningKey, ALGORITHM, SERVICE, TERMINAL,
};
use super::{AuthError, AuthErrorCode};
use crate::ids::AccessKeyId;
use crate::scope::{Credential, TenantScope};

/// Why a POST form was refused, in S3's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostPolicyError {
    /// Missing or malformed authentication fields, unknown key, wrong signature.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The policy is not a policy document (S3's InvalidPolicyDocument, 400).
    #[error("Invalid Policy: {0}")]
    InvalidPolicy(String),
    #[error("Invalid according to Policy: Policy expired.")]
    Expired,
    /// The condition as S3 prints it, e.g. `["eq", "$key", "a.txt"]`.
    #[error("Invalid according to Policy: Policy Condition failed: {0}")]
    ConditionFailed(String),
    /// A form field (named as sent) that no condition covers.
    #[error("Invalid according to Policy: Extra input fields: {0}")]
    ExtraInputField(String),
    #[error("Your proposed upload exceeds the maximum allowed size")]
    TooLarge { max: u64 },
    #[error("Your proposed upload is smaller than the minimum allowed size")]
    TooSmall { proposed: u64, min: u64 },
}

/// Fields that sign the form rather than describe the upload: no condition covers them.
const UNCOVERED: [&str; 3] = ["x-amz-signature", "file", "policy"];
const IGNORED_PREFIX: &str = "x-ignore-";
const FILENAME_VARIABLE: &str = "${filename}";

/// The text fields of a form, in the order sent. Names are matched case-insensitively; a
/// name sent twice has its values joined with a comma, which is how S3 matches them.
#[derive(Debug, Clone, Default)]
pub struct FormFields {
    fields: Vec<FormField>,
}

#[derive(Debug, Clone)]
struct FormField {
    name: String,
    lower: String,
    value: String,
}

impl FormFields {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, name: &str, value: &str) {
        let lower = name.to_ascii_lowercase();
        match self.fields.iter_mut().find(|f| f.lower == lower) {
            Some(field) => {
                field.value.push(',');
                field.value.push_str(value);
            }
            None => self.fields.push(FormField {
                name: name.to_owned(),
                lower,
                value: value.to_owned(),
            }),
        }
    }

    /// The value of the field `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.lower.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// `(name as sent, value)` in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
    }

    /// Replaces `${filename}` in every field but the signed ones with the file's name, less
    /// any path a browser added. S3 expands variables before it checks the policy.
    pub fn expand_filename(&mut self, filename: &str) {
        let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
        for field in &mut self.fields {
            let signed = field.lower == "policy" || field.lower == "x-amz-signature";
            if !signed && field.value.contains(FILENAME_VARIABLE) {
                field.value = field.value.replace(FILENAME_VARIABLE, base);
            }
        }
    }
}

/// The authentication fields of a form, parsed but not verified.
#[derive(Debug, Clone)]
pub struct PostAuth {
    pub access_key: AccessKeyId,
    scope: CredentialScope,
    date: OffsetDateTime,
    signature: [u8; 32],
    /// The base64 policy exactly as sent: the string to sign.
    policy: String,
}

/// A verified form: the caller's scope and the policy its fields must satisfy.
#[derive(Debug)]
pub struct VerifiedPost {
    pub scope: TenantScope,
    pub policy: PostPolicy,
}

const UNSUPPORTED: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";
const MALFORMED_CREDENTIAL: &str =
    "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".";

fn invalid_argument(message: impl Into<String>) -> AuthError {
    AuthError::new(AuthErrorCode::InvalidArgument, message)
}

fn missing_field(name: &str) -> AuthError {
    invalid_argument(format!(
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    ))
}

/// Reads the SigV4 fields of a form. `Ok(None)`: the form carries none (anonymous).
pub fn parse_post_auth(fields: &FormFields) -> Result<Option<PostAuth>, AuthError> {
    const SIGV4: [&str; 4] = [
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
    ];
    if SIGV4.iter().all(|name| fields.get(name).is_none()) {
        let sigv2 = fields.get("awsaccesskeyid").is_some() || fields.get("signature").is_some();
        return if sigv2 {
            Err(AuthError::new(AuthErrorCode::InvalidRequest, UNSUPPORTED))
        } else {
            Ok(None)
        };
    }
    let required =
        |lower: &str, display: &str| fields.get(lower).ok_or_else(|| missing_field(display));
    let algorithm = required("x-amz-algorithm", "X-Amz-Algorithm")?;
    let credential = required("x-amz-credential", "X-Amz-Credential")?;
    let date = required("x-amz-date", "X-Amz-Date")?;
    let signature = required("x-amz-signature", "X-Amz-Signature")?;
    let policy = required("policy", "Policy")?;

    if algorithm != ALGORITHM {
        return Err(AuthError::new(AuthErrorCode::InvalidRequest, UNSUPPORTED));
    }
    let (access_key, scope) = parse_credential(credential)?;
    let date = parse_amz_date(date)
        .ok_or_else(|| invalid_argument("X-Amz-Date must be formated via ISO8601 Long format"))?;
    let request_date = format_scope_date(date);
    if scope.date != request_date {
        return Err(invalid_argument(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{request_date}\".",
            scope.date
        )));
    }
    // A signature that is not 64 hex digits cannot match; it is refused like a wrong one.
    let signature = parse_signature(signature).ok_or_else(signature_mismatch)?;
    Ok(Some(PostAuth {
        access_key,
        scope,
        date,
        signature,
        policy: policy.to_owned(),
    }))
}

fn parse_credential(value: &str) -> Result<(AccessKeyId, CredentialScope), AuthError> {
    let parts: Vec<&str> = value.trim().split('/').collect();
    let [akid, date, region, service, terminal] = parts.as_slice() else {
        return Err(invalid_argument(MALFORMED_CREDENTIAL));
    };
    if akid.is_empty() {
        return Err(invalid_argument(
            "a non-empty Access Key (AKID) must be provided in the credential.",
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_argument(format!(
            "incorrect date format \"{date}\". This date in the credential must be in the format \"yyyyMMdd\"."
        )));
    }
    if region.is_empty() {
        return Err(invalid_argument(MALFORMED_CREDENTIAL));
    }
    if *service != SERVICE {
        return Err(invalid_argument(format!(
            "incorrect service \"{service}\". This endpoint belongs to \"s3\"."
        )));
    }
    if *terminal != TERMINAL {
        return Err(invalid_argument(format!(
            "incorrect terminal \"{terminal}\". This endpoint uses \"aws4_request\"."
        )));
    }
    let access_key = AccessKeyId::parse(akid).map_err(|_| {
        AuthError::new(
            AuthErrorCode::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    })?;
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

fn signature_mismatch() -> AuthError {
    AuthError::new(
        AuthErrorCode::SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

/// Verifies the form's signature with the secret of `credential` (the one stored for
/// `auth.access_key`), then decodes the policy. `expected_region`: the server's region, or
/// `None` to accept the region the form was signed for.
pub fn verify_post(
    auth: &PostAuth,
    credential: &Credential,
    expected_region: Option<&str>,
) -> Result<VerifiedPost, PostPolicyError> {
    if credential.access_key != auth.access_key {
        return Err(AuthError::new(
            AuthErrorCode::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        )
        .into());
    }
    if let Some(expected) = expected_region {
        if auth.scope.region != expected {
            return Err(invalid_argument(format!(
                "the region '{}' is wrong; expecting '{expected}'",
                auth.scope.region
            ))
            .into());
        }
    }
    let key = SigningKey::derive(credential.secret.expose(), auth.date, &auth.scope.region)
        .ok_or_else(|| AuthError::new(AuthErrorCode::AccessDenied, "Access Denied"))?;
    // The string to sign is the base64 text as sent, not the JSON it encodes.
    let computed = key.sign(auth.policy.as_bytes());
    if !signature_matches(&computed, &auth.signature) {
        return Err(signature_mismatch().into());
    }
    let json = BASE64
        .decode(auth.policy.trim())
        .map_err(|_| PostPolicyError::InvalidPolicy("invalid Base64 encoding.".to_owned()))?;
    Ok(VerifiedPost {
        scope: TenantScope::from_verified(credential),
        policy: PostPolicy::parse(&json)?,
    })
}

/// A decoded POST policy.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    expiration: OffsetDateTime,
    conditions: Vec<Condition>,
    /// The intersection of every `content-length-range`, inclusive.
    length_range: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
struct Condition {
    test: Test,
    /// As S3 prints it in an error.
    text: String,
}

#[derive(Debug, Clone)]
enum Test {
    /// `lower` is the field name without `$`, lowercase.
    Eq {
        lower: String,
        value: String,
    },
    StartsWith {
        lower: String,
        prefix: String,
    },
    ContentLengthRange,
    /// Well-formed JSON that no form can satisfy (a field name without `$`, a size that is
    /// not a number): S3 reports it as a failed condition, not as a bad policy.
    Never,
}

impl Test {
    fn field(&self) -> Option<&str> {
        match self {
            Self::Eq { lower, .. } | Self::StartsWith { lower, .. } => Some(lower),
            Self::ContentLengthRange | Self::Never => None,
        }
    }
}

fn invalid(message: impl Into<String>) -> PostPolicyError {
    PostPolicyError::InvalidPolicy(message.into())
}

fn invalid_json() -> PostPolicyError {
    invalid("Invalid JSON.")
}

/// `["op", a, b]` with each operand as JSON, the way S3 prints conditions.
fn render(op: &str, operands: &[&Value]) -> String {
    let mut out = format!("[{}", Value::from(op));
    for operand in operands {
        out.push_str(", ");
        out.push_str(&operand.to_string());
    }
    out.push(']');
    out
}

impl PostPolicy {
    /// Parses the decoded policy document.
    pub fn parse(json: &[u8]) -> Result<Self, PostPolicyError> {
        let document: Value = serde_json::from_slice(json).map_err(|_| invalid_json())?;
        let Value::Object(members) = document else {
            return Err(invalid_json());
        };
        if let Some(other) = members
            .keys()
            .find(|k| !matches!(k.as_str(), "expiration" | "conditions"))
        {
            return Err(invalid(format!(
                "Unexpected: '{}'",
                other.to_ascii_lowercase()
            )));
        }
        let expiration = match members.get("expiration") {
            None => return Err(invalid("Policy missing expiration.")),
            Some(value) => parse_expiration(value)?,
        };
        let conditions = match members.get("conditions") {
            None => return Err(invalid("Policy missing conditions.")),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(invalid("Invalid 'conditions' value: must be a List.")),
        };
        let mut policy = Self {
            expiration,
            conditions: Vec::with_capacity(conditions.len()),
            length_range: None,
        };
        for condition in conditions {
            policy.add_condition(condition)?;
        }
        Ok(policy)
    }

    fn add_condition(&mut self, condition: &Value) -> Result<(), PostPolicyError> {
        let condition = match condition {
            Value::Object(members) => {
                let mut members = members.iter();
                let (Some((name, value)), None) = (members.next(), members.next()) else {
                    return Err(invalid(
                        "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
                    ));
                };
                let Value::String(value) = value else {
                    return Err(if value.is_null() {
                        invalid_json()
                    } else {
                        invalid("Invalid Simple-Condition: value must be a string.")
                    });
                };
                Condition {
                    text: render(
                        "eq",
                        &[
                            &Value::from(format!("${name}")),
                            &Value::from(value.as_str()),
                        ],
                    ),
                    test: Test::Eq {
                        lower: name.to_ascii_lowercase(),
                        value: value.clone(),
                    },
                }
            }
            Value::Array(items) => self.parse_operation(items)?,
            _ => return Err(invalid("Invalid condition test: must be a List or Object.")),
        };
        self.conditions.push(condition);
        Ok(())
    }

    fn parse_operation(&mut self, items: &[Value]) -> Result<Condition, PostPolicyError> {
        let Some(Value::String(op)) = items.first() else {
            return Err(invalid("Invalid Condition: missing operation identifier."));
        };
        let op = op.to_ascii_lowercase();
        if !matches!(op.as_str(), "eq" | "starts-with" | "content-length-range") {
            return Err(invalid(format!(
                "Invalid Condition: unknown operation '{op}'."
            )));
        }
        let [_, first, second] = items else {
            return Err(invalid(format!("Invalid {op}: wrong number of arguments.")));
        };
        let text = render(&op, &[first, second]);
        if op == "content-length-range" {
            let (Some(min), Some(max)) = (length_bound(first)?, length_bound(second)?) else {
                return Ok(Condition {
                    test: Test::Never,
                    text,
                });
            };
            if min > max {
                return Err(invalid(format!(
                    "Invalid content-length-range: the minimum {min} exceeds the maximum {max}."
                )));
            }
            self.length_range = Some(match self.length_range {
                Some((lo, hi)) => (lo.max(min), hi.min(max)),
                None => (min, max),
            });
            return Ok(Condition {
                test: Test::ContentLengthRange,
                text,
            });
        }
        let (Value::String(field), Value::String(value)) = (first, second) else {
            return Err(invalid_json());
        };
        let Some(name) = field.strip_prefix('$') else {
            return Ok(Condition {
                test: Test::Never,
                text,
            });
        };
        let lower = name.to_ascii_lowercase();
        let test = match op.as_str() {
            "eq" => Test::Eq {
                lower,
                value: value.clone(),
            },
            _ => Test::StartsWith {
                lower,
                prefix: value.clone(),
            },
        };
        Ok(Condition { test, text })
    }

    /// When the policy stops being valid.
    pub fn expiration(&self) -> OffsetDateTime {
        self.expiration
    }

    /// The inclusive `(min, max)` size of the file, when the policy limits it.
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.length_range
    }

    /// Checks the form against the policy at `now`: not expired, every condition met
    /// (`bucket` is the bucket the form was posted to), and every field covered by a
    /// condition. `fields` must already have `${filename}` expanded.
    pub fn evaluate(
        &self,
        now: OffsetDateTime,
        bucket: &str,
        fields: &FormFields,
    ) -> Result<(), PostPolicyError> {
        if now > self.expiration {
            return Err(PostPolicyError::Expired);
        }
        for condition in &self.conditions {
            let value = |lower: &str| match lower {
                "bucket" => Some(bucket),
                _ => fields.get(lower),
            };
            let met = match &condition.test {
                Test::Eq {
                    lower,
                    value: expected,
                } => value(lower) == Some(expected.as_str()),
                Test::StartsWith { lower, prefix } => match value(lower) {
                    // A list of content types passes when each of them does.
                    Some(actual) if lower == "content-type" => actual
                        .split(',')
                        .all(|item| item.trim().starts_with(prefix.as_str())),
                    Some(actual) => actual.starts_with(prefix.as_str()),
                    None => false,
                },
                Test::ContentLengthRange => true,
                Test::Never => false,
            };
            if !met {
                return Err(PostPolicyError::ConditionFailed(condition.text.clone()));
            }
        }
        for (name, _) in fields.iter() {
            let lower = name.to_ascii_lowercase();
            let exempt = UNCOVERED.contains(&lower.as_str()) || lower.starts_with(IGNORED_PREFIX);
            let covered = self
                .conditions
                .iter()
                .any(|c| c.test.field() == Some(lower.as_str()));
            if !exempt && !covered {
                return Err(PostPolicyError::ExtraInputField(name.to_owned()));
            }
        }
        Ok(())
    }

    /// Checks the final size of the file against `content-length-range`.
    pub fn check_length(&self, size: u64) -> Result<(), PostPolicyError> {
        match self.length_range {
            Some((min, _)) if size < min => Err(PostPolicyError::TooSmall {
                proposed: size,
                min,
            }),
            Some((_, max)) if size > max => Err(PostPolicyError::TooLarge { max }),
            _ => Ok(()),
        }
    }
}

/// ISO 8601 in UTC, with or without fractional seconds (`2015-12-30T12:00:00.000Z`).
fn parse_expiration(value: &Value) -> Result<OffsetDateTime, PostPolicyError> {
    let bad = || invalid(format!("Invalid 'expiration' value: {value}").replace('"', "'"));
    let Value::String(text) = value else {
        return Err(bad());
    };
    if !text.ends_with('Z') || text.as_bytes().get(10) != Some(&b'T') {
        return Err(bad());
    }
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())
}

/// A bound of `content-length-range`: a non-negative integer, or a string holding one.
/// `Ok(None)`: a string that is not a number (the condition can never be met).
fn length_bound(value: &Value) -> Result<Option<u64>, PostPolicyError> {
    match value {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(n), _) => Ok(Some(n)),
            (None, Some(_)) => Err(invalid(
                "Invalid content-length-range: the bounds must not be negative.",
            )),
            (None, None) => Err(invalid_json()),
        },
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(n) if n < 0 => Err(invalid(
                "Invalid content-length-range: the bounds must not be negative.",
            )),
            Ok(n) => Ok(u64::try_from(n).ok()),
            Err(_) => Ok(None),
        },
        _ => Err(invalid_json()),
    }
}

#[cfg(test)]
mod tests;
