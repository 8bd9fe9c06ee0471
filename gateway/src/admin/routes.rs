//! The admin listener's routes: one table, [`ROUTES`], from which requests are resolved and
//! against which `ADMIN_API.md` is checked by the tests, so the reference page and the
//! server cannot drift apart.

use http::Method;
use percent_encoding::percent_decode_str;

/// A resolved request, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Ready,
    Metrics,
    ListTenants,
    CreateTenant,
    ShowTenant { tenant: String },
    UpdateTenant { tenant: String },
    DeleteTenant { tenant: String },
    SuspendTenant { tenant: String },
    ResumeTenant { tenant: String },
    RotateTenantKey { tenant: String },
    ListKeys { tenant: String },
    CreateKey { tenant: String },
    DisableKey { key: String },
    EnableKey { key: String },
    DeleteKey { key: String },
    ShowRootKey,
    RotateRoot,
    ShowCluster,
}

impl Route {
    /// Name used in logs and the audit record (a bounded set).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Health => "Health",
            Route::Ready => "Ready",
            Route::Metrics => "Metrics",
            Route::ListTenants => "ListTenants",
            Route::CreateTenant => "CreateTenant",
            Route::ShowTenant { .. } => "ShowTenant",
            Route::UpdateTenant { .. } => "UpdateTenant",
            Route::DeleteTenant { .. } => "DeleteTenant",
            Route::SuspendTenant { .. } => "SuspendTenant",
            Route::ResumeTenant { .. } => "ResumeTenant",
            Route::RotateTenantKey { .. } => "RotateTenantKey",
            Route::ListKeys { .. } => "ListKeys",
            Route::CreateKey { .. } => "CreateKey",
            Route::DisableKey { .. } => "DisableKey",
            Route::EnableKey { .. } => "EnableKey",
            Route::DeleteKey { .. } => "DeleteKey",
            Route::ShowRootKey => "ShowRootKey",
            Route::RotateRoot => "RotateRoot",
            Route::ShowCluster => "ShowCluster",
        }
    }

    /// `/health` and `/ready` answer without the token: probes have none.
    pub fn needs_token(&self) -> bool {
        !matches!(self, Route::Health | Route::Ready)
    }

    /// The tenant or key the route acts on, for the audit record.
    pub fn target(&self) -> Option<&str> {
        match self {
            Route::ShowTenant { tenant }
            | Route::UpdateTenant { tenant }
            | Route::DeleteTenant { tenant }
            | Route::SuspendTenant { tenant }
            | Route::ResumeTenant { tenant }
            | Route::RotateTenantKey { tenant }
            | Route::ListKeys { tenant }
            | Route::CreateKey { tenant } => Some(tenant),
            Route::DisableKey { key } | Route::EnableKey { key } | Route::DeleteKey { key } => {
                Some(key)
            }
            _ => None,
        }
    }
}

/// One entry of the table: a method, a path pattern (`{name}` matches one segment), and
/// how to build the [`Route`] from the captured segments, in order.
pub struct RouteSpec {
    pub method: Method,
    pub pattern: &'static str,
    build: fn(Vec<String>) -> Option<Route>,
}

macro_rules! route {
    ($method:ident $pattern:literal => $variant:ident) => {
        RouteSpec {
            method: Method::$method,
            pattern: $pattern,
            build: |_| Some(Route::$variant),
        }
    };
    ($method:ident $pattern:literal => $variant:ident { $field:ident }) => {
        RouteSpec {
            method: Method::$method,
            pattern: $pattern,
            build: |params| {
                let $field = params.into_iter().next()?;
                Some(Route::$variant { $field })
            },
        }
    };
}

pub static ROUTES: &[RouteSpec] = &[
    route!(GET "/health" => Health),
    route!(GET "/ready" => Ready),
    route!(GET "/metrics" => Metrics),
    route!(GET "/admin/v1/tenants" => ListTenants),
    route!(POST "/admin/v1/tenants" => CreateTenant),
    route!(GET "/admin/v1/tenants/{name}" => ShowTenant { tenant }),
    route!(PATCH "/admin/v1/tenants/{name}" => UpdateTenant { tenant }),
    route!(DELETE "/admin/v1/tenants/{name}" => DeleteTenant { tenant }),
    route!(POST "/admin/v1/tenants/{name}/suspend" => SuspendTenant { tenant }),
    route!(POST "/admin/v1/tenants/{name}/resume" => ResumeTenant { tenant }),
    route!(POST "/admin/v1/tenants/{name}/rotate-key" => RotateTenantKey { tenant }),
    route!(GET "/admin/v1/tenants/{name}/keys" => ListKeys { tenant }),
    route!(POST "/admin/v1/tenants/{name}/keys" => CreateKey { tenant }),
    route!(POST "/admin/v1/keys/{access_key_id}/disable" => DisableKey { key }),
    route!(POST "/admin/v1/keys/{access_key_id}/enable" => EnableKey { key }),
    route!(DELETE "/admin/v1/keys/{access_key_id}" => DeleteKey { key }),
    route!(GET "/admin/v1/root-key" => ShowRootKey),
    route!(POST "/admin/v1/rotate-root" => RotateRoot),
    route!(GET "/admin/v1/cluster" => ShowCluster),
];

/// Why a request has no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrouted {
    /// No pattern matches the path.
    NotFound,
    /// The path exists with these methods only.
    MethodNotAllowed(Vec<Method>),
}

/// Resolves `method` and the raw (percent-encoded) `path`.
pub fn resolve(method: &Method, path: &str) -> Result<Route, Unrouted> {
    let mut allowed = Vec::new();
    for spec in ROUTES {
        let Some(params) = match_pattern(spec.pattern, path) else {
            continue;
        };
        if spec.method == *method {
            return (spec.build)(params).ok_or(Unrouted::NotFound);
        }
        allowed.push(spec.method.clone());
    }
    if allowed.is_empty() {
        Err(Unrouted::NotFound)
    } else {
        Err(Unrouted::MethodNotAllowed(allowed))
    }
}

/// The decoded `{...}` segments of `path` if it matches `pattern`.
fn match_pattern(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut expected = pattern.split('/');
    let mut actual = path.split('/');
    let mut params = Vec::new();
    loop {
        match (expected.next(), actual.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(a)) if p.starts_with('{') && p.ends_with('}') => {
                let decoded = percent_decode_str(a).decode_utf8().ok()?;
                if decoded.is_empty() || decoded.contains('/') {
                    return None;
                }
                params.push(decoded.into_owned());
            }
            (Some(p), Some(a)) if p == a => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_methods_and_parameters() {
        assert_eq!(resolve(&Method::GET, "/health"), Ok(Route::Health));
        assert_eq!(
            resolve(&Method::POST, "/admin/v1/tenants/acme/suspend"),
            Ok(Route::SuspendTenant {
                tenant: "acme".into()
            })
        );
        assert_eq!(
            resolve(&Method::POST, "/admin/v1/tenants/acme/rotate-key"),
            Ok(Route::RotateTenantKey {
                tenant: "acme".into()
            })
        );
        assert_eq!(
            resolve(&Method::POST, "/admin/v1/rotate-root"),
            Ok(Route::RotateRoot)
        );
        assert_eq!(
            resolve(&Method::GET, "/admin/v1/rotate-root"),
            Err(Unrouted::MethodNotAllowed(vec![Method::POST]))
        );
        assert_eq!(
            resolve(&Method::DELETE, "/admin/v1/keys/CO123"),
            Ok(Route::DeleteKey {
                key: "CO123".into()
            })
        );
        assert_eq!(
            resolve(&Method::PUT, "/admin/v1/tenants"),
            Err(Unrouted::MethodNotAllowed(vec![Method::GET, Method::POST]))
        );
        for missing in [
            "/admin/v1/tenant",
            "/admin/v1/tenants/",
            "/admin/v1/tenants/a/b",
            "/admin/v2/tenants",
            "/admin/v1/tenants/a%2Fb/keys",
        ] {
            assert_eq!(
                resolve(&Method::GET, missing),
                Err(Unrouted::NotFound),
                "{missing}"
            );
        }
    }

    #[test]
    fn every_route_builds() {
        for spec in ROUTES {
            let path = spec
                .pattern
                .replace("{name}", "acme")
                .replace("{access_key_id}", "K");
            assert!(
                resolve(&spec.method, &path).is_ok(),
                "{} {path}",
                spec.method
            );
        }
    }
}
