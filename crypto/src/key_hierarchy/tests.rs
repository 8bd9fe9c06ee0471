use proptest::prelude::*;

use super::*;
use crate::ids::{BucketId, ObjectId, TenantId};
use crate::EncryptionError;

struct Owned {
    tenant: TenantId,
    bucket: BucketId,
    key: String,
    object: ObjectId,
    version: u64,
}

impl Owned {
    fn random() -> Self {
        Self {
            tenant: TenantId::random(),
            bucket: BucketId::random(),
            key: "photos/2024/cat.jpg".to_owned(),
            object: ObjectId::random(),
            version: 7,
        }
    }

    fn context(&self) -> DekContext<'_> {
        DekContext {
            tenant: self.tenant,
            bucket: self.bucket,
            key: &self.key,
            object: self.object,
            version: self.version,
        }
    }
}

#[test]
fn a_wrapped_dek_opens_under_its_kek_and_context() {
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let owned = Owned::random();
    let dek = Dek::generate();
    let wrapped = kek.wrap_dek(&dek, &owned.context()).unwrap();
    assert_eq!(wrapped.kek_version, KekVersion::FIRST);
    assert_eq!(wrapped.ciphertext.len(), 48);
    let opened = kek.unwrap_dek(&wrapped, &owned.context()).unwrap();
    assert_eq!(opened.secret_bytes(), dek.secret_bytes());

    let json = serde_json::to_string(&wrapped).unwrap();
    assert_eq!(serde_json::from_str::<WrappedDek>(&json).unwrap(), wrapped);
}

#[test]
fn another_kek_or_kek_version_does_not_open_it() {
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let owned = Owned::random();
    let wrapped = kek.wrap_dek(&Dek::generate(), &owned.context()).unwrap();
    let other = Kek::generate(KekVersion::FIRST).unwrap();
    assert!(matches!(
        other.unwrap_dek(&wrapped, &owned.context()),
        Err(EncryptionError::Integrity(_))
    ));
    let newer = Kek::generate(KekVersion::new(2)).unwrap();
    let err = newer.unwrap_dek(&wrapped, &owned.context()).unwrap_err();
    assert!(err.is_integrity_failure(), "{err}");
    // Claiming the other version does not help: the version is in the associated data.
    let mut relabelled = wrapped.clone();
    relabelled.kek_version = KekVersion::new(2);
    assert!(newer.unwrap_dek(&relabelled, &owned.context()).is_err());
}

#[test]
fn secrets_are_redacted_in_debug() {
    let dek = Dek::generate();
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let hex_dek = hex::encode(dek.secret_bytes());
    let hex_kek = hex::encode(kek.secret_bytes());
    assert!(!format!("{dek:?}").contains(&hex_dek));
    assert!(!format!("{kek:?}").contains(&hex_kek));
    assert_eq!(
        format!("{:?}", dek.part_key(0).unwrap()),
        "PartKey(<redacted>)"
    );
    assert_eq!(
        format!("{:?}", dek.value_key().unwrap()),
        "ValueKey(<redacted>)"
    );
}

#[test]
fn sealed_values_are_bound_to_their_field_and_object() {
    let dek = Dek::generate();
    let values = dek.value_key().unwrap();
    let sealed = values
        .seal(b"etag", b"9b2cf535f27731c974343645a3985328")
        .unwrap();
    assert!(!sealed.windows(8).any(|w| w == b"9b2cf535".as_slice()));
    assert_eq!(
        values.open(b"etag", &sealed).unwrap(),
        b"9b2cf535f27731c974343645a3985328"
    );
    assert!(values.open(b"checksum-crc32", &sealed).is_err());
    assert!(Dek::generate()
        .value_key()
        .unwrap()
        .open(b"etag", &sealed)
        .is_err());
    assert!(values.open(b"etag", &sealed[..sealed.len() - 1]).is_err());
    assert!(values.open(b"etag", &[0u8; 5]).is_err());
    let empty = values.seal(b"meta:x", b"").unwrap();
    assert!(values.open(b"meta:x", &empty).unwrap().is_empty());
}

#[test]
fn part_and_value_keys_differ() {
    // Same plaintext and nonce under two derived keys must not give the same bytes.
    let dek = Dek::generate();
    let seal = |key: crate::PartKey| {
        let mut buf = vec![0u8; 32];
        let _tag = key.seal_in_place([0u8; 12], &mut buf).unwrap();
        buf
    };
    assert_ne!(
        seal(dek.part_key(0).unwrap()),
        seal(dek.part_key(1).unwrap())
    );
}

#[derive(Debug, Clone)]
enum Change {
    Tenant,
    Bucket,
    Key(String),
    Object,
    Version(u64),
    NonceBit(usize),
    CiphertextBit(usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Tenant),
        Just(Change::Bucket),
        ".{0,40}".prop_map(Change::Key),
        Just(Change::Object),
        any::<u64>().prop_map(Change::Version),
        (0usize..96).prop_map(Change::NonceBit),
        (0usize..384).prop_map(Change::CiphertextBit),
    ]
}

proptest! {
    #[test]
    fn a_wrapped_dek_with_any_context_field_changed_does_not_open(change in change()) {
        let kek = Kek::generate(KekVersion::new(3)).unwrap();
        let owned = Owned::random();
        let mut wrapped = kek.wrap_dek(&Dek::generate(), &owned.context()).unwrap();
        let mut other = Owned { key: owned.key.clone(), ..owned };
        match change {
            Change::Tenant => other.tenant = TenantId::random(),
            Change::Bucket => other.bucket = BucketId::random(),
            Change::Key(key) => {
                prop_assume!(key != other.key);
                other.key = key;
            }
            Change::Object => other.object = ObjectId::random(),
            Change::Version(v) => {
                prop_assume!(v != other.version);
                other.version = v;
            }
            Change::NonceBit(bit) => wrapped.nonce[bit / 8] ^= 1 << (bit % 8),
            Change::CiphertextBit(bit) => wrapped.ciphertext[bit / 8] ^= 1 << (bit % 8),
        }
        let result = kek.unwrap_dek(&wrapped, &other.context());
        prop_assert!(matches!(result, Err(EncryptionError::Integrity(_))));
    }
}
