//! SigV4 signing of every request (Authorization header, `UNSIGNED-PAYLOAD` bodies), done with
//! `aws-sigv4` as an SDK would, so the server's verification cost is part of what is measured.

use std::time::SystemTime;

use anyhow::{Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

pub struct RequestSigner {
    identity: Identity,
    region: String,
}

impl RequestSigner {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Self {
        let credentials = Credentials::new(access_key, secret_key, None, None, "loadgen");
        Self {
            identity: credentials.into(),
            region: region.to_owned(),
        }
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256: UNSIGNED-PAYLOAD` and `Authorization`.
    pub fn sign<B>(&self, request: &mut http::Request<B>) -> Result<()> {
        let mut settings = SigningSettings::default();
        // S3 wants the payload hash header, single URI encoding and no path normalisation.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .context("building SigV4 parameters")?
            .into();
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
            .collect::<Result<Vec<_>>>()?;
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .context("preparing the request for signing")?;
        let (instructions, _signature) = sign(signable, &params)
            .context("signing the request")?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}
