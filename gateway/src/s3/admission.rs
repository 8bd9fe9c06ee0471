//! Requests in flight, bounded globally and per tenant. A request takes a global permit as
//! it arrives and a tenant permit once it is authenticated; both are held until its
//! response body has been sent (or the connection dropped), since an unread download holds
//! the server's memory as much as a slow upload. Beyond either bound the request is refused
//! at once with 503 SlowDown: nothing queues, so one tenant's flood cannot delay another's
//! requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{S3Error, S3ErrorCode};

pub struct Admission {
    global: Arc<Semaphore>,
    per_tenant: usize,
    /// Tenant id -> requests in flight; an entry is removed when it falls to zero, so the
    /// map holds at most as many entries as requests in flight.
    tenants: Arc<Mutex<HashMap<String, usize>>>,
}

/// A request's share of the global bound.
pub struct GlobalPermit {
    _permit: OwnedSemaphorePermit,
}

/// A request's share of its tenant's bound.
pub struct TenantPermit {
    tenants: Arc<Mutex<HashMap<String, usize>>>,
    tenant: String,
}

impl Admission {
    pub fn new(global: usize, per_tenant: usize) -> Self {
        Self {
            global: Arc::new(Semaphore::new(global)),
            per_tenant,
            tenants: Arc::default(),
        }
    }

    /// A permit for one more request, or SlowDown when the server is at its bound.
    pub fn admit(&self) -> Result<GlobalPermit, S3Error> {
        self.global
            .clone()
            .try_acquire_owned()
            .map(|permit| GlobalPermit { _permit: permit })
            .map_err(|_| slow_down("The server is serving as many requests as it accepts."))
    }

    /// A permit for one more request of `tenant`, or SlowDown when the tenant is at its
    /// bound.
    pub fn admit_tenant(&self, tenant: &str) -> Result<TenantPermit, S3Error> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        let count = tenants.entry(tenant.to_owned()).or_insert(0);
        if *count >= self.per_tenant {
            return Err(slow_down(
                "Your account is running as many concurrent requests as it may.",
            ));
        }
        *count += 1;
        Ok(TenantPermit {
            tenants: self.tenants.clone(),
            tenant: tenant.to_owned(),
        })
    }
}

impl Drop for TenantPermit {
    fn drop(&mut self) {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = tenants.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                tenants.remove(&self.tenant);
            }
        }
    }
}

fn slow_down(message: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::SlowDown,
        format!("{message} Please reduce your request rate."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_bound_refuses_with_slow_down_and_frees_on_drop() {
        let admission = Admission::new(2, 2);
        let first = admission.admit();
        let second = admission.admit();
        assert!(first.is_ok() && second.is_ok());
        match admission.admit() {
            Err(e) => assert_eq!(e.code(), S3ErrorCode::SlowDown),
            Ok(_) => panic!("a third request was admitted over a bound of 2"),
        }
        drop(first);
        assert!(admission.admit().is_ok());
    }

    #[test]
    fn one_tenant_at_its_bound_leaves_room_for_another() {
        let admission = Admission::new(10, 2);
        let a1 = admission.admit_tenant("a");
        let a2 = admission.admit_tenant("a");
        assert!(a1.is_ok() && a2.is_ok());
        match admission.admit_tenant("a") {
            Err(e) => assert_eq!(e.code(), S3ErrorCode::SlowDown),
            Ok(_) => panic!("tenant a went over its bound"),
        }
        assert!(admission.admit_tenant("b").is_ok());
        drop(a1);
        assert!(admission.admit_tenant("a").is_ok());
        drop(a2);
        // Entries at zero are removed: the map does not grow with the tenants seen.
        let admitted = admission.admit_tenant("c");
        drop(admitted);
        let tenants = admission
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        assert!(!tenants.contains_key("c"), "{tenants:?}");
    }
}
