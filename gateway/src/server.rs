//! Listeners: the S3 API and the admin listener, each an accept loop handing connections
//! to hyper. `serve` is what the binary runs and what in-process tests call.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use coffre_crypto::{
    AdminScope, KeyProvider, LocalFileKeyProvider, MaintenanceScope, Pkcs11KeyProvider,
};
use coffre_storage::{
    MetaStore, PostgresConfig, PostgresMetaStore, RocksMetaStore, Store, StoreConfig,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::token::AdminToken;
use crate::admin::AdminService;
use crate::audit::{AuditConfig, AuditLog};
use crate::bootstrap;
use crate::cluster::{self, NodeIdentity};
use crate::config::{BucketLabel, Config, KeyProviderConfig, MetadataConfig};
use crate::connection_limits::ListenerLimits;
use crate::gc;
use crate::key_rotation::{self, RotationWaker};
use crate::metrics::Metrics;
use crate::s3::service::S3Service;
use crate::tls::{ReloadableTls, TlsFiles};

/// A running server: its bound addresses and a handle to stop it.
pub struct Running {
    pub s3_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    audit: AuditLog,
    s3_tls: Option<Arc<ReloadableTls>>,
    admin_tls: Option<Arc<ReloadableTls>>,
}

impl Running {
    /// `http(s)://ADDR` of the S3 listener.
    pub fn s3_url(&self) -> String {
        url(self.s3_tls.is_some(), self.s3_addr)
    }

    /// `http(s)://ADDR` of the admin listener.
    pub fn admin_url(&self) -> String {
        url(self.admin_tls.is_some(), self.admin_addr)
    }

    /// Reads the certificate files of both listeners again (SIGHUP). New connections get
    /// the new certificates; open ones keep theirs. A listener whose new files are bad keeps
    /// its current certificate, and the error is logged.
    pub async fn reload_tls(&self) {
        for (listener, tls) in [("s3", &self.s3_tls), ("admin", &self.admin_tls)] {
            let Some(tls) = tls.clone() else { continue };
            match tokio::task::spawn_blocking(move || tls.reload()).await {
                Ok(Ok(())) => tracing::info!(listener, "TLS certificate reloaded"),
                Ok(Err(e)) => tracing::error!(
                    listener,
                    error = %e,
                    "TLS certificate not reloaded; still serving the previous one"
                ),
                Err(e) => tracing::error!(listener, error = %e, "TLS reload task failed"),
            }
        }
    }

    /// Stops accepting, lets in-flight requests finish for a moment, then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let audit = self.audit;
        let flushed =
            tokio::task::spawn_blocking(move || audit.flush(Duration::from_secs(5))).await;
        if !matches!(flushed, Ok(true)) {
            tracing::error!("audit records still queued at shutdown");
        }
    }
}

/// Opens the store, creates the embedded default tenant and the admin token on first
/// start, binds both listeners and starts serving. Returns once the listeners are bound.
pub async fn serve(config: Config) -> anyhow::Result<Running> {
    let store_config = StoreConfig {
        inline_max: config.inline_max,
        ..StoreConfig::new(config.data_dir.join("meta"), config.arrays.clone())
    };
    let key_provider = config.key_provider.clone();
    let metadata = config.metadata.clone();
    // Created first: the key provider and the metadata store are timed from their first call.
    let metrics = Arc::new(Metrics::new(&config.metrics));
    let layers = metrics.clone();
    let store = tokio::task::spawn_blocking(move || {
        let keys = layers.instrument_key_provider(open_key_provider(&key_provider)?);
        let store = open_store(store_config, &metadata, keys, &layers)?;
        // Fail closed: a wrong key file or token label must not serve a store it cannot open.
        store
            .check_root_key(&MaintenanceScope::new("start"))
            .context("checking the root key against the metadata store")?;
        Ok::<_, anyhow::Error>(store)
    })
    .await??;
    let store = Arc::new(store);
    bootstrap::ensure_default_tenant(&store, &config).await?;
    let (lookup, listed) = (store.clone(), config.metrics.bucket_labels.clone());
    let buckets = tokio::task::spawn_blocking(move || resolve_bucket_labels(&lookup, &listed))
        .await?
        .context("resolving [metrics] bucket_labels")?;
    metrics.label_buckets(buckets);
    let token_source = config.admin_token.clone();
    let token = tokio::task::spawn_blocking(move || AdminToken::load(&token_source))
        .await?
        .context("loading the admin token")?;

    let s3_tls = load_tls(config.s3_tls.clone())
        .await
        .context("setting up TLS on the S3 listener")?;
    let admin_tls = load_tls(config.admin_tls.clone())
        .await
        .context("setting up TLS on the admin listener")?;

    let s3_listener = TcpListener::bind(config.s3_listen)
        .await
        .with_context(|| format!("binding the S3 listener on {}", config.s3_listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding the admin listener on {}", config.admin_listen))?;
    let s3_addr = s3_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let audit_config = AuditConfig {
        node: Some(config.node_name.clone()),
        ..config.audit.clone()
    };
    let audit = tokio::task::spawn_blocking(move || AuditLog::open(audit_config))
        .await?
        .with_context(|| format!("opening the audit trail in {}", config.audit.dir.display()))?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let s3 = Arc::new(
        S3Service::new(
            store.clone(),
            config.region.clone(),
            config.domain.clone(),
            audit.clone(),
            metrics.clone(),
        )
        .with_secure_transport(config.s3_tls.is_some() || config.trusted_tls_terminator)
        .with_limits(&config.limits),
    );
    let rotation_waker = RotationWaker::new();
    let admin = Arc::new(AdminService::new(
        store.clone(),
        config.arrays.clone(),
        token,
        metrics.clone(),
        audit.clone(),
        rotation_waker.clone(),
    ));

    let s3_task = tokio::spawn(accept_loop(
        s3_listener,
        s3_tls.clone(),
        shutdown_rx.clone(),
        Arc::new(ListenerLimits::s3(&config.limits, metrics.clone())),
        move |req, peer| {
            let s3 = s3.clone();
            async move { Ok::<_, Infallible>(s3.handle(req, peer).await) }
        },
    ));
    let admin_task = tokio::spawn(accept_loop(
        admin_listener,
        admin_tls.clone(),
        shutdown_rx.clone(),
        Arc::new(ListenerLimits::admin(&config.limits, metrics.clone())),
        move |req, peer| {
            let admin = admin.clone();
            async move { Ok::<_, Infallible>(admin.handle(req, peer).await) }
        },
    ));
    let node = NodeIdentity {
        name: config.node_name.clone(),
        address: url(s3_tls.is_some(), s3_addr),
        started: SystemTime::now(),
    };
    let cluster_task = tokio::spawn(cluster::run(store.clone(), node, shutdown_rx.clone()));
    let rotation_task = tokio::spawn(key_rotation::run(
        store.clone(),
        audit.clone(),
        config.key_rotation,
        rotation_waker,
        config.node_name.clone(),
        shutdown_rx.clone(),
    ));
    let gc_task = tokio::spawn(gc::run(
        store,
        config.gc_interval,
        config.node_name.clone(),
        shutdown_rx,
    ));

    Ok(Running {
        s3_addr,
        admin_addr,
        shutdown,
        tasks: vec![s3_task, admin_task, gc_task, rotation_task, cluster_task],
        audit,
        s3_tls,
        admin_tls,
    })
}

fn url(tls: bool, addr: SocketAddr) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

async fn load_tls(files: Option<TlsFiles>) -> anyhow::Result<Option<Arc<ReloadableTls>>> {
    let Some(files) = files else { return Ok(None) };
    let tls = tokio::task::spawn_blocking(move || ReloadableTls::load(files)).await??;
    Ok(Some(Arc::new(tls)))
}

/// Opens the metadata store `[metadata]` names (RocksDB's directory created as needed, or a
/// connection to PostgreSQL with its schema checked), with its calls timed, and the store
/// over it.
fn open_store(
    config: StoreConfig,
    metadata: &MetadataConfig,
    keys: Arc<dyn KeyProvider>,
    metrics: &Metrics,
) -> anyhow::Result<Store> {
    let meta: Box<dyn MetaStore> = match metadata {
        MetadataConfig::Rocks { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Box::new(
                RocksMetaStore::open(dir)
                    .with_context(|| format!("opening the metadata store in {}", dir.display()))?,
            )
        }
        MetadataConfig::Postgres {
            url,
            password_file,
            pool_size,
            connect_timeout,
        } => {
            let password = password_file
                .as_deref()
                .map(read_password_file)
                .transpose()?;
            let postgres = PostgresConfig {
                url: url.clone(),
                password,
                pool_size: *pool_size,
                connect_timeout: *connect_timeout,
            };
            Box::new(
                PostgresMetaStore::open(&postgres)
                    .context("opening the PostgreSQL metadata store ([metadata] url)")?,
            )
        }
    };
    let meta = metrics.instrument_meta_store(meta);
    Store::with_meta_store(config, meta, keys).context("opening the store")
}

/// The database password: the file's first line. Refused when others may read the file.
fn read_password_file(path: &std::path::Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("[metadata] password_file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "[metadata] password_file {} is readable by others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("[metadata] password_file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// The buckets `[metrics] bucket_labels` lists, as (tenant id, bucket). A tenant that does
/// not exist is skipped with a warning: its buckets get series of their own after a restart.
fn resolve_bucket_labels(
    store: &Store,
    listed: &[BucketLabel],
) -> anyhow::Result<Vec<(String, String)>> {
    let admin = AdminScope::local_operator();
    let mut buckets = Vec::with_capacity(listed.len());
    for label in listed {
        match store.tenant_by_name(&admin, &label.tenant_name)? {
            Some(tenant) => buckets.push((tenant.id.to_hex(), label.bucket.clone())),
            None => tracing::warn!(
                tenant = %label.tenant_name,
                bucket = %label.bucket,
                "[metrics] bucket_labels names a tenant that does not exist: no series of its own"
            ),
        }
    }
    Ok(buckets)
}

/// Opens the root key provider (blocking: a file, or an HSM login). A local key file is
/// created on first start.
fn open_key_provider(config: &KeyProviderConfig) -> anyhow::Result<Arc<dyn KeyProvider>> {
    match config {
        KeyProviderConfig::LocalFile { path } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let keys = LocalFileKeyProvider::open_or_create(path)
                .with_context(|| format!("opening the root key {}", path.display()))?;
            Ok(Arc::new(keys))
        }
        KeyProviderConfig::Pkcs11(pkcs11) => {
            let keys = Pkcs11KeyProvider::open(pkcs11.clone()).with_context(|| {
                format!(
                    "opening the root key {:?} in PKCS#11 token {:?} (module {})",
                    pkcs11.key_label,
                    pkcs11.token_label,
                    pkcs11.module.display()
                )
            })?;
            tracing::info!(
                token = %pkcs11.token_label,
                key_label = %pkcs11.key_label,
                tenant_keys_in_hsm = pkcs11.tenant_keys_in_hsm,
                root_versions = keys.root_versions().len(),
                "root key provider: pkcs11"
            );
            Ok(Arc::new(keys))
        }
    }
}

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<ReloadableTls>>,
    mut shutdown: watch::Receiver<bool>,
    limits: Arc<ListenerLimits>,
    handler: F,
) where
    F: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<hyper::Response<crate::s3::body::Body>, Infallible>>
        + Send
        + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over a connection cap: answered and closed here, without waiting for anything.
        let Some(slot) = limits.admit(&stream, peer) else {
            continue;
        };
        // Small responses must not wait on Nagle against delayed ACKs.
        let _ = stream.set_nodelay(true);
        let stream = limits.pace(stream);
        let header_timeout = limits.header_timeout;
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        // The configuration is read per accept so that a reload reaches new connections.
        let acceptor = tls.as_ref().map(|tls| tls.acceptor());
        // The handshake runs in the connection's task: a slow client must not hold up accepts.
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                return serve_connection(stream, peer, header_timeout, shutdown, handler).await;
            };
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    serve_connection(stream, peer, header_timeout, shutdown, handler).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

async fn serve_connection<S, F, Fut>(
    stream: S,
    peer: SocketAddr,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<hyper::Response<crate::s3::body::Body>, Infallible>>
        + Send
        + 'static,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| handler(req, peer)),
        );
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        }
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
        }
    }
}
