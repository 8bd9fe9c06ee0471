//! POST policy signatures against the two published test vectors (the AWS documentation's
//! worked example and botocore's presigned POST with the same credentials), an independent
//! HMAC derivation, and the policy language condition by condition.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::macros::datetime;

use super::*;
use crate::ids::{Role, SecretKey, TenantId};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const CREDENTIAL: &str = "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request";

/// "Example: Browser-Based Upload using HTTP POST (Using AWS Signature Version 4)", S3 API
/// reference: the policy (CRLF line ends) as base64, and its signature.
const AWS_POLICY: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
const AWS_SIGNATURE: &str = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";

/// botocore's `generate_presigned_post("sigv4examplebucket", "user/user1/photo.jpg")` with the
/// clock at 2015-12-29T00:00:00Z and the same credentials.
const BOTO_POLICY: &str = "eyJleHBpcmF0aW9uIjogIjIwMTUtMTItMjlUMDE6MDA6MDBaIiwgImNvbmRpdGlvbnMiOiBbeyJidWNrZXQiOiAic2lndjRleGFtcGxlYnVja2V0In0sIHsia2V5IjogInVzZXIvdXNlcjEvcGhvdG8uanBnIn0sIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwgeyJ4LWFtei1jcmVkZW50aWFsIjogIkFLSUFJT1NGT0ROTjdFWEFNUExFLzIwMTUxMjI5L3VzLWVhc3QtMS9zMy9hd3M0X3JlcXVlc3QifSwgeyJ4LWFtei1kYXRlIjogIjIwMTUxMjI5VDAwMDAwMFoifV19";
const BOTO_SIGNATURE: &str = "3364624b39010d9b06f5d9b8c9a18a6e478d261c048159c92f2fd6fa885f14e6";

const BUCKET: &str = "sigv4examplebucket";

fn credential() -> Credential {
    Credential {
        access_key: AccessKeyId::parse(AKID).unwrap(),
        secret: SecretKey::new(SECRET.to_owned()),
        tenant: TenantId::random(),
        role: Role::ReadWrite,
        buckets: None,
    }
}

fn form(pairs: &[(&str, &str)]) -> FormFields {
    let mut fields = FormFields::new();
    for (name, value) in pairs {
        fields.push(name, value);
    }
    fields
}

/// The fields of the documentation's example form, with its mixed-case names.
fn aws_example_form() -> FormFields {
    form(&[
        ("key", "user/user1/${filename}"),
        ("acl", "public-read"),
        (
            "success_action_redirect",
            "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
        ),
        ("Content-Type", "image/jpeg"),
        ("x-amz-meta-uuid", "14365123651274"),
        ("x-amz-server-side-encryption", "AES256"),
        ("X-Amz-Credential", CREDENTIAL),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Date", "20151229T000000Z"),
        ("x-amz-meta-tag", ""),
        ("Policy", AWS_POLICY),
        ("X-Amz-Signature", AWS_SIGNATURE),
    ])
}

fn verify_form(fields: &FormFields) -> Result<VerifiedPost, PostPolicyError> {
    let auth = parse_post_auth(fields)?.expect("the form is signed");
    verify_post(&auth, &credential(), Some("us-east-1"))
}

#[test]
fn aws_documentation_example_verifies_and_satisfies_its_policy() {
    let mut fields = aws_example_form();
    let verified = verify_form(&fields).unwrap();
    assert_eq!(verified.scope.access_key().as_str(), AKID);
    assert_eq!(
        verified.policy.expiration(),
        datetime!(2015-12-30 12:00:00 UTC)
    );
    fields.expand_filename("C:\\Users\\mary\\photo.jpg");
    assert_eq!(fields.get("key"), Some("user/user1/photo.jpg"));
    let policy = verified.policy;
    policy
        .evaluate(datetime!(2015-12-29 12:00:00 UTC), BUCKET, &fields)
        .unwrap();
    assert_eq!(
        policy.evaluate(datetime!(2015-12-30 12:00:01 UTC), BUCKET, &fields),
        Err(PostPolicyError::Expired)
    );
    assert_eq!(
        policy.evaluate(datetime!(2015-12-29 12:00:00 UTC), "otherbucket", &fields),
        Err(PostPolicyError::ConditionFailed(
            r#"["eq", "$bucket", "sigv4examplebucket"]"#.to_owned()
        ))
    );
}

#[test]
fn botocore_presigned_post_verifies() {
    let fields = form(&[
        ("key", "user/user1/photo.jpg"),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", CREDENTIAL),
        ("x-amz-date", "20151229T000000Z"),
        ("policy", BOTO_POLICY),
        ("x-amz-signature", BOTO_SIGNATURE),
    ]);
    let policy = verify_form(&fields).unwrap().policy;
    policy
        .evaluate(datetime!(2015-12-29 00:59:59 UTC), BUCKET, &fields)
        .unwrap();
    assert_eq!(
        policy.evaluate(datetime!(2015-12-29 01:00:01 UTC), BUCKET, &fields),
        Err(PostPolicyError::Expired)
    );
}

/// The signing key derived by hand with the hmac crate, independently of aws-sigv4.
fn independent_signature(secret: &str, date: &str, region: &str, policy: &str) -> String {
    let hmac = |key: &[u8], data: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    };
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, policy.as_bytes()))
}

#[test]
fn round_trip_with_an_independent_signer() {
    assert_eq!(
        independent_signature(SECRET, "20151229", "us-east-1", AWS_POLICY),
        AWS_SIGNATURE
    );
    let json = r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"bucket": "b"}, ["content-length-range", 0, 10]]}"#;
    let policy = BASE64.encode(json);
    let signature = independent_signature(SECRET, "20290601", "eu-west-3", &policy);
    let fields = form(&[
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        (
            "x-amz-credential",
            "AKIAIOSFODNN7EXAMPLE/20290601/eu-west-3/s3/aws4_request",
        ),
        ("x-amz-date", "20290601T120000Z"),
        ("policy", &policy),
        ("x-amz-signature", &signature),
    ]);
    let auth = parse_post_auth(&fields).unwrap().unwrap();
    let verified = verify_post(&auth, &credential(), Some("eu-west-3")).unwrap();
    assert_eq!(verified.policy.content_length_range(), Some((0, 10)));
    let wrong_region = verify_post(&auth, &credential(), Some("us-east-1")).unwrap_err();
    assert_eq!(
        wrong_region,
        PostPolicyError::Auth(AuthError::new(
            AuthErrorCode::InvalidArgument,
            "the region 'eu-west-3' is wrong; expecting 'us-east-1'"
        ))
    );
}

fn auth_code(result: Result<VerifiedPost, PostPolicyError>) -> Option<AuthErrorCode> {
    match result {
        Err(PostPolicyError::Auth(e)) => Some(e.code()),
        _ => None,
    }
}

#[test]
fn tampered_forms_do_not_verify() {
    let with = |name: &str, value: &str| {
        let mut fields = FormFields::new();
        for (n, v) in aws_example_form().iter() {
            fields.push(
                n,
                if n.eq_ignore_ascii_case(name) {
                    value
                } else {
                    v
                },
            );
        }
        fields
    };
    // One character of the policy changed (still valid base64).
    let tampered = AWS_POLICY.replacen("eyAi", "eyBi", 1);
    let mut wrong_signature = AWS_SIGNATURE.to_owned();
    wrong_signature.replace_range(0..1, "9");
    let cases = [
        (
            with("policy", &tampered),
            AuthErrorCode::SignatureDoesNotMatch,
        ),
        (
            with("x-amz-signature", &wrong_signature),
            AuthErrorCode::SignatureDoesNotMatch,
        ),
        (
            with("x-amz-signature", "not-hex"),
            AuthErrorCode::SignatureDoesNotMatch,
        ),
        (
            with("x-amz-date", "20151230T000000Z"),
            AuthErrorCode::InvalidArgument,
        ),
        (
            with("x-amz-date", "2015-12-29T00:00:00Z"),
            AuthErrorCode::InvalidArgument,
        ),
        (
            with(
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/iam/aws4_request",
            ),
            AuthErrorCode::InvalidArgument,
        ),
        (
            with(
                "x-amz-credential",
                "lowercase/20151229/us-east-1/s3/aws4_request",
            ),
            AuthErrorCode::InvalidAccessKeyId,
        ),
        (
            with("x-amz-algorithm", "AWS4-HMAC-SHA1"),
            AuthErrorCode::InvalidRequest,
        ),
    ];
    for (fields, code) in cases {
        let result = parse_post_auth(&fields)
            .map_err(PostPolicyError::from)
            .and_then(|auth| verify_post(&auth.unwrap(), &credential(), Some("us-east-1")));
        assert_eq!(auth_code(result), Some(code), "{fields:?}");
    }
    // Another key's secret.
    let mut other = credential();
    other.secret = SecretKey::new("another secret".to_owned());
    let auth = parse_post_auth(&aws_example_form()).unwrap().unwrap();
    assert_eq!(
        auth_code(verify_post(&auth, &other, None)),
        Some(AuthErrorCode::SignatureDoesNotMatch)
    );
}

#[test]
fn missing_fields_are_named_in_order() {
    assert!(parse_post_auth(&form(&[("key", "k"), ("policy", "e30=")]))
        .unwrap()
        .is_none());
    let sigv2 = parse_post_auth(&form(&[("AWSAccessKeyId", AKID), ("signature", "x")]));
    assert_eq!(sigv2.unwrap_err().code(), AuthErrorCode::InvalidRequest);
    let message = |pairs: &[(&str, &str)]| {
        parse_post_auth(&form(pairs))
            .unwrap_err()
            .message()
            .to_owned()
    };
    assert_eq!(
        message(&[("x-amz-date", "20151229T000000Z")]),
        "Bucket POST must contain a field named 'X-Amz-Algorithm'.  If it is specified, please check the order of the fields."
    );
    assert!(message(&[
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", CREDENTIAL),
        ("x-amz-date", "20151229T000000Z"),
        ("policy", AWS_POLICY),
    ])
    .contains("'X-Amz-Signature'"));
}

fn policy(conditions: &str) -> PostPolicy {
    let json =
        format!(r#"{{"expiration": "2030-01-01T00:00:00.000Z", "conditions": [{conditions}]}}"#);
    PostPolicy::parse(json.as_bytes()).unwrap()
}

const NOW: OffsetDateTime = datetime!(2029-06-01 00:00:00 UTC);

#[test]
fn exact_and_prefix_conditions() {
    let p = policy(
        r#"{"bucket": "b"}, ["eq", "$Key", "photos/cat.jpg"], ["starts-with", "$x-amz-meta-tag", "pet-"], {"acl": "private"}"#,
    );
    let ok = form(&[
        ("KEY", "photos/cat.jpg"),
        ("x-amz-meta-TAG", "pet-cat"),
        ("acl", "private"),
    ]);
    p.evaluate(NOW, "b", &ok).unwrap();
    let wrong_key = form(&[
        ("key", "photos/dog.jpg"),
        ("x-amz-meta-tag", "pet-cat"),
        ("acl", "private"),
    ]);
    assert_eq!(
        p.evaluate(NOW, "b", &wrong_key),
        Err(PostPolicyError::ConditionFailed(
            r#"["eq", "$Key", "photos/cat.jpg"]"#.to_owned()
        ))
    );
    // Values are case-sensitive.
    let wrong_prefix = form(&[
        ("key", "photos/cat.jpg"),
        ("x-amz-meta-tag", "Pet-cat"),
        ("acl", "private"),
    ]);
    assert!(matches!(
        p.evaluate(NOW, "b", &wrong_prefix),
        Err(PostPolicyError::ConditionFailed(_))
    ));
    // A condition on a field the form lacks fails, even `starts-with ""`.
    let lax = policy(r#"["starts-with", "$Content-Type", ""]"#);
    assert!(matches!(
        lax.evaluate(NOW, "b", &form(&[])),
        Err(PostPolicyError::ConditionFailed(_))
    ));
    lax.evaluate(NOW, "b", &form(&[("content-type", "")]))
        .unwrap();
}

#[test]
fn content_type_lists_must_match_item_by_item() {
    let p = policy(r#"["starts-with", "$Content-Type", "image/"]"#);
    let ct = |value| form(&[("Content-Type", value)]);
    p.evaluate(NOW, "b", &ct("image/jpg,image/png, image/gif"))
        .unwrap();
    assert!(p.evaluate(NOW, "b", &ct("image/jpg,text/plain")).is_err());
    // Other fields are plain strings, commas and all.
    let key = policy(r#"["starts-with", "$key", "a/"]"#);
    key.evaluate(NOW, "b", &form(&[("key", "a/x,b/y")]))
        .unwrap();
}

#[test]
fn every_field_needs_a_condition() {
    let p = policy(r#"["starts-with", "$key", ""]"#);
    let fields = form(&[
        ("key", "k"),
        ("policy", "..."),
        ("X-Amz-Signature", "..."),
        ("x-ignore-submit", "Upload"),
    ]);
    p.evaluate(NOW, "b", &fields).unwrap();
    let extra = form(&[("key", "k"), ("Filename", "cat.jpg")]);
    assert_eq!(
        p.evaluate(NOW, "b", &extra),
        Err(PostPolicyError::ExtraInputField("Filename".to_owned()))
    );
}

#[test]
fn content_length_range_is_inclusive_and_intersected() {
    let p = policy(r#"["content-length-range", 5, 10], ["content-length-range", "0", "8"]"#);
    assert_eq!(p.content_length_range(), Some((5, 8)));
    p.check_length(5).unwrap();
    p.check_length(8).unwrap();
    assert_eq!(
        p.check_length(4),
        Err(PostPolicyError::TooSmall {
            proposed: 4,
            min: 5
        })
    );
    assert_eq!(p.check_length(9), Err(PostPolicyError::TooLarge { max: 8 }));
    assert_eq!(policy("").check_length(u64::MAX), Ok(()));
    // A bound that is not a number fails like a condition.
    let never = policy(r#"["content-length-range", "test", "10"]"#);
    assert_eq!(
        never.evaluate(NOW, "b", &form(&[])),
        Err(PostPolicyError::ConditionFailed(
            r#"["content-length-range", "test", "10"]"#.to_owned()
        ))
    );
    // So does a field name without `$`.
    let no_dollar = policy(r#"["eq", "key", "k"]"#);
    assert!(no_dollar
        .evaluate(NOW, "b", &form(&[("key", "k")]))
        .is_err());
}

#[test]
fn operators_are_case_insensitive_members_are_not() {
    policy(r#"["StArTs-WiTh", "$KeY", "foo"], {"AcL": "private"}"#)
        .evaluate(NOW, "b", &form(&[("kEy", "foo.txt"), ("aCl", "private")]))
        .unwrap();
}

#[test]
fn malformed_policies_are_invalid_documents() {
    let cases = [
        ("not json", "Invalid JSON."),
        ("[]", "Invalid JSON."),
        (r#"{"conditions": []}"#, "Policy missing expiration."),
        (
            r#"{"expiration": "2030-01-01T00:00:00Z"}"#,
            "Policy missing conditions.",
        ),
        (
            r#"{"EXPIRATION": "2030-01-01T00:00:00Z", "conditions": []}"#,
            "Unexpected: 'expiration'",
        ),
        (
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": {}}"#,
            "Invalid 'conditions' value: must be a List.",
        ),
        (
            r#"{"expiration": "2011-09-13T07:52:58+02:00", "conditions": []}"#,
            "Invalid 'expiration' value: '2011-09-13T07:52:58+02:00'",
        ),
        (
            r#"{"expiration": "2015-10-17 03:15:59 UTC", "conditions": []}"#,
            "Invalid 'expiration' value: '2015-10-17 03:15:59 UTC'",
        ),
    ];
    for (json, message) in cases {
        assert_eq!(
            PostPolicy::parse(json.as_bytes()).unwrap_err(),
            PostPolicyError::InvalidPolicy(message.to_owned()),
            "{json}"
        );
    }
    let conditions = [
        (
            "{}",
            "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
        ),
        (
            r#"{"bucket": "b", "key": "k"}"#,
            "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
        ),
        (
            r#"{"Content-Length": 6199034}"#,
            "Invalid Simple-Condition: value must be a string.",
        ),
        (r#"{"success_action_redirect": null}"#, "Invalid JSON."),
        ("[]", "Invalid Condition: missing operation identifier."),
        (
            r#"["in", "$key", "k"]"#,
            "Invalid Condition: unknown operation 'in'.",
        ),
        (
            r#"["content-length-range", 0]"#,
            "Invalid content-length-range: wrong number of arguments.",
        ),
        (
            r#"["starts-with", "$key", "user/", "x"]"#,
            "Invalid starts-with: wrong number of arguments.",
        ),
        (r#"["content-length-range", 0, 512.0]"#, "Invalid JSON."),
        (
            r#"["content-length-range", -1, 0]"#,
            "Invalid content-length-range: the bounds must not be negative.",
        ),
        (r#"["eq", "$key", 5]"#, "Invalid JSON."),
        ("42", "Invalid condition test: must be a List or Object."),
    ];
    for (condition, message) in conditions {
        let json =
            format!(r#"{{"expiration": "2030-01-01T00:00:00Z", "conditions": [{condition}]}}"#);
        assert_eq!(
            PostPolicy::parse(json.as_bytes()).unwrap_err(),
            PostPolicyError::InvalidPolicy(message.to_owned()),
            "{condition}"
        );
    }
}

#[test]
fn duplicate_fields_join_with_commas_and_filenames_lose_their_path() {
    let mut fields = form(&[
        ("x-amz-meta-tag", "Ninja"),
        ("X-Amz-Meta-Tag", "Stallman"),
        ("key", "uploads/${filename}"),
        ("policy", "${filename}"),
    ]);
    assert_eq!(fields.get("x-amz-meta-tag"), Some("Ninja,Stallman"));
    fields.expand_filename("dir/sub/report.pdf");
    assert_eq!(fields.get("key"), Some("uploads/report.pdf"));
    // The signed fields are never rewritten.
    assert_eq!(fields.get("policy"), Some("${filename}"));
}
