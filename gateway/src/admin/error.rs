//! Admin API errors: a code, a status and a message, sent as
//! `{"error": {"code": "...", "message": "..."}}`. The source of an internal error is
//! logged, never sent.

use std::fmt;

use http::StatusCode;

use super::schema::{ErrorBody, ErrorDoc};

macro_rules! admin_error_codes {
    ($($(#[$doc:meta])* $code:ident => $status:expr;)*) => {
        /// The admin API's error codes, each with its HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum AdminErrorCode { $($(#[$doc])* $code),* }

        impl AdminErrorCode {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$code => stringify!($code)),* }
            }

            pub fn status(self) -> StatusCode {
                match self { $(Self::$code => $status),* }
            }
        }
    };
}

admin_error_codes! {
    /// The body is not JSON.
    MalformedJson => StatusCode::BAD_REQUEST;
    /// JSON of the wrong shape: unknown or missing field, wrong type or value.
    InvalidRequest => StatusCode::BAD_REQUEST;
    InvalidName => StatusCode::BAD_REQUEST;
    InvalidPlacement => StatusCode::BAD_REQUEST;
    Unauthorized => StatusCode::UNAUTHORIZED;
    NoSuchRoute => StatusCode::NOT_FOUND;
    NoSuchTenant => StatusCode::NOT_FOUND;
    NoSuchAccessKey => StatusCode::NOT_FOUND;
    MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED;
    TenantExists => StatusCode::CONFLICT;
    TenantHasBuckets => StatusCode::CONFLICT;
    PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE;
    /// The audit trail has no room for the action's record yet: retry shortly.
    SlowDown => StatusCode::SERVICE_UNAVAILABLE;
    InternalError => StatusCode::INTERNAL_SERVER_ERROR;
}

pub struct AdminError {
    code: AdminErrorCode,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AdminError {
    pub fn new(code: AdminErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: AdminErrorCode::InternalError,
            message: "internal error; see the server log".into(),
            source: Some(source.into()),
        }
    }

    pub fn code(&self) -> AdminErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn to_json(&self) -> String {
        let doc = ErrorDoc {
            error: ErrorBody {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
            },
        };
        serde_json::to_string(&doc).unwrap_or_else(|_| {
            r#"{"error":{"code":"InternalError","message":"internal error"}}"#.to_owned()
        })
    }

    /// A request body that serde refused.
    pub fn from_json(err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let code = match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => AdminErrorCode::MalformedJson,
            Category::Data => AdminErrorCode::InvalidRequest,
        };
        Self::new(code, format!("request body: {err}"))
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<coffre_storage::Error> for AdminError {
    fn from(e: coffre_storage::Error) -> Self {
        use coffre_storage::Error as E;
        use AdminErrorCode as C;
        match e {
            E::TenantExists => Self::new(C::TenantExists, "a tenant with this name exists"),
            E::NoSuchTenant => Self::new(C::NoSuchTenant, "no such tenant"),
            E::NoSuchAccessKey => Self::new(C::NoSuchAccessKey, "no such access key"),
            E::TenantNotEmpty => Self::new(
                C::TenantHasBuckets,
                "the tenant still has buckets; delete them first, or delete with force=true \
                 to remove everything it stores",
            ),
            E::InvalidPlacement(message) => Self::new(C::InvalidPlacement, message),
            other => Self::internal(other),
        }
    }
}
