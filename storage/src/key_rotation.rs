//! Tenant KEK rotation. A new KEK version becomes current at once: new objects and uploads
//! wrap their DEKs under it, and the tenant's access key secrets are resealed under it in
//! the same synced batch. A background rewrap then moves every existing DEK to it, and the
//! older versions are destroyed once no DEK names them. Object data is never rewritten:
//! only the wrapped DEK in each object and upload record changes.
//!
//! The rewrap runs in bounded steps ([`Store::rewrap_step`]) that the gateway drives. A
//! step handles one batch of records of one key space (uploads in progress, then objects)
//! and writes its cursor into the tenant record, synced: a restart resumes after the last
//! batch written.
//!
//! Concurrency: a record is rewrapped under the locks its writers take (the shared bucket
//! lock, then the upload's or the object key's stripe) and read again under them; the copy
//! the scan saw is only a hint, never written back. An object overwritten meanwhile is
//! rewrapped as it now is, or left alone if its DEK is already current; one deleted
//! meanwhile stays deleted. The rewrap's own writes are buffered: the step's synced cursor
//! write, later in the same write-ahead log, makes them durable with it.
//!
//! Retirement: a pass that finds no DEK left to move ends the rotation, provided it began
//! at least the grace period after the rotation, so that a write that wrapped its DEK
//! under the old version just before the rotation has landed and been seen. The older
//! versions are then removed from the tenant record in one synced write, their tenant keys
//! destroyed in the HSM if they have any (`tenant_keys_in_hsm`), and purged from the store's
//! files, as a deleted tenant's keys are. A rotation's new version gets a tenant key of its
//! own when the setting is on, whatever wrapped the older ones: rotating a tenant created
//! before it moves the tenant's keys into the HSM. A DEK that does not open (a damaged
//! record) blocks the retirement: no KEK that a record still names is destroyed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use coffre_crypto::{
    AdminScope, BucketId, EncryptionError, Kek, KekVersion, MaintenanceScope, ObjectId, TenantId,
    WrappedKek,
};

use crate::cluster::Lease;
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::records::{
    now, KekRotation, Record, RewrapCursor, RewrapPhase, RotationState, TenantRecord, TenantState,
};
use crate::sealed_records::{StoredObject, StoredUpload};
use crate::store::{live_tenant, read as read_in, Store};
use crate::tenant_keys::{count_dek_wrap, dek_context};

/// How the background rewrap proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewrapSettings {
    /// Records examined per step, at most (at least 1).
    pub batch_size: usize,
    /// How long after a rotation the pass that ends it may begin.
    pub retire_grace: Duration,
}

/// Default [`RewrapSettings::batch_size`].
pub const DEFAULT_REWRAP_BATCH: usize = 256;
/// DEKs a KEK version may wrap before the background rotates it: its wraps use random
/// 96-bit nonces, safe for about 2^32 under one key; this leaves a margin of four.
pub const DEFAULT_MAX_DEK_WRAPS: u64 = 1 << 30;

/// Default [`RewrapSettings::retire_grace`].
pub const DEFAULT_RETIRE_GRACE: Duration = Duration::from_secs(60);

impl Default for RewrapSettings {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_REWRAP_BATCH,
            retire_grace: DEFAULT_RETIRE_GRACE,
        }
    }
}

/// What one [`Store::rewrap_step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewrapStep {
    /// Nothing to do for this tenant.
    Idle,
    /// A batch was handled; there is more.
    Progress,
    /// Nothing to do before this long has passed (the grace period).
    Wait(Duration),
    /// The rotation ended: every DEK is under `kek_version`, and the `retired` versions
    /// were destroyed.
    Finished {
        kek_version: KekVersion,
        retired: Vec<KekVersion>,
        rewrapped: u64,
    },
    /// The pass found DEKs under an older version that do not open: the older versions are
    /// kept, and the rewrap stops until a new rotation.
    Blocked { unreadable: u64 },
}

/// A key and its value, as a scan returns them.
type Entry = (Vec<u8>, Vec<u8>);

/// What rewrapping one record came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewrap {
    Rewrapped,
    /// Already under the target version, or gone by the time its lock was held.
    Untouched,
    /// Under an older version, and it does not open.
    Unreadable,
    /// An index entry, not a record.
    Skipped,
}

impl Store {
    /// Creates KEK version n+1 of `tenant` and makes it current, reseals its access key
    /// secrets under it, and records a rotation for the background rewrap to carry out,
    /// all in one synced batch. A rotation already under way starts over towards the new
    /// version (every older version is retired at its end).
    pub fn rotate_tenant_key(&self, _admin: &AdminScope, id: TenantId) -> Result<TenantRecord> {
        self.rotate_kek(id)
    }

    /// How many DEKs each of `tenant`'s KEK versions has wrapped, in committed records.
    pub fn dek_wraps(
        &self,
        _admin: &AdminScope,
        tenant: &TenantRecord,
    ) -> Result<Vec<(KekVersion, u64)>> {
        tenant
            .keks
            .iter()
            .map(|k| Ok((k.kek_version, self.wraps_of(tenant.id, k.kek_version)?)))
            .collect()
    }

    fn wraps_of(&self, tenant: TenantId, version: KekVersion) -> Result<u64> {
        let value = self
            .meta()
            .get(Cf::Usage, &keys::kek_wraps(tenant, version.get()))?;
        let count = value
            .map(|v| crate::meta_store::decode_counters(&v))
            .and_then(|c| c.first().copied())
            .unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Rotates the KEK of every tenant whose current version is due (see below); returns
    /// the tenants rotated and their new versions. Under the key rotation `lease`.
    ///
    /// A version is due once it has wrapped `limit` DEKs, the rewrap's wraps included (they
    /// use nonces like any other), with two exceptions that keep a tenant from rotating in
    /// a loop: none while the rewrap of the previous rotation is under way, and when that
    /// rewrap alone moved `limit` DEKs or more into the version (the tenant holds more live
    /// DEKs than `limit`, so any new version would start worn), the version is due only
    /// once it has wrapped `limit` more, for new writes; a warning says so, once per tenant
    /// and process: the limit should be raised.
    ///
    /// The check also resets the watch that [`Store::watch_dek_wraps`] installed, with what
    /// each tenant may still wrap before it is due.
    pub fn rotate_worn_keks(
        &self,
        _maint: &MaintenanceScope,
        lease: &Lease,
        limit: u64,
    ) -> Result<Vec<(TenantId, KekVersion)>> {
        let watch = &self.shared.keys.wraps;
        let mark = watch.mark();
        let mut rotated = Vec::new();
        let mut headroom = Vec::new();
        let live = self.all_tenants()?.into_iter();
        for tenant in live.filter(|t| t.state != TenantState::Deleting) {
            let (id, version) = (tenant.id, tenant.kek_version);
            let rotation = tenant.rotation.as_ref();
            // The DEKs that the rotation which made the current version moved into it.
            let own_rewrap = rotation
                .filter(|r| r.target == version)
                .map_or(0, |r| r.rewrapped);
            if own_rewrap >= limit && watch.warn_once(id) {
                tracing::warn!(tenant = %id, kek_version = %version, rewrapped = own_rewrap,
                    max_dek_wraps = limit,
                    "the tenant holds more live DEKs than [key_rotation] max_dek_wraps: every \
                     new KEK version starts at the limit with the rewrap, so it is rotated \
                     only after max_dek_wraps more wraps; raise max_dek_wraps");
            }
            if rotation.is_some_and(|r| matches!(r.state, RotationState::Rewrapping(_))) {
                headroom.push((id, version, 0, false));
                continue;
            }
            let due_at = if own_rewrap >= limit {
                own_rewrap.saturating_add(limit)
            } else {
                limit
            };
            let wraps = self.wraps_of(id, version)?;
            if wraps < due_at {
                headroom.push((id, version, due_at - wraps, true));
                continue;
            }
            // Still ours to do? (The rotation itself commits like an admin's.)
            self.transact(Durability::Buffered, |tx| lease.check(tx))?;
            let record = self.rotate_kek(id)?;
            tracing::warn!(tenant = %id, kek_version = %record.kek_version, wraps, limit,
                "tenant KEK rotated: its current version had wrapped its limit of DEKs");
            rotated.push((id, record.kek_version));
            headroom.push((id, record.kek_version, limit, false));
        }
        watch.reset(&mark, headroom);
        Ok(rotated)
    }

    /// Calls `hook` as soon as this store's own commits may have brought a tenant's current
    /// KEK version to the wraps that make it due for rotation (`limit` for a version not yet
    /// seen by [`Store::rotate_worn_keks`], which decides from the stored counts). Cheap:
    /// counted in memory with each wrap. Wraps committed by other nodes sharing the
    /// metadata store are not seen, only by the next check.
    pub fn watch_dek_wraps(&self, limit: u64, hook: impl Fn() + Send + Sync + 'static) {
        self.shared.keys.wraps.install(limit, Arc::new(hook));
    }

    /// Whether [`Store::rotate_worn_keks`] should run again shortly: the watch fired for a
    /// tenant that the last check did not find due, and the commit that counted the wrap
    /// may have been still in flight when it read the counts (for a few seconds at most).
    pub fn worn_kek_check_pending(&self) -> bool {
        self.shared.keys.wraps.pending()
    }

    /// Creates KEK version n+1 of `id` and makes it current (see `rotate_tenant_key`).
    fn rotate_kek(&self, id: TenantId) -> Result<TenantRecord> {
        let mut generated: Option<(Arc<Kek>, WrappedKek)> = None;
        let (tenant, version, kek, resealed) = self.transact(Durability::Synced, |tx| {
            let mut tenant = live_tenant(tx, id)?;
            let newest = tenant
                .keks
                .iter()
                .map(|k| k.kek_version)
                .fold(tenant.kek_version, KekVersion::max);
            let version = newest
                .next()
                .ok_or(EncryptionError::Refused("KEK versions exhausted"))?;
            // A run again after a conflict reuses the KEK it made, if still the one needed
            // (another rotation committing first moves the version on).
            let (kek, wrapped) = match &generated {
                Some((kek, wrapped)) if wrapped.kek_version == version => {
                    (Arc::clone(kek), Clone::clone(wrapped))
                }
                _ => {
                    let made = self.shared.keys.generate_version(id, version)?;
                    generated = Some(made.clone());
                    made
                }
            };
            let resealed = self.reseal_access_keys(id, &kek, tx)?;
            tenant.keks.push(wrapped);
            tenant.kek_version = version;
            let started = now();
            tenant.rotation = Some(KekRotation {
                target: version,
                started,
                passes: 1,
                rewrapped: 0,
                scanned: 0,
                state: RotationState::Rewrapping(RewrapCursor::first_phase(started)),
            });
            tx.put(Cf::Tenants, keys::tenant(id), tenant.encode()?);
            Ok((tenant, version, kek, resealed))
        })?;
        self.shared.keys.remember(id, kek);
        tracing::info!(tenant = %id, kek_version = %version, resealed, "tenant KEK rotated");
        Ok(tenant)
    }

    /// The tenants whose KEK rotation has work left for [`Store::rewrap_step`].
    pub fn tenants_rewrapping(&self, _maint: &MaintenanceScope) -> Result<Vec<TenantId>> {
        let mut found = Vec::new();
        let mut cursor = self.meta().cursor(Cf::Tenants, None)?;
        cursor.seek(&[]);
        while let Some((_, value)) = cursor.next_entry()? {
            let tenant = TenantRecord::decode(&value)?;
            if tenant.state != TenantState::Deleting
                && tenant.rotation.as_ref().is_some_and(KekRotation::has_work)
            {
                found.push(tenant.id);
            }
        }
        Ok(found)
    }

    /// One bounded step of `tenant`'s rewrap: a batch of at most `settings.batch_size`
    /// records, or the end of a pass, or the retirement of the older KEK versions.
    /// Under the key rotation `lease`, which every commit of the step checks.
    pub fn rewrap_step(
        &self,
        _maint: &MaintenanceScope,
        tenant: TenantId,
        settings: &RewrapSettings,
        lease: &Lease,
    ) -> Result<RewrapStep> {
        let Some(record) = self.get_record::<TenantRecord>(Cf::Tenants, &keys::tenant(tenant))?
        else {
            return Ok(RewrapStep::Idle);
        };
        let Some(rotation) = record
            .rotation
            .filter(|_| record.state != TenantState::Deleting)
        else {
            return Ok(RewrapStep::Idle);
        };
        let cursor = match &rotation.state {
            RotationState::Finished { purged: false, .. } => {
                self.purge_retired(tenant, rotation.target, lease)?;
                return Ok(RewrapStep::Idle);
            }
            RotationState::Finished { .. } => return Ok(RewrapStep::Idle),
            RotationState::Rewrapping(cursor) => cursor.clone(),
        };
        match cursor.phase {
            RewrapPhase::Blocked => Ok(RewrapStep::Idle),
            RewrapPhase::Settling => {
                let wait = until(rotation.started, settings.retire_grace);
                if !wait.is_zero() {
                    return Ok(RewrapStep::Wait(wait));
                }
                let mut next = rotation.clone();
                next.passes = next.passes.saturating_add(1);
                next.state = RotationState::Rewrapping(RewrapCursor::first_phase(now()));
                self.save_rotation(tenant, &rotation, next, lease)?;
                Ok(RewrapStep::Progress)
            }
            RewrapPhase::Uploads | RewrapPhase::Objects => {
                match self.rewrap_batch(tenant, &rotation, &cursor, settings, lease) {
                    // Deleted meanwhile: the deletion purges what is left.
                    Err(Error::NoSuchTenant) => Ok(RewrapStep::Idle),
                    result => result,
                }
            }
        }
    }

    fn rewrap_batch(
        &self,
        tenant: TenantId,
        rotation: &KekRotation,
        cursor: &RewrapCursor,
        settings: &RewrapSettings,
        lease: &Lease,
    ) -> Result<RewrapStep> {
        let target = self.kek(tenant, rotation.target)?;
        let cf = match cursor.phase {
            RewrapPhase::Uploads => Cf::Uploads,
            _ => Cf::Objects,
        };
        let prefix = keys::tenant(tenant);
        let (entries, exhausted) = self.scan_after(cf, &prefix, &cursor.after, settings)?;

        let (mut scanned, mut rewrapped, mut unreadable) = (0u64, 0u64, 0u64);
        for (key, value) in &entries {
            let outcome = match cf {
                Cf::Uploads => self.rewrap_upload(tenant, key, value, &target)?,
                _ => self.rewrap_object(tenant, key, value, &target)?,
            };
            match outcome {
                Rewrap::Rewrapped => rewrapped += 1,
                Rewrap::Unreadable => unreadable += 1,
                Rewrap::Untouched | Rewrap::Skipped => {}
            }
            if outcome != Rewrap::Skipped {
                scanned += 1;
            }
        }

        let mut next = rotation.clone();
        next.scanned = next.scanned.saturating_add(scanned);
        next.rewrapped = next.rewrapped.saturating_add(rewrapped);
        let mut moved = cursor.clone();
        moved.pass_rewrapped = moved.pass_rewrapped.saturating_add(rewrapped);
        moved.pass_unreadable = moved.pass_unreadable.saturating_add(unreadable);
        match (exhausted, cursor.phase) {
            (false, _) => {
                if let Some((last, _)) = entries.last() {
                    moved.after.clone_from(last);
                }
            }
            (true, RewrapPhase::Uploads) => {
                moved.phase = RewrapPhase::Objects;
                moved.after.clear();
            }
            (true, _) => {
                moved.after.clear();
                if moved.pass_unreadable > 0 {
                    moved.phase = RewrapPhase::Blocked;
                    tracing::warn!(
                        tenant = %tenant,
                        unreadable = moved.pass_unreadable,
                        "KEK rotation blocked: some DEKs under older KEK versions do not open; \
                         the older versions are kept"
                    );
                } else if moved.pass_rewrapped == 0
                    && rotation
                        .started
                        .checked_add(settings.retire_grace)
                        .is_some_and(|ready| moved.pass_started >= ready)
                {
                    return self.retire_older_keks(tenant, rotation, next, lease);
                } else {
                    moved.phase = RewrapPhase::Settling;
                }
            }
        }
        let blocked = (moved.phase == RewrapPhase::Blocked).then_some(moved.pass_unreadable);
        next.state = RotationState::Rewrapping(moved);
        self.save_rotation(tenant, rotation, next, lease)?;
        Ok(match blocked {
            Some(unreadable) => RewrapStep::Blocked { unreadable },
            None => RewrapStep::Progress,
        })
    }

    /// Up to `settings.batch_size` entries of `cf` under `prefix`, after the key `after`
    /// (from the start when empty), and whether the scan reached the end of the prefix.
    fn scan_after(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: &[u8],
        settings: &RewrapSettings,
    ) -> Result<(Vec<Entry>, bool)> {
        let start = if after.is_empty() {
            prefix.to_vec()
        } else {
            // The smallest key greater than `after`.
            [after, &[0]].concat()
        };
        let mut cursor = self.meta().cursor(cf, keys::prefix_end(prefix))?;
        cursor.seek(&start);
        let mut entries = Vec::new();
        while entries.len() < settings.batch_size.max(1) {
            match cursor.next_entry()? {
                Some((key, value)) if key.starts_with(prefix) => entries.push((key, value)),
                _ => return Ok((entries, true)),
            }
        }
        Ok((entries, false))
    }

    /// Rewraps the DEK of the object at `db_key` (`scanned`: its value as the scan saw it)
    /// under `target`, under the object's lock and as the record now is.
    fn rewrap_object(
        &self,
        tenant: TenantId,
        db_key: &[u8],
        scanned: &[u8],
        target: &Kek,
    ) -> Result<Rewrap> {
        let Ok(hint) = StoredObject::decode(scanned) else {
            tracing::warn!(tenant = %tenant, "KEK rotation: an object record does not decode");
            return Ok(Rewrap::Unreadable);
        };
        if hint.dek.kek_version >= target.version() {
            return Ok(Rewrap::Untouched);
        }
        let bucket = bucket_of(db_key)?;
        self.transact(Durability::Buffered, |tx| {
            // A tenant being deleted is purged as it is: leave it alone.
            live_tenant(tx, tenant)?;
            let Some(mut stored) = read_in::<StoredObject>(tx, Cf::Objects, db_key)? else {
                return Ok(Rewrap::Untouched);
            };
            if stored.dek.kek_version >= target.version() {
                return Ok(Rewrap::Untouched);
            }
            let context = dek_context(tenant, bucket, &stored.key, stored.id);
            let old = self.kek(tenant, stored.dek.kek_version)?;
            let dek = match old.unwrap_dek(&stored.dek, &context) {
                Ok(dek) => dek,
                Err(e) if e.is_integrity_failure() => {
                    tracing::warn!(tenant = %tenant, key = %stored.key, error = %e,
                        "KEK rotation: an object's DEK does not open");
                    return Ok(Rewrap::Unreadable);
                }
                Err(e) => return Err(e.into()),
            };
            stored.dek = target.wrap_dek(&dek, &context)?;
            count_dek_wrap(tx, &self.shared.keys.wraps, tenant, target.version());
            tx.put(Cf::Objects, db_key.to_vec(), stored.encode()?);
            Ok(Rewrap::Rewrapped)
        })
    }

    /// Rewraps the DEK of the upload whose primary record is at `db_key`, under the
    /// upload's lock and as the record now is; both copies of the record (by id, and in the
    /// listing index) are written together.
    fn rewrap_upload(
        &self,
        tenant: TenantId,
        db_key: &[u8],
        scanned: &[u8],
        target: &Kek,
    ) -> Result<Rewrap> {
        let Some(id) = upload_of(db_key) else {
            return Ok(Rewrap::Skipped);
        };
        let Ok(hint) = StoredUpload::decode(scanned) else {
            tracing::warn!(tenant = %tenant, "KEK rotation: an upload record does not decode");
            return Ok(Rewrap::Unreadable);
        };
        if hint.dek.kek_version >= target.version() {
            return Ok(Rewrap::Untouched);
        }
        let bucket = bucket_of(db_key)?;
        self.transact(Durability::Buffered, |tx| {
            live_tenant(tx, tenant)?;
            let Some(mut stored) = read_in::<StoredUpload>(tx, Cf::Uploads, db_key)? else {
                return Ok(Rewrap::Untouched);
            };
            if stored.dek.kek_version >= target.version() {
                return Ok(Rewrap::Untouched);
            }
            let context = dek_context(tenant, bucket, &stored.key, id);
            let old = self.kek(tenant, stored.dek.kek_version)?;
            let dek = match old.unwrap_dek(&stored.dek, &context) {
                Ok(dek) => dek,
                Err(e) if e.is_integrity_failure() => {
                    tracing::warn!(tenant = %tenant, key = %stored.key, error = %e,
                        "KEK rotation: an upload's DEK does not open");
                    return Ok(Rewrap::Unreadable);
                }
                Err(e) => return Err(e.into()),
            };
            stored.dek = target.wrap_dek(&dek, &context)?;
            count_dek_wrap(tx, &self.shared.keys.wraps, tenant, target.version());
            let value = stored.encode()?;
            tx.put(
                Cf::Uploads,
                keys::upload_by_key(tenant, bucket, stored.key.as_bytes(), id),
                value.clone(),
            );
            tx.put(Cf::Uploads, db_key.to_vec(), value);
            Ok(Rewrap::Rewrapped)
        })
    }

    /// Replaces the tenant's rotation `read` by `next`, synced, unless the rotation changed
    /// since it was read (a new one began): that one's progress wins.
    fn save_rotation(
        &self,
        tenant: TenantId,
        read: &KekRotation,
        next: KekRotation,
        lease: &Lease,
    ) -> Result<()> {
        self.transact(Durability::Synced, |tx| {
            lease.check(tx)?;
            let Some(mut record) = read_in::<TenantRecord>(tx, Cf::Tenants, &keys::tenant(tenant))?
            else {
                return Ok(());
            };
            if record.state == TenantState::Deleting || record.rotation.as_ref() != Some(read) {
                return Ok(());
            }
            record.rotation = Some(next.clone());
            tx.put(Cf::Tenants, keys::tenant(tenant), record.encode()?);
            Ok(())
        })
    }

    /// The end of a rotation: no DEK is left under an older KEK version, so those versions
    /// are destroyed (record written, synced), then purged from the store's files.
    fn retire_older_keks(
        &self,
        tenant: TenantId,
        read: &KekRotation,
        mut next: KekRotation,
        lease: &Lease,
    ) -> Result<RewrapStep> {
        let mut gone = false;
        let destroyed = self.destroy_retired_keks(|tx| {
            lease.check(tx)?;
            let Some(mut record) = read_in::<TenantRecord>(tx, Cf::Tenants, &keys::tenant(tenant))?
            else {
                gone = true;
                return Ok(None);
            };
            if record.state == TenantState::Deleting || record.rotation.as_ref() != Some(read) {
                return Ok(None);
            }
            // Access key secrets moved with the rotation; any still under an older version
            // (there should be none) moves now, before that version goes.
            let kek = self.kek(tenant, read.target)?;
            self.reseal_access_keys(tenant, &kek, tx)?;
            let retired: Vec<KekVersion> = record
                .keks
                .iter()
                .map(|k| k.kek_version)
                .filter(|v| *v < read.target)
                .collect();
            record.keks.retain(|k| k.kek_version >= read.target);
            next.state = RotationState::Finished {
                finished: now(),
                destroyed: retired.clone(),
                purged: false,
            };
            record.rotation = Some(next.clone());
            Ok(Some((record, retired)))
        })?;
        let Some((_, retired)) = destroyed else {
            return Ok(if gone {
                RewrapStep::Idle
            } else {
                RewrapStep::Progress
            });
        };
        self.purge_retired(tenant, read.target, lease)?;
        Ok(RewrapStep::Finished {
            kek_version: read.target,
            retired,
            rewrapped: next.rewrapped,
        })
    }

    /// Destroys the tenant keys in the HSM of the KEK versions a finished rotation
    /// retired, makes the store's files drop the stale copies of those versions, then
    /// records that it did (until then, each step tries again).
    fn purge_retired(&self, tenant: TenantId, target: KekVersion, lease: &Lease) -> Result<()> {
        self.destroy_hsm_tenant_keys(tenant, Some(target))?;
        self.purge_shredded_keys()?;
        self.transact(Durability::Synced, |tx| {
            lease.check(tx)?;
            let Some(mut record) = read_in::<TenantRecord>(tx, Cf::Tenants, &keys::tenant(tenant))?
            else {
                return Ok(());
            };
            match &mut record.rotation {
                Some(KekRotation {
                    target: t,
                    state: RotationState::Finished { purged, .. },
                    ..
                }) if *t == target && !*purged => *purged = true,
                _ => return Ok(()),
            }
            tx.put(Cf::Tenants, keys::tenant(tenant), record.encode()?);
            Ok(())
        })
    }
}

impl KekRotation {
    /// Whether [`Store::rewrap_step`] has anything left to do.
    pub fn has_work(&self) -> bool {
        match &self.state {
            RotationState::Rewrapping(cursor) => cursor.phase != RewrapPhase::Blocked,
            RotationState::Finished { purged, .. } => !purged,
        }
    }
}

impl RewrapCursor {
    fn first_phase(pass_started: SystemTime) -> Self {
        Self {
            phase: RewrapPhase::Uploads,
            after: Vec::new(),
            pass_started,
            pass_rewrapped: 0,
            pass_unreadable: 0,
        }
    }
}

/// How long until `grace` has passed since `since` (zero once it has).
fn until(since: SystemTime, grace: Duration) -> Duration {
    since
        .checked_add(grace)
        .and_then(|ready| ready.duration_since(SystemTime::now()).ok())
        .unwrap_or(Duration::ZERO)
}

/// The bucket id of an `objects` or `uploads` key: tenant id | bucket id | ...
fn bucket_of(db_key: &[u8]) -> Result<BucketId> {
    db_key
        .get(16..32)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(BucketId::from_bytes)
        .ok_or_else(|| Error::Corrupt("a record key too short for a bucket id".into()))
}

/// The upload id of a primary `uploads` key ([`keys::upload_by_id`]); `None` for the
/// listing index's entries.
fn upload_of(db_key: &[u8]) -> Option<ObjectId> {
    let (head, id) = db_key.split_at_checked(33)?;
    if head.last() != Some(&b'I') {
        return None;
    }
    <[u8; 16]>::try_from(id).ok().map(ObjectId::from_bytes)
}

#[cfg(test)]
mod tests;
