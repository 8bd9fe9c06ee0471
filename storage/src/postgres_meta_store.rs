//! The PostgreSQL implementation of [`MetaStore`], for several gateways sharing one metadata
//! store. Behind the `postgres` feature (on by default).
//!
//! Layout: one table per key space, `coffre_<name> (key bytea PRIMARY KEY, value bytea)`.
//! `bytea` compares as raw bytes (no collation), so scans and listings come out in the same
//! order as on RocksDB. Counter spaces (`usage`, `refs`) also have `coffre_<name>_deltas
//! (key, id, deltas)`: a counter addition inserts a row of its own instead of updating the
//! counter's row, so concurrent additions never touch the same row and never conflict; a
//! read adds the base value and the deltas up.
//!
//! Transactions run at `SERIALIZABLE`: PostgreSQL's serializable snapshot isolation detects
//! the same conflicts as the in-process stores' validation (a key or a scanned range changed
//! by a concurrent commit), and reports them as serialization failures (SQLSTATE 40001) or
//! deadlocks (40P01), which become [`Error::Conflict`] for `Store::transact` to retry.
//! Writes are buffered by [`crate::Tx`] and sent at commit, a few statements per key space
//! touched. Nothing relies on advisory locks, LISTEN/NOTIFY or other features that
//! PostgreSQL-protocol distributed engines lack.
//!
//! Two connection pools: one for transactions, one for plain reads and listings (and
//! [`TxReads::peek`]), so that a transaction waiting for a read connection can never hold
//! the last connection another transaction needs.
//!
//! TLS to the database ([`PostgresTls`], libpq's `sslmode` names): `disable`, `require`
//! (encrypted, nothing verified) or `verify-full` (the server's certificate chains to the
//! trusted CAs and names the host connected to), with rustls on the aws-lc-rs provider, and
//! optionally a client certificate. Both pools connect the same way.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::Client;
use r2d2::{Pool, PooledConnection};
use rand::RngCore;

use crate::error::{Error, Result};
use crate::meta_store::{
    add_counters, decode_counters, encode_counters, Batch, BatchOp, Cf, Cursor, Durability,
    MetaStore, MetaStoreStats, TxReads,
};

/// The longest a statement may run before the server cancels it (503 to the client).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a statement waits for a row lock (then a conflict, run again).
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// A transaction left open this long (its node paused or gone) is ended by the server.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The schema this build creates and understands.
pub const SCHEMA_VERSION: i32 = 1;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgresql://user@host:port/database` (a password in it is used, but prefer
    /// `password`). TLS is set by libpq's parameters in its query: `sslmode` (`disable`,
    /// `require` or `verify-full`; without it, `disable` for a loopback host or a Unix
    /// socket and `verify-full` otherwise), `sslrootcert` (PEM CAs to trust; without it,
    /// the system's), `sslcert` and `sslkey` (a client certificate; the key file must not
    /// be readable by others). See [`PostgresTls::from_url`].
    pub url: String,
    /// Read from the configured `password_file`; never logged.
    pub password: Option<String>,
    /// Connections for transactions; as many for plain reads.
    pub pool_size: u32,
    /// How long a request waits for a connection or a connection attempt before it is
    /// answered `ServiceUnavailable`.
    pub connect_timeout: Duration,
}

type Connection = PooledConnection<Manager>;

/// The pools' connection manager: connects with the TLS settings, and tells why a connection
/// failed (the client's own message is only "error performing TLS handshake" or "db error":
/// the certificate problem, or the server's refusal, is in its causes).
struct Manager {
    config: postgres::Config,
    tls: tls::MakeRustlsConnect,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Session;
    type Error = ConnectError;

    fn connect(&self) -> std::result::Result<Session, ConnectError> {
        self.config
            .connect(self.tls.clone())
            .map(|client| Session {
                client: Some(client),
                prepared: Default::default(),
            })
            .map_err(|e| ConnectError::new(&e))
    }

    fn is_valid(&self, session: &mut Session) -> std::result::Result<(), ConnectError> {
        session
            .simple_query("")
            .map(drop)
            .map_err(|e| ConnectError::new(&e))
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        session.is_closed()
    }
}

/// A pooled connection, with the statements it prepared: the reads here are a handful of
/// statements, each prepared once per connection (a statement given as text is prepared
/// again at every call: one more round trip, and a parse and plan on the server).
struct Session {
    /// Always `Some` but while the session is dropped.
    client: Option<Client>,
    prepared: std::collections::HashMap<String, postgres::Statement>,
}

impl Drop for Session {
    /// The client's own drop blocks on its runtime to say goodbye to the server, which
    /// panics on a thread that drives async tasks (a pool dropped by the gateway's last
    /// task at shutdown): it is dropped on a thread of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let closing = std::thread::Builder::new()
                .name("coffre-pg-close".into())
                .spawn(move || drop(client));
            if let Err(e) = closing {
                tracing::debug!(%e, "no thread to close a metadata connection: left to the exit");
            }
        }
    }
}

impl Session {
    /// `sql`, prepared on this connection.
    fn statement(
        &mut self,
        sql: &str,
    ) -> std::result::Result<postgres::Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.prepare(sql)?;
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl std::ops::Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        match &self.client {
            Some(client) => client,
            None => unreachable!("a session's client is taken only by its drop"),
        }
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Client {
        match &mut self.client {
            Some(client) => client,
            None => unreachable!("a session's client is taken only by its drop"),
        }
    }
}

/// A failed connection attempt, with its causes.
#[derive(Debug)]
struct ConnectError(String);

impl ConnectError {
    fn new(error: &dyn std::error::Error) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self(message)
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// Logs each failed connection attempt (a request waiting for a connection gets the last
/// one's reason in its error, too).
#[derive(Debug)]
struct LogConnectError;

impl r2d2::HandleError<ConnectError> for LogConnectError {
    fn handle_error(&self, error: ConnectError) {
        tracing::warn!(%error, "cannot connect to the metadata database");
    }
}

pub struct PostgresMetaStore {
    transactions: Pool<Manager>,
    reads: Pool<Manager>,
}

impl PostgresMetaStore {
    /// Connects, then creates the schema or checks that this build understands it.
    pub fn open(config: &PostgresConfig) -> Result<Self> {
        let (url, tls) = PostgresTls::from_url(&config.url)?;
        let mut pg: postgres::Config = url
            .parse()
            .map_err(|e| Error::InvalidConfig(format!("metadata url: {e}")))?;
        let mode = tls
            .mode
            .unwrap_or_else(|| TlsMode::default_for(pg.get_hosts()));
        let connector = tls::MakeRustlsConnect::new(mode, &tls)?;
        pg.ssl_mode(match mode {
            TlsMode::Disable => postgres::config::SslMode::Disable,
            TlsMode::Require | TlsMode::VerifyFull => postgres::config::SslMode::Require,
        });
        if let Some(password) = &config.password {
            pg.password(password);
        }
        pg.connect_timeout(config.connect_timeout);
        // No wait on the database without a deadline: a statement, a lock wait, a
        // transaction left open by a paused node. Added to whatever options the URL has.
        // And no sequential scans: under serializable isolation a sequential scan locks the
        // whole table against every concurrent writer, and every statement here is a key
        // lookup or a key-range scan, which the primary key's index serves (a small table,
        // as every table starts, would otherwise be scanned). `bytea` values read in the
        // text form (a transaction's first read, sent with its BEGIN) come as hex.
        let options = format!(
            "{} -c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={} \
             -c enable_seqscan=off -c bytea_output=hex",
            pg.get_options().unwrap_or(""),
            STATEMENT_TIMEOUT.as_millis(),
            LOCK_TIMEOUT.as_millis(),
            IDLE_IN_TRANSACTION_TIMEOUT.as_millis(),
        );
        pg.options(options.trim());
        // A dead peer is noticed within seconds, not after the kernel's TCP timeout.
        pg.keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .tcp_user_timeout(Duration::from_secs(10));
        let pool = |size: u32| {
            Pool::builder()
                .max_size(size.max(1))
                .min_idle(Some(0))
                .connection_timeout(config.connect_timeout)
                .test_on_check_out(false)
                .error_handler(Box::new(LogConnectError))
                .build_unchecked(Manager {
                    config: pg.clone(),
                    tls: connector.clone(),
                })
        };
        let store = Self {
            transactions: pool(config.pool_size),
            reads: pool(config.pool_size),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Creates the tables on an empty database; refuses a schema newer than this build.
    /// Several nodes starting together race harmlessly: the loser's transaction fails and
    /// is retried, then finds the schema there.
    fn migrate(&self) -> Result<()> {
        for _ in 0..5 {
            match self.try_migrate() {
                Err(Error::Conflict) => std::thread::sleep(Duration::from_millis(50)),
                other => return other,
            }
        }
        Err(Error::Conflict)
    }

    fn try_migrate(&self) -> Result<()> {
        let mut client = connection(&self.transactions)?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .map_err(pg_error)?;
        let result = (|| {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS coffre_schema (version integer NOT NULL)",
                )
                .map_err(pg_error)?;
            let found: Option<i32> = client
                .query_opt("SELECT max(version) FROM coffre_schema", &[])
                .map_err(pg_error)?
                .and_then(|row| row.get(0));
            match found {
                Some(version) if version > SCHEMA_VERSION => Err(Error::InvalidConfig(format!(
                    "the metadata database has schema version {version}, newer than this \
                     build's {SCHEMA_VERSION}: run a Coffre at least as new as the one that \
                     wrote it"
                ))),
                Some(_) => Ok(()),
                None => {
                    let mut ddl = String::new();
                    for cf in Cf::ALL {
                        let table = table(cf);
                        ddl.push_str(&format!(
                            "CREATE TABLE {table} (key bytea PRIMARY KEY, value bytea NOT NULL);"
                        ));
                        if cf.is_counter() {
                            ddl.push_str(&format!(
                                "CREATE TABLE {table}_deltas (key bytea NOT NULL, id bytea NOT \
                                 NULL, deltas bytea NOT NULL, PRIMARY KEY (key, id));"
                            ));
                        }
                    }
                    ddl.push_str(&format!(
                        "INSERT INTO coffre_schema (version) VALUES ({SCHEMA_VERSION});"
                    ));
                    client.batch_execute(&ddl).map_err(pg_error)
                }
            }
        })();
        finish(&mut client, result)
    }
}

/// How the connections to the database are protected (libpq's `sslmode` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS, the server's certificate not verified: encrypted, but no protection against an
    /// active attacker (who can present any certificate).
    Require,
    /// TLS, the server's certificate verified: it chains to a trusted CA and names the host
    /// connected to.
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<Self> {
        match value {
            "disable" => Ok(Self::Disable),
            "require" => Ok(Self::Require),
            "verify-full" => Ok(Self::VerifyFull),
            "allow" | "prefer" | "verify-ca" => Err(Error::InvalidConfig(format!(
                "metadata sslmode = {value} is not supported (plain text without notice, or a \
                 certificate of any host of the CA accepted): use disable, require or verify-full"
            ))),
            other => Err(Error::InvalidConfig(format!(
                "metadata sslmode = {other:?}: expected disable, require or verify-full"
            ))),
        }
    }

    /// Without a setting: plain text to a loopback address or a Unix socket (the data never
    /// leaves the machine), verified TLS to anything else.
    fn default_for(hosts: &[postgres::config::Host]) -> Self {
        let local = |host: &postgres::config::Host| match host {
            postgres::config::Host::Tcp(name) => {
                name.eq_ignore_ascii_case("localhost")
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            postgres::config::Host::Unix(_) => true,
        };
        if hosts.iter().all(local) {
            Self::Disable
        } else {
            Self::VerifyFull
        }
    }
}

/// libpq's TLS parameters, as found in the URL's query.
#[derive(Debug, Default)]
struct PostgresTls {
    /// `sslmode`; `None`: [`TlsMode::default_for`] the hosts.
    mode: Option<TlsMode>,
    /// `sslrootcert`: the PEM CA certificates to trust (verify-full); `None`: the system's.
    ca_file: Option<std::path::PathBuf>,
    /// `sslcert`: the client certificate chain (PEM), for mutual TLS.
    cert_file: Option<std::path::PathBuf>,
    /// `sslkey`: its private key (PEM), refused if others may read it.
    key_file: Option<std::path::PathBuf>,
}

impl PostgresTls {
    /// Takes libpq's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) out of
    /// `url`'s query: the URL without them (for `postgres::Config`), and them.
    fn from_url(url: &str) -> Result<(String, Self)> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), Self::default()));
        };
        let mut tls = Self::default();
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = || {
                percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map(|v| v.into_owned())
                    .map_err(|_| Error::InvalidConfig(format!("metadata url: {key} is not UTF-8")))
            };
            match key {
                "sslmode" => tls.mode = Some(TlsMode::parse(&decoded()?)?),
                "sslrootcert" => tls.ca_file = Some(decoded()?.into()),
                "sslcert" => tls.cert_file = Some(decoded()?.into()),
                "sslkey" => tls.key_file = Some(decoded()?.into()),
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((url, tls))
    }
}

/// TLS for the PostgreSQL client over rustls (tokio-rustls), with the aws-lc-rs provider the
/// rest of Coffre uses. Written here rather than taken from `tokio-postgres-rustls`, which
/// brings `ring` and X.509 parsing crates of its own into the build for channel binding
/// (not offered here: SCRAM authentication works without it).
mod tls {
    use std::future::Future;
    use std::io;
    use std::path::Path;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
    use postgres::Socket;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::{PostgresTls, TlsMode};
    use crate::error::{Error, Result};

    /// Makes the TLS connector of each connection; `None`: TLS off (`sslmode` disable, so
    /// the client never asks for it).
    #[derive(Clone)]
    pub(super) struct MakeRustlsConnect {
        config: Option<Arc<ClientConfig>>,
    }

    impl MakeRustlsConnect {
        /// Reads and checks the files `tls` names, for `mode`.
        pub(super) fn new(mode: TlsMode, tls: &PostgresTls) -> Result<Self> {
            let invalid = |message: &str| Err(Error::InvalidConfig(message.to_owned()));
            let files = [&tls.ca_file, &tls.cert_file, &tls.key_file];
            match mode {
                TlsMode::Disable if files.iter().any(|f| f.is_some()) => {
                    return invalid(
                        "metadata: ca_file, cert_file and key_file (sslrootcert, sslcert, \
                         sslkey) need TLS, but tls (sslmode) is disable",
                    )
                }
                TlsMode::Disable => return Ok(Self { config: None }),
                TlsMode::Require if tls.ca_file.is_some() => {
                    return invalid(
                        "metadata: ca_file (sslrootcert) is not used by tls = require, which \
                         verifies nothing: use verify-full",
                    )
                }
                TlsMode::Require | TlsMode::VerifyFull => {}
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::InvalidConfig(format!("metadata TLS: {e}")))?;
            let builder = match mode {
                TlsMode::VerifyFull => builder.with_root_certificates(roots(tls)?),
                _ => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
            };
            let config = match (&tls.cert_file, &tls.key_file) {
                (None, None) => builder.with_no_client_auth(),
                (Some(cert), Some(key)) => {
                    let chain = read_certs("cert_file (sslcert)", cert)?;
                    let key = read_key(key)?;
                    builder.with_client_auth_cert(chain, key).map_err(|e| {
                        Error::InvalidConfig(format!(
                            "metadata cert_file (sslcert) {} and key_file (sslkey): {e}",
                            cert.display()
                        ))
                    })?
                }
                _ => {
                    return invalid(
                        "metadata: cert_file and key_file (sslcert, sslkey) go together",
                    )
                }
            };
            Ok(Self {
                config: Some(Arc::new(config)),
            })
        }
    }

    /// The CAs a verify-full connection trusts: `ca_file`, else the system's.
    fn roots(tls: &PostgresTls) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                for cert in read_certs("ca_file (sslrootcert)", path)? {
                    roots.add(cert).map_err(|e| {
                        Error::InvalidConfig(format!(
                            "metadata ca_file (sslrootcert) {}: {e}",
                            path.display()
                        ))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(Error::InvalidConfig(
                        "metadata tls = verify-full: no ca_file (sslrootcert), and no CA \
                         certificate found in the system's store: set ca_file"
                            .into(),
                    ));
                }
            }
        }
        Ok(roots)
    }

    fn read_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
        let error = |e: rustls::pki_types::pem::Error| {
            Error::InvalidConfig(format!("metadata {what} {}: {e}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(error)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(error)?;
        if certs.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "metadata {what} {}: no PEM certificate in it",
                path.display()
            )));
        }
        Ok(certs)
    }

    /// The client's private key, refused when others may read its file (as the password's).
    fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
        use std::os::unix::fs::PermissionsExt;
        let what = |e: &dyn std::fmt::Display| {
            Error::InvalidConfig(format!(
                "metadata key_file (sslkey) {}: {e}",
                path.display()
            ))
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| what(&e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(what(&format_args!(
                "readable by others (mode {:o}): chmod 600 it",
                mode & 0o777
            )));
        }
        PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => what(&"no PEM private key in it"),
            other => what(&other),
        })
    }

    impl MakeTlsConnect<Socket> for MakeRustlsConnect {
        type Stream = RustlsStream;
        type TlsConnect = RustlsConnect;
        type Error = rustls::Error;

        fn make_tls_connect(
            &mut self,
            domain: &str,
        ) -> std::result::Result<RustlsConnect, rustls::Error> {
            let Some(config) = &self.config else {
                return Ok(RustlsConnect { tls: None });
            };
            let name = ServerName::try_from(domain)
                .map_err(|_| {
                    rustls::Error::General(format!(
                        "{domain:?} is not a host name or address TLS can verify"
                    ))
                })?
                .to_owned();
            Ok(RustlsConnect {
                tls: Some((config.clone(), name)),
            })
        }
    }

    /// The TLS handshake of one connection.
    pub(super) struct RustlsConnect {
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    }

    impl TlsConnect<Socket> for RustlsConnect {
        type Stream = RustlsStream;
        type Error = io::Error;
        type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

        fn connect(self, stream: Socket) -> Self::Future {
            Box::pin(async move {
                let Some((config, name)) = self.tls else {
                    return Err(io::Error::other("TLS is disabled (sslmode disable)"));
                };
                tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map(|stream| RustlsStream(Box::new(stream)))
            })
        }
    }

    /// A TLS connection to the database.
    pub(super) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

    impl TlsStream for RustlsStream {
        fn channel_binding(&self) -> ChannelBinding {
            ChannelBinding::none()
        }
    }

    impl AsyncRead for RustlsStream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut *self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for RustlsStream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut *self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut *self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut *self.0).poll_shutdown(cx)
        }
    }

    /// `require`: any certificate is accepted, but the handshake's signatures are still
    /// checked (the session is encrypted to whoever holds the key of the certificate shown).
    #[derive(Debug)]
    struct NoVerification(Arc<CryptoProvider>);

    impl ServerCertVerifier for NoVerification {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> std::result::Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

impl Drop for PostgresMetaStore {
    /// Closing a connection of the synchronous client blocks on a runtime of its own, which
    /// panics on a thread that drives async tasks (a store dropped at the end of an async
    /// `main`): the connections are closed on a thread of their own.
    fn drop(&mut self) {
        let pools = (self.transactions.clone(), self.reads.clone());
        let closing = std::thread::Builder::new()
            .name("coffre-pg-close".into())
            .spawn(move || drop(pools));
        if closing.is_err() {
            tracing::warn!("cannot start a thread to close the database connections");
        }
    }
}

/// Commits after `result` if it succeeded, else rolls back.
fn finish<T>(client: &mut Client, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => {
            client.batch_execute("COMMIT").map_err(pg_error)?;
            Ok(value)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

fn connection(pool: &Pool<Manager>) -> Result<Connection> {
    pool.get()
        .map_err(|e| Error::Unavailable(format!("no database connection: {e}")))
}

/// Runs `first` (a transaction's BEGIN, a plain read) on a pooled connection. A connection
/// the server closed since it was last used (a restart, a failover) fails only then, and is
/// then dropped by the pool: the statement is tried again on another, at most once per
/// pooled connection, so that clients see the outage end as soon as the server is back.
fn on_live_connection<T>(
    pool: &Pool<Manager>,
    mut first: impl FnMut(&mut Session) -> std::result::Result<T, postgres::Error>,
) -> Result<(Connection, T)> {
    let attempts = pool.max_size() + 1;
    let mut last = None;
    for _ in 0..attempts {
        let mut client = connection(pool)?;
        match first(&mut client) {
            Ok(value) => return Ok((client, value)),
            // Closed, cut, or told by a restarting server that it is gone.
            Err(e) if matches!(pg_error_ref(&e), Error::Unavailable(_)) => last = Some(e),
            Err(e) => return Err(pg_error(e)),
        }
    }
    Err(last.map_or_else(
        || Error::Unavailable("no live database connection".into()),
        pg_error,
    ))
}

/// The table of a key space.
fn table(cf: Cf) -> String {
    format!("coffre_{}", cf.name())
}

/// What a PostgreSQL error means to storage: a conflict to retry, the database out of
/// reach, or anything else.
fn pg_error(e: postgres::Error) -> Error {
    pg_error_ref(&e)
}

fn pg_error_ref(e: &postgres::Error) -> Error {
    if let Some(code) = e.code() {
        // A unique violation comes only from the checked inserts of keys read as absent
        // (every other write is an upsert): the key was inserted meanwhile.
        if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::UNIQUE_VIOLATION
        {
            return Error::Conflict;
        }
        if *code == SqlState::QUERY_CANCELED {
            // The statement timeout: the database is too slow to answer now.
            return Error::Unavailable(e.to_string());
        }
        if code.code().starts_with("08") || code.code().starts_with("57P") {
            // Connection exceptions, and the server shutting down or restarting.
            return Error::Unavailable(e.to_string());
        }
        return Error::Meta(e.to_string());
    }
    if e.is_closed() {
        return Error::Unavailable(e.to_string());
    }
    // No SQLSTATE: an I/O or protocol failure on the connection.
    Error::Unavailable(e.to_string())
}

/// Reads `cf` at `key` on `client`: the value, plus the deltas of a counter.
fn get_on(client: &mut Session, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
    get_raw(client, cf, key).map_err(pg_error)
}

fn get_raw(
    client: &mut Session,
    cf: Cf,
    key: &[u8],
) -> std::result::Result<Option<Vec<u8>>, postgres::Error> {
    let table = table(cf);
    if !cf.is_counter() {
        let select = client.statement(&format!("SELECT value FROM {table} WHERE key = $1"))?;
        let row = client.query_opt(&select, &[&key])?;
        return Ok(row.map(|r| r.get(0)));
    }
    let select = client.statement(&format!(
        "SELECT (SELECT value FROM {table} WHERE key = $1), \
         ARRAY(SELECT deltas FROM {table}_deltas WHERE key = $1)"
    ))?;
    let row = client.query_one(&select, &[&key])?;
    let base: Option<Vec<u8>> = row.get(0);
    let deltas: Vec<Vec<u8>> = row.get(1);
    Ok(fold_counter(base, &deltas))
}

/// A counter as stored: its base value, if any, and its additions.
type CounterRows = (Option<Vec<u8>>, Vec<Vec<u8>>);

fn fold_counter(base: Option<Vec<u8>>, deltas: &[Vec<u8>]) -> Option<Vec<u8>> {
    if deltas.is_empty() {
        return base;
    }
    let mut total = base.as_deref().map(decode_counters).unwrap_or_default();
    for delta in deltas {
        total = add_counters(&total, &decode_counters(delta));
    }
    Some(encode_counters(&total))
}

/// The entries of `cf` with `start <= key < end`, at most `limit`, in key order.
fn scan_on(
    client: &mut Session,
    cf: Cf,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if limit == 0 || end.is_some_and(|end| start >= end) {
        return Ok(Vec::new());
    }
    let table = table(cf);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let bounded = |table: &str, columns: &str, group: &str| match end {
        Some(_) => format!(
            "SELECT {columns} FROM {table} WHERE key >= $1 AND key < $2 {group} ORDER BY key \
             LIMIT $3"
        ),
        None => {
            format!("SELECT {columns} FROM {table} WHERE key >= $1 {group} ORDER BY key LIMIT $2")
        }
    };
    let run = |client: &mut Session, sql: String| {
        let select = client.statement(&sql)?;
        match end {
            Some(end) => client.query(&select, &[&start, &end, &limit]),
            None => client.query(&select, &[&start, &limit]),
        }
    };
    let rows = run(client, bounded(&table, "key, value", "")).map_err(pg_error)?;
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if !cf.is_counter() {
        return Ok(entries);
    }
    // The first `limit` keys of the union are among the first `limit` of each side.
    let rows = run(
        client,
        bounded(
            &format!("{table}_deltas"),
            "key, array_agg(deltas)",
            "GROUP BY key",
        ),
    )
    .map_err(pg_error)?;
    let mut merged: std::collections::BTreeMap<Vec<u8>, CounterRows> = entries
        .drain(..)
        .map(|(k, v)| (k, (Some(v), Vec::new())))
        .collect();
    for row in rows {
        let key: Vec<u8> = row.get(0);
        let deltas: Vec<Vec<u8>> = row.get(1);
        merged.entry(key).or_default().1 = deltas;
    }
    Ok(merged
        .into_iter()
        .filter_map(|(k, (base, deltas))| fold_counter(base, &deltas).map(|v| (k, v)))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect())
}

impl MetaStore for PostgresMetaStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        on_live_connection(&self.reads, |c| get_raw(c, cf, key)).map(|(_, value)| value)
    }

    /// The BEGIN is sent with the transaction's first read (see [`PostgresTx::begin_with`]).
    fn begin(&self) -> Result<Box<dyn TxReads + '_>> {
        Ok(Box::new(PostgresTx {
            store: self,
            client: connection(&self.transactions)?,
            open: false,
            expected: Default::default(),
        }))
    }

    fn cursor<'a>(&'a self, cf: Cf, upper_bound: Option<Vec<u8>>) -> Result<Box<dyn Cursor + 'a>> {
        Ok(Box::new(PostgresCursor {
            store: self,
            cf,
            upper_bound,
            next: None,
            page: Vec::new(),
            exhausted: false,
        }))
    }

    /// Rewrites the tables of `compact` so that deleted rows leave their files (VACUUM
    /// FULL; these are small tables, such as the tenants'). The write-ahead log, standby
    /// servers and backups keep old rows until they age out: with `tenant_keys_in_hsm`, the
    /// HSM's destroyed key makes them useless all the same.
    fn purge_stale(&self, compact: &[Cf]) -> Result<()> {
        let mut client = connection(&self.reads)?;
        for cf in compact {
            client
                .batch_execute(&format!("VACUUM FULL {}", table(*cf)))
                .map_err(pg_error)?;
        }
        Ok(())
    }

    fn stats(&self) -> Option<MetaStoreStats> {
        None
    }

    /// Moves delta rows into their counters' base rows, a bounded number per transaction,
    /// until none is left (or it keeps conflicting with readers: the next pass goes on). Additions committed meanwhile are new rows with new ids: they are
    /// left for the next pass, never lost; a concurrent reader conflicts and runs again.
    fn fold_counters(&self) -> Result<u64> {
        let mut folded = 0;
        for cf in Cf::ALL.into_iter().filter(|cf| cf.is_counter()) {
            let mut conflicts = 0;
            loop {
                let (mut client, ()) = on_live_connection(&self.transactions, |c| {
                    c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                })?;
                let moved = fold_some(&mut client, cf);
                let moved = match finish(&mut client, moved) {
                    // Readers of the same counters won: fold later, the next pass retries.
                    Err(Error::Conflict) if conflicts < 5 => {
                        conflicts += 1;
                        std::thread::sleep(Duration::from_millis(10 << conflicts));
                        continue;
                    }
                    Err(Error::Conflict) => break,
                    other => other?,
                };
                folded += moved;
                if moved < FOLD_BATCH {
                    break;
                }
            }
        }
        Ok(folded)
    }
}

/// Delta rows folded per transaction, at most.
const FOLD_BATCH: u64 = 10_000;

/// One fold transaction's work on `cf`: how many delta rows it moved.
fn fold_some(client: &mut Client, cf: Cf) -> Result<u64> {
    let table = table(cf);
    let limit = i64::try_from(FOLD_BATCH).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!(
                "DELETE FROM {table}_deltas WHERE (key, id) IN \
                 (SELECT key, id FROM {table}_deltas LIMIT $1) RETURNING key, deltas"
            ),
            &[&limit],
        )
        .map_err(pg_error)?;
    let moved = rows.len() as u64;
    let mut sums: std::collections::BTreeMap<Vec<u8>, Vec<i64>> = Default::default();
    for row in rows {
        let key: Vec<u8> = row.get(0);
        let deltas: Vec<u8> = row.get(1);
        let sum = sums.entry(key).or_default();
        *sum = add_counters(sum, &decode_counters(&deltas));
    }
    for (key, sum) in sums {
        let base: Option<Vec<u8>> = client
            .query_opt(
                &format!("SELECT value FROM {table} WHERE key = $1"),
                &[&key],
            )
            .map_err(pg_error)?
            .map(|r| r.get(0));
        let total = add_counters(
            &base.as_deref().map(decode_counters).unwrap_or_default(),
            &sum,
        );
        client
            .execute(
                &format!(
                    "INSERT INTO {table} (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                ),
                &[&key, &encode_counters(&total)],
            )
            .map_err(pg_error)?;
    }
    Ok(moved)
}

struct PostgresTx<'a> {
    store: &'a PostgresMetaStore,
    client: Connection,
    /// A transaction is open on the connection (begun, not yet committed or rolled back).
    open: bool,
    /// Values read by [`TxReads::get_for_write`], which the writes of those keys check.
    expected: Expected,
}

/// Keys read to be replaced, with the value (or absence) their write must still find.
type Expected = std::collections::HashMap<(Cf, Vec<u8>), Option<Vec<u8>>>;

impl Drop for PostgresTx<'_> {
    fn drop(&mut self) {
        if self.open && self.client.batch_execute("ROLLBACK").is_err() {
            // The connection is unusable; the pool finds out at its next check.
            tracing::debug!("rollback of an abandoned metadata transaction failed");
        }
    }
}

const BEGIN: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

impl PostgresTx<'_> {
    /// Sends the BEGIN, followed in the same message by `then` (a statement with its
    /// values written out) if given: a transaction's first round trip. A connection the
    /// server closed since it was last used fails only then: it is replaced by another of
    /// the pool, as [`on_live_connection`] does.
    fn begin_with(&mut self, then: Option<&str>) -> Result<Vec<postgres::SimpleQueryMessage>> {
        let sql = match then {
            Some(statement) => format!("{BEGIN};\n{statement}"),
            None => BEGIN.to_owned(),
        };
        let mut last = None;
        for _ in 0..=self.store.transactions.max_size() {
            match self.client.simple_query(&sql) {
                Ok(messages) => {
                    self.open = true;
                    return Ok(messages);
                }
                Err(e) if matches!(pg_error_ref(&e), Error::Unavailable(_)) => {
                    last = Some(e);
                    self.client = connection(&self.store.transactions)?;
                }
                Err(e) => {
                    // The BEGIN went through and `then` failed: roll back on drop.
                    self.open = true;
                    return Err(pg_error(e));
                }
            }
        }
        Err(last.map_or_else(
            || Error::Unavailable("no live database connection".into()),
            pg_error,
        ))
    }

    fn ensure_begun(&mut self) -> Result<()> {
        if !self.open {
            self.begin_with(None)?;
        }
        Ok(())
    }
}

/// The first column of the first row of `messages`, a `bytea` in its text form (`\x` and
/// hex digits: the connections ask for `bytea_output=hex`).
fn first_bytea(messages: &[postgres::SimpleQueryMessage]) -> Result<Option<Vec<u8>>> {
    let Some(text) = messages.iter().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(row) => Some(row.get(0)),
        _ => None,
    }) else {
        return Ok(None);
    };
    let text = text.ok_or_else(|| Error::Corrupt("a NULL value in the metadata".into()))?;
    let digits = text
        .strip_prefix("\\x")
        .ok_or_else(|| Error::Meta(format!("a bytea not in hex form: {text:.16}")))?;
    hex::decode(digits)
        .map(Some)
        .map_err(|e| Error::Meta(format!("a bytea not in hex form: {e}")))
}

impl TxReads for PostgresTx<'_> {
    /// The transaction's first read of a value carries its BEGIN.
    fn get(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if !self.open && !cf.is_counter() {
            let select = format!("SELECT value FROM {} WHERE key = {}", table(cf), bytea(key));
            let messages = self.begin_with(Some(&select))?;
            return first_bytea(&messages);
        }
        self.ensure_begun()?;
        get_on(&mut self.client, cf, key)
    }

    fn scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.ensure_begun()?;
        scan_on(&mut self.client, cf, start, end, limit)
    }

    /// On a connection of its own, outside the transaction: a read here would make the
    /// transaction depend on it.
    fn peek(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.store.get(cf, key)
    }

    /// Read on a connection of its own (the latest committed value, with no predicate lock
    /// in this transaction); the commit's write of the key checks that it is still that.
    fn get_for_write(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if cf.is_counter() {
            return self.get(cf, key);
        }
        let value = self.store.get(cf, key)?;
        self.expected.insert((cf, key.to_vec()), value.clone());
        Ok(value)
    }

    /// The writes go in one simple-query message with the COMMIT, so that a transaction's
    /// writes cost one round trip; writes that must find a value (an update or delete
    /// checked by `get_for_write`) first have their row counts checked, and the COMMIT
    /// follows in a second message.
    fn commit(mut self: Box<Self>, batch: Batch, _durability: Durability) -> Result<()> {
        self.ensure_begun()?;
        let expected = std::mem::take(&mut self.expected);
        let statements = batch_statements(batch, &expected);
        self.open = false;
        let checked = statements.iter().any(|s| s.rows.is_some());
        let mut sql = statements
            .iter()
            .map(|s| s.sql.as_str())
            .collect::<Vec<_>>()
            .join(";\n");
        if !checked {
            sql.push_str(if sql.is_empty() {
                "COMMIT"
            } else {
                ";\nCOMMIT"
            });
            let done = self.client.simple_query(&sql).map(drop).map_err(pg_error);
            if done.is_err() {
                // A statement failed and the rest was skipped: the transaction is aborted.
                let _ = self.client.batch_execute("ROLLBACK");
            }
            return done;
        }
        let written = self
            .client
            .simple_query(&sql)
            .map_err(pg_error)
            .and_then(|messages| check_row_counts(&statements, &messages));
        finish(&mut self.client, written)
    }
}

/// The last write of each key, as the batch leaves it.
enum Final {
    Put(Vec<u8>),
    Delete,
    /// Counter additions only, on top of whatever is stored.
    Add(Vec<i64>),
}

/// One statement of a commit, with the row count it must report, if any.
struct Statement {
    sql: String,
    rows: Option<u64>,
}

impl Statement {
    fn unchecked(sql: String) -> Self {
        Self { sql, rows: None }
    }
}

/// `Conflict` unless every checked statement changed the rows it had to (the statements'
/// completions come in their order).
fn check_row_counts(
    statements: &[Statement],
    messages: &[postgres::SimpleQueryMessage],
) -> Result<()> {
    let counts = messages.iter().filter_map(|m| match m {
        postgres::SimpleQueryMessage::CommandComplete(rows) => Some(*rows),
        _ => None,
    });
    let mut seen = 0;
    for (statement, count) in statements.iter().zip(counts) {
        seen += 1;
        if statement.rows.is_some_and(|rows| rows != count) {
            return Err(Error::Conflict);
        }
    }
    if seen != statements.len() {
        return Err(Error::Meta(format!(
            "{seen} of {} statements reported their completion",
            statements.len()
        )));
    }
    Ok(())
}

/// A `bytea` value in SQL text: `decode('<hex>', 'hex')`, which reads the same whatever the
/// server's string settings (only hex digits are ever quoted).
fn bytea(bytes: &[u8]) -> String {
    format!("decode('{}','hex')", hex::encode(bytes))
}

/// `(a, b, ...)` of SQL values.
fn row(values: &[&[u8]]) -> String {
    let values: Vec<String> = values.iter().map(|v| bytea(v)).collect();
    format!("({})", values.join(","))
}

fn rows<'a>(rows: impl IntoIterator<Item = Vec<&'a [u8]>>) -> String {
    rows.into_iter()
        .map(|values| row(&values))
        .collect::<Vec<_>>()
        .join(",")
}

/// The statements that apply `batch`; the writes of `expected` keys are checked writes:
/// `Conflict` unless each still finds the value (or the absence) read.
fn batch_statements(batch: Batch, expected: &Expected) -> Vec<Statement> {
    let mut finals: std::collections::BTreeMap<(Cf, Vec<u8>), Final> = Default::default();
    for op in batch.ops {
        let key = (op.cf(), op.key().to_vec());
        let next = match (op, finals.remove(&key)) {
            (BatchOp::Put { value, .. }, _) => Final::Put(value),
            (BatchOp::Delete { .. }, _) => Final::Delete,
            (BatchOp::Add { deltas, .. }, None) => Final::Add(deltas),
            (BatchOp::Add { deltas, .. }, Some(Final::Add(before))) => {
                Final::Add(add_counters(&before, &deltas))
            }
            (BatchOp::Add { deltas, .. }, Some(Final::Put(value))) => Final::Put(encode_counters(
                &add_counters(&decode_counters(&value), &deltas),
            )),
            (BatchOp::Add { deltas, .. }, Some(Final::Delete)) => {
                Final::Put(encode_counters(&deltas))
            }
        };
        finals.insert(key, next);
    }
    let mut statements = Vec::new();
    for (cf, writes) in checked_writes(&mut finals, expected) {
        let table = table(cf);
        if !writes.inserts.is_empty() {
            // A key inserted meanwhile: unique violation, a conflict.
            let values = rows(writes.inserts.iter().map(|(k, v)| vec![&k[..], &v[..]]));
            statements.push(Statement::unchecked(format!(
                "INSERT INTO {table} (key, value) VALUES {values}"
            )));
        }
        if !writes.updates.is_empty() {
            let values = rows(
                writes
                    .updates
                    .iter()
                    .map(|(k, o, v)| vec![&k[..], o, &v[..]]),
            );
            statements.push(Statement {
                sql: format!(
                    "UPDATE {table} AS t SET value = u.value FROM (VALUES {values}) \
                     AS u(key, old, value) WHERE t.key = u.key AND t.value = u.old"
                ),
                rows: Some(writes.updates.len() as u64),
            });
        }
        if !writes.deletes.is_empty() {
            let values = rows(writes.deletes.iter().map(|(k, o)| vec![&k[..], o]));
            statements.push(Statement {
                sql: format!(
                    "DELETE FROM {table} AS t USING (VALUES {values}) AS u(key, old) \
                     WHERE t.key = u.key AND t.value = u.old"
                ),
                rows: Some(writes.deletes.len() as u64),
            });
        }
    }
    for cf in Cf::ALL {
        let table = table(cf);
        let mut puts: Vec<Vec<&[u8]>> = Vec::new();
        let mut deleted: Vec<&[u8]> = Vec::new();
        let mut adds: Vec<(&[u8], Vec<u8>, Vec<u8>)> = Vec::new();
        for ((_, key), last) in finals
            .range((cf, Vec::new())..)
            .take_while(|((c, _), _)| *c == cf)
        {
            match last {
                Final::Put(value) => puts.push(vec![key, value]),
                Final::Delete => deleted.push(key),
                Final::Add(deltas) => {
                    let mut id = vec![0u8; 16];
                    rand::rngs::OsRng.fill_bytes(&mut id);
                    adds.push((key, id, encode_counters(deltas)));
                }
            }
        }
        if cf.is_counter() {
            // A put or delete of a counter replaces its additions too.
            let replaced: Vec<String> = puts
                .iter()
                .map(|p| p[0])
                .chain(deleted.iter().copied())
                .map(bytea)
                .collect();
            if !replaced.is_empty() {
                statements.push(Statement::unchecked(format!(
                    "DELETE FROM {table}_deltas WHERE key IN ({})",
                    replaced.join(",")
                )));
            }
            if !adds.is_empty() {
                let values = rows(adds.iter().map(|(k, id, d)| vec![*k, &id[..], &d[..]]));
                statements.push(Statement::unchecked(format!(
                    "INSERT INTO {table}_deltas (key, id, deltas) VALUES {values}"
                )));
            }
        }
        if !deleted.is_empty() {
            let keys: Vec<String> = deleted.iter().map(|k| bytea(k)).collect();
            statements.push(Statement::unchecked(format!(
                "DELETE FROM {table} WHERE key IN ({})",
                keys.join(",")
            )));
        }
        if !puts.is_empty() {
            statements.push(Statement::unchecked(format!(
                "INSERT INTO {table} (key, value) VALUES {} \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                rows(puts)
            )));
        }
    }
    statements
}

/// The writes of keys read by `get_for_write`, taken out of `finals`, by key space.
#[derive(Default)]
struct CheckedWrites<'a> {
    /// Keys that must still be absent: plain inserts, which fail on a key now present.
    inserts: Vec<(Vec<u8>, Vec<u8>)>,
    /// (key, value read, new value): updates that must find the value read.
    updates: Vec<(Vec<u8>, &'a [u8], Vec<u8>)>,
    /// (key, value read): deletes that must find the value read.
    deletes: Vec<(Vec<u8>, &'a [u8])>,
}

fn checked_writes<'a>(
    finals: &mut std::collections::BTreeMap<(Cf, Vec<u8>), Final>,
    expected: &'a Expected,
) -> std::collections::BTreeMap<Cf, CheckedWrites<'a>> {
    let mut checked: std::collections::BTreeMap<Cf, CheckedWrites<'a>> = Default::default();
    for ((cf, key), read) in expected {
        let Some(last) = finals.remove(&(*cf, key.clone())) else {
            // Read, then not written: nothing depends on it (see `Tx::get_for_write`).
            continue;
        };
        let writes = checked.entry(*cf).or_default();
        match (last, read) {
            (Final::Put(value), None) => writes.inserts.push((key.clone(), value)),
            (Final::Put(value), Some(old)) => writes.updates.push((key.clone(), old, value)),
            (Final::Delete, Some(old)) => writes.deletes.push((key.clone(), old)),
            // Deleting what was absent: a no-op, whatever was inserted since (this
            // transaction then comes first).
            (Final::Delete, None) => {}
            // Not a counter space: no additions.
            (add @ Final::Add(_), _) => {
                finals.insert((*cf, key.clone()), add);
            }
        }
    }
    checked
}

/// Listing pages of this many entries, each one query.
const CURSOR_PAGE: usize = 256;

struct PostgresCursor<'a> {
    store: &'a PostgresMetaStore,
    cf: Cf,
    upper_bound: Option<Vec<u8>>,
    /// Where the next page starts (inclusive); `None` before the first seek.
    next: Option<Vec<u8>>,
    /// The current page, reversed (the next entry last).
    page: Vec<(Vec<u8>, Vec<u8>)>,
    exhausted: bool,
}

impl Cursor for PostgresCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.next = Some(key.to_vec());
        self.page.clear();
        self.exhausted = false;
    }

    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.page.is_empty() && !self.exhausted {
            let Some(start) = self.next.take() else {
                return Ok(None);
            };
            let mut client = connection(&self.store.reads)?;
            let mut page = scan_on(
                &mut client,
                self.cf,
                &start,
                self.upper_bound.as_deref(),
                CURSOR_PAGE,
            )?;
            self.exhausted = page.len() < CURSOR_PAGE;
            if let Some((last, _)) = page.last() {
                let mut after = last.clone();
                after.push(0);
                self.next = Some(after);
            }
            page.reverse();
            self.page = page;
        }
        Ok(self.page.pop())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tls_tests {
    use super::*;

    fn hosts(url: &str) -> Vec<postgres::config::Host> {
        url.parse::<postgres::Config>()
            .unwrap()
            .get_hosts()
            .to_vec()
    }

    #[test]
    fn tls_parameters_come_out_of_the_url() {
        let (url, tls) = PostgresTls::from_url(
            "postgresql://u@db/d?options=-cx%3D1&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem\
             &sslcert=%2Fc.pem&sslkey=%2Fk.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgresql://u@db/d?options=-cx%3D1&application_name=a"
        );
        assert_eq!(tls.mode, Some(TlsMode::VerifyFull));
        assert_eq!(tls.ca_file.unwrap(), std::path::Path::new("/etc/ca x.pem"));
        assert_eq!(tls.cert_file.unwrap(), std::path::Path::new("/c.pem"));
        assert_eq!(tls.key_file.unwrap(), std::path::Path::new("/k.pem"));

        let (url, tls) = PostgresTls::from_url("postgresql://u@db/d?sslmode=disable").unwrap();
        assert_eq!(url, "postgresql://u@db/d");
        assert_eq!(tls.mode, Some(TlsMode::Disable));
        for refused in ["prefer", "allow", "verify-ca", "on"] {
            let url = format!("postgresql://u@db/d?sslmode={refused}");
            assert!(PostgresTls::from_url(&url).is_err(), "{refused}");
        }
    }

    #[test]
    fn without_a_mode_tls_is_verified_unless_the_host_is_local() {
        for local in [
            "postgresql://u@127.0.0.1:5432/d",
            "postgresql://u@localhost/d",
            "postgresql://u@[::1]:5432/d",
            "postgresql://u@%2Fvar%2Frun%2Fpostgresql/d",
        ] {
            assert_eq!(
                TlsMode::default_for(&hosts(local)),
                TlsMode::Disable,
                "{local}"
            );
        }
        for remote in [
            "postgresql://u@10.1.2.3/d",
            "postgresql://u@db.example.net/d",
            "postgresql://u@127.0.0.1,db2/d",
        ] {
            assert_eq!(
                TlsMode::default_for(&hosts(remote)),
                TlsMode::VerifyFull,
                "{remote}"
            );
        }
    }

    #[test]
    fn tls_files_are_checked_against_the_mode() {
        let files = |ca: bool, cert: bool, key: bool| PostgresTls {
            mode: None,
            ca_file: ca.then(|| "/ca".into()),
            cert_file: cert.then(|| "/c".into()),
            key_file: key.then(|| "/k".into()),
        };
        let message = |mode, tls: &PostgresTls| match tls::MakeRustlsConnect::new(mode, tls) {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        assert!(message(TlsMode::Disable, &files(true, false, false)).contains("need TLS"));
        assert!(message(TlsMode::Require, &files(true, false, false)).contains("verifies nothing"));
        assert!(message(TlsMode::Require, &files(false, true, false)).contains("go together"));
        assert_eq!(message(TlsMode::Require, &files(false, false, false)), "");
        assert_eq!(message(TlsMode::Disable, &files(false, false, false)), "");
    }
}
