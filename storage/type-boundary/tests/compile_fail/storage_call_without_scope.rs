// Storage takes a `&TenantScope`, not a tenant id: knowing a tenant's id is not enough to
// reach its data.
use coffre_crypto::TenantId;
use coffre_storage::Store;

fn list_someone_elses_buckets(store: &Store, tenant: TenantId) {
    let _ = store.list_buckets(&tenant);
}

fn list_without_any_scope(store: &Store) {
    let _ = store.bucket("backup");
}

fn main() {}
