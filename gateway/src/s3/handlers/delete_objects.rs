//! DeleteObjects: up to 1,000 keys in one request, Quiet mode, an error per key that failed.

use http::Response;

use super::objects::bucket_record;
use super::xml_response;
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::payload_digest::PayloadDigest;
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{blocking, RequestContext};

const MAX_KEYS: usize = 1000;
/// 1,000 keys of 1 KiB each, with their markup.
const MAX_BODY: usize = 2 * 1024 * 1024;

struct Request {
    quiet: bool,
    keys: Vec<(String, Option<String>)>,
}

fn parse(body: &[u8]) -> Result<Request, S3Error> {
    let root = xml::parse(body)?;
    if root.name != "Delete" {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let quiet = root.child_text("Quiet").map(str::trim) == Some("true");
    let keys: Vec<(String, Option<String>)> = root
        .children_named("Object")
        .map(|object| {
            let key = object
                .child_text("Key")
                .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
            let version = object.child_text("VersionId").map(str::to_owned);
            Ok((key.to_owned(), version))
        })
        .collect::<Result<_, S3Error>>()?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published \
             schema: a Delete request names between 1 and 1000 objects.",
        ));
    }
    Ok(Request { quiet, keys })
}

pub async fn delete_objects(
    mut ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    let has_integrity = ctx.headers.contains_key("content-md5")
        || ctx
            .headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-") || k == "x-amz-trailer");
    if !has_integrity {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ));
    }
    let mut digest = PayloadDigest::from_headers(&ctx.headers)?;
    let body = ctx.body.collect(MAX_BODY).await?;
    digest.update(&body);
    digest.finish(ctx.body.trailers())?;
    let request = parse(&body)?;

    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    let keys = request.keys;
    let outcomes = blocking(move || {
        Ok(keys
            .into_iter()
            .map(|(key, version)| {
                let outcome = match version.as_deref() {
                    Some(v) if v != "null" => Err((
                        "NoSuchVersion",
                        "The specified version does not exist.".to_owned(),
                    )),
                    _ => store.delete_object(&scope, &record, &key).map_err(|e| {
                        tracing::error!(key = %key, error = %e, "delete failed");
                        (
                            "InternalError",
                            "We encountered an internal error.".to_owned(),
                        )
                    }),
                };
                (key, outcome)
            })
            .collect::<Vec<_>>())
    })
    .await?;

    let mut w = XmlWriter::new();
    w.open_root("DeleteResult");
    for (key, outcome) in &outcomes {
        match outcome {
            Ok(()) if request.quiet => {}
            Ok(()) => {
                w.open("Deleted");
                w.element("Key", key);
                w.close("Deleted");
            }
            Err((code, message)) => {
                w.open("Error");
                w.element("Key", key);
                w.element("Code", code);
                w.element("Message", message);
                w.close("Error");
            }
        }
    }
    w.close("DeleteResult");
    Ok(xml_response(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_request_bounds() {
        let one = b"<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object></Delete>";
        let parsed = parse(one).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.quiet);
        assert_eq!(parsed.keys, vec![("a&b".to_owned(), None)]);

        let none = b"<Delete></Delete>";
        assert_eq!(
            parse(none).err().map(|e| e.code()),
            Some(S3ErrorCode::MalformedXML)
        );
        let many = format!(
            "<Delete>{}</Delete>",
            "<Object><Key>k</Key></Object>".repeat(MAX_KEYS + 1)
        );
        assert_eq!(
            parse(many.as_bytes()).err().map(|e| e.code()),
            Some(S3ErrorCode::MalformedXML)
        );
    }
}
