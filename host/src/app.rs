//! The gateway's shared state, built once at start-up from the validated config:
//! components, store, account pool, cache, upstream client, client keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aperture_store::{AccountPool, Cache, CacheKey, CacheLimits, KeyStore, Store};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::config::{CacheBackend, Config};
use crate::errors::GatewayError;
use crate::generated::Generated;
use crate::policy::Policies;
use crate::upstream::Gemini;

/// The redb file under the data dir.
pub const STORE_FILE: &str = "aperture.redb";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data dir cannot be created.
    #[error("cannot create the data dir {path}: {source}")]
    DataDir {
        /// The dir.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The store file is locked by another process.
    #[error("cannot open the store {path}: another process holds its lock (is another aperture using this data dir?)")]
    StoreLocked {
        /// The file.
        path: String,
    },
    /// The store file is damaged.
    #[error("the store {path} is damaged: {why}. Aperture will not start over it. Stop here and either restore a backup (`aperture store restore BACKUP --data-dir {dir}`), or run `aperture store repair --data-dir {dir}` (it keeps what redb can recover and moves an unrecoverable file aside), or move the file aside yourself to start with an empty store")]
    StoreDamaged {
        /// The file.
        path: String,
        /// The data dir.
        dir: String,
        /// What was found.
        why: String,
    },
    /// The secret key does not fit the stored secrets.
    #[error("cannot open the store {path}: {source}")]
    SecretKey {
        /// The file.
        path: String,
        /// Why.
        source: aperture_store::StoreError,
    },
    /// The store cannot be opened.
    #[error("cannot open the store {path}: {source}")]
    Store {
        /// The file.
        path: String,
        /// Why.
        source: aperture_store::StoreError,
    },
    /// A component cannot be loaded.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The component registry cannot be opened.
    #[error(transparent)]
    Lifecycle(#[from] crate::policy::LifecycleError),
    /// The cache writer thread cannot be started.
    #[error("cannot start the cache writer thread: {0}")]
    Thread(String),
}

/// Client keys from the configuration (held as sha256) plus those in the store.
pub struct ClientKeys {
    configured: Vec<[u8; 32]>,
    stored: KeyStore,
}

impl ClientKeys {
    /// The label of `presented` if it is a valid client key (constant-time
    /// comparisons): `config:N` for the N-th configured key (1-based), else the
    /// label it was stored under. A store failure is an error, never a "no".
    /// Blocking when the stored keys are not in memory: see [`ClientKeys::verify_in_memory`].
    pub fn verify(&self, presented: &str) -> Result<Option<String>, aperture_store::StoreError> {
        match self.configured_label(presented) {
            Some(label) => Ok(Some(label)),
            None => self.stored.verify(presented),
        }
    }

    /// [`ClientKeys::verify`] from memory only; `None` when the stored keys must be read first.
    pub fn verify_in_memory(&self, presented: &str) -> Option<Option<String>> {
        match self.configured_label(presented) {
            Some(label) => Some(Some(label)),
            None => self.stored.verify_in_memory(presented),
        }
    }

    fn configured_label(&self, presented: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (i, k) in self.configured.iter().enumerate() {
            if bool::from(k.ct_eq(&digest)) {
                found = Some(format!("config:{}", i + 1));
            }
        }
        found
    }

    /// Whether any key exists at all.
    pub fn any(&self) -> bool {
        !self.configured.is_empty() || self.stored.list().map(|l| !l.is_empty()).unwrap_or(false)
    }
}

/// Shared outcome of one generation, handed to every coalesced request.
pub type SharedOutcome = Result<Arc<Generated>, GatewayError>;

/// Identical requests in flight share one upstream call.
#[derive(Default)]
pub struct Inflight {
    map: Mutex<HashMap<CacheKey, Arc<OnceCell<SharedOutcome>>>>,
}

impl Inflight {
    /// The cell for `key`: the first caller's `get_or_init` does the work, the
    /// others wait for its outcome.
    pub fn cell(&self, key: CacheKey) -> Arc<OnceCell<SharedOutcome>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_default().clone()
    }

    /// A finished, successful result for `key` whose cache write has not landed yet.
    pub fn completed(&self, key: &CacheKey) -> Option<Arc<Generated>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .and_then(|cell| cell.get())
            .and_then(|outcome| outcome.as_ref().ok().cloned())
    }

    /// Forget `key` once its outcome is known (only if it is still `cell`).
    pub fn release(&self, key: &CacheKey, cell: &Arc<OnceCell<SharedOutcome>>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            map.remove(key);
        }
    }
}

/// Everything a request handler needs.
pub struct App {
    /// Component calls admitted at once: a request waits here, on the async
    /// runtime, before it takes a blocking thread, so a burst over the instance
    /// pool never parks blocking threads that redb also needs.
    pub policy_slots: tokio::sync::Semaphore,
    /// The validated configuration.
    pub config: Config,
    /// The policy components.
    pub policies: Arc<Policies>,
    /// The upstream client.
    pub gemini: Gemini,
    /// Upstream calls in flight across all requests, and the queue behind them.
    pub upstream_calls: crate::upstream::CallLimit,
    /// The store (accounts, keys; cache unless the backend is `memory`).
    pub store: Store,
    /// The account pool.
    pub accounts: AccountPool,
    /// The image cache, unless disabled.
    pub cache: Option<Cache>,
    /// Ready-to-send bodies of recent hits, in front of the cache (`gateway/hot.rs`).
    pub hot: Option<Arc<crate::gateway::hot::HotCache>>,
    /// Cache writes, one transaction per batch (`gateway/group_commit.rs`).
    pub cache_writer: Option<crate::gateway::group_commit::GroupCommit>,
    /// Accepted client keys.
    pub keys: ClientKeys,
    /// Limits and counters per client key.
    pub limiter: Arc<crate::limiter::Limiter>,
    /// Failed authentications per client address.
    pub auth_throttle: crate::auth_throttle::AuthThrottle,
    /// sha256 of the admin key, when the admin API is on.
    pub admin_key: Option<[u8; 32]>,
    /// The settings a config reload changes (`live.rs`); a request loads them once, at its start.
    pub live: arc_swap::ArcSwap<crate::live::LiveSettings>,
    /// Where the configuration came from, for reloads (`reload.rs`).
    pub reloader: crate::reload::Reloader,
    /// In-flight generations by cache key.
    pub inflight: Inflight,
    /// When the gateway started.
    pub started: Instant,
    /// Work that outlives a response (cache writes); shutdown waits for it.
    pub background: tokio_util::task::TaskTracker,
    /// Traffic statistics (rollups in the store; see `stats`).
    pub stats: Arc<crate::stats::Stats>,
    /// Dashboard sign-in sessions and the demo client key (see `dashboard`).
    pub dashboard: crate::dashboard::Dashboard,
    /// Logs account state changes.
    pub accounts_watch: crate::accounts_watch::AccountsWatch,
}

impl App {
    /// Open the store, load the components, build the client.
    pub fn build(config: Config) -> Result<App, StartError> {
        crate::data_dir::prepare(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let path = config.data_dir.join(STORE_FILE);
        let store_err = |source| crate::data_dir::start_error(&config.data_dir, &path, source);
        let options = aperture_store::StoreOptions {
            secret_key: config.secret_key.clone(),
        };
        let store = Store::open_with(&path, options).map_err(store_err)?;
        let accounts = store.accounts().map_err(store_err)?;
        if !store.encrypts_secrets() {
            tracing::warn!("Account secrets are stored unencrypted in {}: set APERTURE_SECRET_KEY or secret_key_file (generate a key with `openssl rand -hex 32`)", path.display());
        }
        let limits = CacheLimits {
            max_bytes: config.cache.max_bytes,
            ttl_ms: config.cache.ttl.as_millis() as u64,
        };
        let cache = match config.cache.backend {
            CacheBackend::Redb => Some(store.cache(limits)),
            CacheBackend::Memory => Some(Store::in_memory().map_err(store_err)?.cache(limits)),
            CacheBackend::None => None,
        };
        let hot = cache.as_ref().map(|c| {
            let hot = Arc::new(crate::gateway::hot::HotCache::new(
                crate::gateway::hot::DEFAULT_MAX_BYTES.min(config.cache.max_bytes),
            ));
            c.set_observer(hot.clone());
            hot
        });
        let cache_writer = match &cache {
            Some(c) => Some(
                crate::gateway::group_commit::GroupCommit::start(c.clone())
                    .map_err(|e| StartError::Thread(e.to_string()))?,
            ),
            None => None,
        };
        let policies = Policies::open(
            store.components(),
            &config.components.sources,
            config.components.limits,
            config.components.rollout,
        )?;
        let policies = Arc::new(policies);
        crate::metrics::components::watch(Arc::downgrade(&policies));
        let keys = ClientKeys {
            configured: config
                .api_keys
                .iter()
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
            stored: store.keys(),
        };
        let limiter = Arc::new(
            crate::limiter::Limiter::load(config.limits, store.keys()).map_err(store_err)?,
        );
        let auth_throttle = crate::auth_throttle::AuthThrottle::new(config.auth_throttle);
        // Fill the in-memory copy of the stored keys now, so the first requests need no store read.
        if let Err(e) = store.keys().verify("") {
            tracing::error!(error = %e, "cannot read the stored client keys");
        }
        let admin_key = config
            .admin_key
            .as_ref()
            .map(|k| Sha256::digest(k.as_bytes()).into());
        if config.metrics.enabled {
            crate::metrics::install(config.pricing.clone());
        }
        let live = arc_swap::ArcSwap::from_pointee(crate::live::LiveSettings::from_config(&config));
        let stats = Arc::new(crate::stats::Stats::new(
            store.rollups(),
            &accounts,
            config.pricing.clone(),
            now_ms(),
        ));
        Ok(App {
            policy_slots: tokio::sync::Semaphore::new(policies.concurrent_calls() as usize),
            gemini: Gemini::new(&config.upstream),
            upstream_calls: crate::upstream::CallLimit::new(
                config.upstream.max_concurrent_calls,
                config.upstream.max_queued_calls,
            ),
            config,
            policies,
            store,
            accounts,
            cache,
            hot,
            cache_writer,
            keys,
            limiter,
            auth_throttle,
            admin_key,
            live,
            reloader: crate::reload::Reloader::default(),
            inflight: Inflight::default(),
            stats,
            dashboard: crate::dashboard::Dashboard::default(),
            started: Instant::now(),
            background: tokio_util::task::TaskTracker::new(),
            accounts_watch: Default::default(),
        })
    }

    /// Whether `presented` is the admin key (constant time).
    pub fn is_admin(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.admin_key.is_some_and(|k| bool::from(k.ct_eq(&digest)))
    }
}

impl App {
    /// Run `f`, which calls policy components, once a component slot is free (waiting
    /// for it on the async runtime). On a multi-thread runtime `f` runs right here, on
    /// the async worker: a call takes tens of microseconds, and one that runs longer is
    /// moved off the worker by the engine ([`crate::policy::OnWorker`]). Elsewhere (a
    /// current-thread runtime) it runs on a blocking thread.
    pub async fn run_policy<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, GatewayError> {
        let _slot = self
            .policy_slots
            .acquire()
            .await
            .map_err(|e| GatewayError::Internal(format!("component slots closed: {e}")))?;
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !multi_thread {
            return blocking(f).await;
        }
        let _on_worker = crate::policy::OnWorker::enter();
        // As `spawn_blocking` would, a panic becomes this request's error, not the task's end.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .map_err(|_| GatewayError::Internal("a component call panicked".into()))
    }
}

/// Run blocking work (component calls, redb) off the async workers.
pub async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, GatewayError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GatewayError::Internal(format!("worker failed: {e}")))
}
