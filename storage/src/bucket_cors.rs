//! Bucket CORS rules: set and cleared by the bucket's tenant, and read without any scope by
//! browser preflights, which carry no credentials.
//!
//! Bucket names are per tenant, so a preflight's bucket name does not say whose bucket it
//! means, and a preflight must not tell anyone which names a tenant uses. The `cors_index`
//! key space maps a bucket name to the tenants whose bucket of that name has CORS rules, and
//! a preflight is answered from those rules alone:
//!
//! - a name under which no tenant published CORS rules reads exactly like a name no tenant
//!   uses, so nothing is learnt about buckets without rules;
//! - when several tenants published rules under one name, a preflight sees the union of
//!   their rules (tenants in id order, each tenant's rules in their own order). The union
//!   rather than the intersection, so that no tenant can break another's browser clients by
//!   publishing narrower rules. A preflight only lets a browser send the actual request:
//!   that request is signed, and its response carries CORS headers from the signing
//!   tenant's own bucket only, so another tenant's rules never let a page read this
//!   tenant's responses;
//! - only the rules are returned, never a tenant id, bucket id or anything else stored.
//!
//! Rules are public by design (any browser is told them), so they are kept in plaintext.

use coffre_crypto::TenantScope;

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::records::{BucketRecord, CorsIndexEntry, CorsRule, Record, TenantRecord, TenantState};
use crate::store::{read, Store};

/// Tenants whose rules one preflight reads at most, so that an unauthenticated request
/// does a bounded amount of work however many tenants share a bucket name.
pub const MAX_PREFLIGHT_TENANTS: usize = 16;

impl Store {
    /// Replaces the CORS rules of bucket `name`; no rules removes the configuration. One
    /// transaction updates the bucket record and the preflight index together.
    /// `NoSuchBucket` if the tenant has no such bucket.
    pub fn set_bucket_cors(
        &self,
        scope: &TenantScope,
        name: &str,
        rules: Vec<CorsRule>,
    ) -> Result<BucketRecord> {
        let tenant = scope.tenant_id();
        let bucket_key = keys::bucket(tenant, name);
        let index_key = keys::cors_index(name, tenant);
        self.transact(Durability::Synced, |tx| {
            // Read in the transaction: a bucket deleted or recreated meanwhile conflicts.
            let mut bucket: BucketRecord =
                read(tx, Cf::Buckets, &bucket_key)?.ok_or(Error::NoSuchBucket)?;
            bucket.cors = rules.clone();
            if bucket.cors.is_empty() {
                tx.delete(Cf::CorsIndex, index_key.clone());
            } else {
                let entry = CorsIndexEntry { bucket: bucket.id };
                tx.put(Cf::CorsIndex, index_key.clone(), entry.encode()?);
            }
            tx.put(Cf::Buckets, bucket_key.clone(), bucket.encode()?);
            Ok(bucket)
        })
    }

    /// The CORS rules that active tenants published for buckets named `name`, for an
    /// unauthenticated preflight (see the module documentation); empty when there are none,
    /// whether or not any tenant has a bucket of that name.
    pub fn preflight_cors_rules(&self, name: &str) -> Result<Vec<CorsRule>> {
        if name.is_empty() || name.as_bytes().contains(&0) {
            return Ok(Vec::new());
        }
        let prefix = keys::cors_index_prefix(name);
        let mut entries = Vec::new();
        {
            let mut cursor = self
                .meta()
                .cursor(Cf::CorsIndex, keys::prefix_end(&prefix))?;
            cursor.seek(&prefix);
            while entries.len() < MAX_PREFLIGHT_TENANTS {
                let Some((key, value)) = cursor.next_entry()? else {
                    break;
                };
                if !key.starts_with(&prefix) {
                    break;
                }
                if let Some(tenant) = keys::cors_index_tenant(&key[prefix.len()..]) {
                    entries.push((tenant, CorsIndexEntry::decode(&value)?));
                }
            }
        }
        let mut rules = Vec::new();
        for (tenant, entry) in entries {
            let tenant_record =
                self.get_record::<TenantRecord>(Cf::Tenants, &keys::tenant(tenant))?;
            if !tenant_record.is_some_and(|t| t.state == TenantState::Active) {
                continue;
            }
            let bucket =
                self.get_record::<BucketRecord>(Cf::Buckets, &keys::bucket(tenant, name))?;
            if let Some(bucket) = bucket.filter(|b| b.id == entry.bucket) {
                rules.extend(bucket.cors);
            }
        }
        Ok(rules)
    }
}
