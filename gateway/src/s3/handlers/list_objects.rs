//! ListObjects (v1) and ListObjectsV2: one storage scan, two XML dialects.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use base64::Engine;
use coffre_storage::{ListEntry, ListPage, ListQuery};
use http::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::objects::bucket_record;
use super::xml_response;
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::query::Query;
use crate::s3::timestamp::iso8601;
use crate::s3::xml::XmlWriter;
use crate::s3::{blocking, RequestContext};

const MAX_KEYS: usize = 1000;

/// `encoding-type=url`: everything but unreserved characters and `/` is percent-encoded
/// (a space as `%20`, so both `unquote` and `unquote_plus` decode it).
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

struct Encoder {
    url: bool,
}

impl Encoder {
    fn from_query(query: &Query) -> Result<Self, S3Error> {
        match query.get("encoding-type") {
            None => Ok(Self { url: false }),
            Some(t) if t.eq_ignore_ascii_case("url") => Ok(Self { url: true }),
            Some(_) => Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            )),
        }
    }

    fn encode(&self, s: &str) -> String {
        if self.url {
            utf8_percent_encode(s, URL_ENCODE).to_string()
        } else {
            s.to_owned()
        }
    }

    fn element(&self, w: &mut XmlWriter, name: &'static str, value: &str) {
        w.element(name, &self.encode(value));
    }
}

fn max_keys(query: &Query, name: &str) -> Result<usize, S3Error> {
    match query.get(name) {
        None => Ok(MAX_KEYS),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as usize).min(MAX_KEYS))
            .ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
            }),
    }
}

async fn scan(ctx: &RequestContext, bucket: &str, query: ListQuery) -> Result<ListPage, S3Error> {
    let record = bucket_record(ctx, bucket).await?;
    if query.max_keys == 0 {
        return Ok(ListPage {
            entries: Vec::new(),
            is_truncated: false,
            next_marker: None,
        });
    }
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    blocking(move || store.list_objects(&scope, &record, &query)).await
}

/// How each object of a page is written: `<Contents>` of ListObjects, or `<Version>` of
/// ListObjectVersions (where every object is its one `null` version).
#[derive(Clone, Copy, PartialEq, Eq)]
enum EntryStyle {
    Contents,
    Version,
}

fn write_entries(
    w: &mut XmlWriter,
    enc: &Encoder,
    page: &ListPage,
    owner: Option<&str>,
    style: EntryStyle,
) {
    for entry in &page.entries {
        if let ListEntry::Object(object) = entry {
            let element = match style {
                EntryStyle::Contents => "Contents",
                EntryStyle::Version => "Version",
            };
            w.open(element);
            enc.element(w, "Key", &object.key);
            if style == EntryStyle::Version {
                w.element("VersionId", "null");
                w.element("IsLatest", "true");
            }
            w.element("LastModified", &iso8601(object.last_modified));
            w.element("ETag", &format!("\"{}\"", object.etag));
            w.element_display("Size", object.size);
            if let Some(owner) = owner {
                w.open("Owner");
                w.element("ID", owner);
                w.element("DisplayName", owner);
                w.close("Owner");
            }
            w.element("StorageClass", "STANDARD");
            w.close(element);
        }
    }
    for entry in &page.entries {
        if let ListEntry::CommonPrefix(prefix) = entry {
            w.open("CommonPrefixes");
            enc.element(w, "Prefix", prefix);
            w.close("CommonPrefixes");
        }
    }
}

/// What every listing reads from its query: encoding, prefix, delimiter, page size, and
/// the marker named `marker_name` (exclusive).
struct ListParams {
    enc: Encoder,
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    marker: Option<String>,
}

impl ListParams {
    fn from_query(query: &Query, marker_name: &str) -> Result<Self, S3Error> {
        Ok(Self {
            enc: Encoder::from_query(query)?,
            prefix: query.get("prefix").unwrap_or_default().to_owned(),
            delimiter: delimiter(query),
            max_keys: max_keys(query, "max-keys")?,
            marker: query
                .get(marker_name)
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        })
    }

    async fn scan(&self, ctx: &RequestContext, bucket: &str) -> Result<ListPage, S3Error> {
        scan(
            ctx,
            bucket,
            ListQuery {
                prefix: self.prefix.clone(),
                delimiter: self.delimiter.clone(),
                start_after: self.marker.clone(),
                max_keys: self.max_keys,
            },
        )
        .await
    }
}

fn delimiter(query: &Query) -> Option<String> {
    query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

pub async fn list_objects_v1(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    let params = ListParams::from_query(&ctx.query, "marker")?;
    let page = params.scan(&ctx, &bucket).await?;
    let ListParams {
        enc,
        prefix,
        delimiter,
        max_keys,
        marker,
    } = params;

    let owner = ctx.scope.tenant_id().to_hex();
    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    w.element("Name", &bucket);
    enc.element(&mut w, "Prefix", &prefix);
    enc.element(&mut w, "Marker", marker.as_deref().unwrap_or_default());
    w.element_display("MaxKeys", max_keys);
    if let Some(d) = &delimiter {
        enc.element(&mut w, "Delimiter", d);
    }
    w.element_display("IsTruncated", page.is_truncated);
    if page.is_truncated {
        if let Some(next) = &page.next_marker {
            enc.element(&mut w, "NextMarker", next);
        }
    }
    if enc.url {
        w.element("EncodingType", "url");
    }
    write_entries(&mut w, &enc, &page, Some(&owner), EntryStyle::Contents);
    w.close("ListBucketResult");
    Ok(xml_response(w.finish()))
}

pub async fn list_objects_v2(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    let enc = Encoder::from_query(&ctx.query)?;
    let prefix = ctx.query.get("prefix").unwrap_or_default().to_owned();
    let delimiter = delimiter(&ctx.query);
    let max_keys = max_keys(&ctx.query, "max-keys")?;
    let start_after = ctx.query.get("start-after").map(str::to_owned);
    let token = ctx.query.get("continuation-token").map(str::to_owned);
    let resume_after = match &token {
        Some(token) => Some(decode_token(token)?),
        None => start_after.clone().filter(|s| !s.is_empty()),
    };
    let fetch_owner = ctx.query.get("fetch-owner") == Some("true");
    let page = scan(
        &ctx,
        &bucket,
        ListQuery {
            prefix: prefix.clone(),
            delimiter: delimiter.clone(),
            start_after: resume_after,
            max_keys,
        },
    )
    .await?;

    let owner = ctx.scope.tenant_id().to_hex();
    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    w.element("Name", &bucket);
    enc.element(&mut w, "Prefix", &prefix);
    if let Some(d) = &delimiter {
        enc.element(&mut w, "Delimiter", d);
    }
    w.element_display("MaxKeys", max_keys);
    w.element_display("KeyCount", page.entries.len());
    w.element_display("IsTruncated", page.is_truncated);
    if let Some(token) = &token {
        w.element("ContinuationToken", token);
    }
    if page.is_truncated {
        if let Some(next) = &page.next_marker {
            w.element("NextContinuationToken", &BASE64.encode(next));
        }
    }
    if let Some(start_after) = &start_after {
        enc.element(&mut w, "StartAfter", start_after);
    }
    if enc.url {
        w.element("EncodingType", "url");
    }
    write_entries(
        &mut w,
        &enc,
        &page,
        fetch_owner.then_some(owner.as_str()),
        EntryStyle::Contents,
    );
    w.close("ListBucketResult");
    Ok(xml_response(w.finish()))
}

fn decode_token(token: &str) -> Result<String, S3Error> {
    BASE64
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

/// ListObjectVersions on a store without versioning: each object is its one `null` version.
pub async fn list_object_versions(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    let params = ListParams::from_query(&ctx.query, "key-marker")?;
    let page = params.scan(&ctx, &bucket).await?;
    let ListParams {
        enc,
        prefix,
        delimiter,
        max_keys,
        marker: key_marker,
    } = params;

    let owner = ctx.scope.tenant_id().to_hex();
    let mut w = XmlWriter::new();
    w.open_root("ListVersionsResult");
    w.element("Name", &bucket);
    enc.element(&mut w, "Prefix", &prefix);
    enc.element(
        &mut w,
        "KeyMarker",
        key_marker.as_deref().unwrap_or_default(),
    );
    w.element(
        "VersionIdMarker",
        ctx.query.get("version-id-marker").unwrap_or_default(),
    );
    if page.is_truncated {
        if let Some(next) = &page.next_marker {
            enc.element(&mut w, "NextKeyMarker", next);
            w.element("NextVersionIdMarker", "null");
        }
    }
    w.element_display("MaxKeys", max_keys);
    if let Some(d) = &delimiter {
        enc.element(&mut w, "Delimiter", d);
    }
    w.element_display("IsTruncated", page.is_truncated);
    if enc.url {
        w.element("EncodingType", "url");
    }
    write_entries(&mut w, &enc, &page, Some(&owner), EntryStyle::Version);
    w.close("ListVersionsResult");
    Ok(xml_response(w.finish()))
}
