//! The command line: `aperture serve | emulator | accounts | keys | cache | config | stats | store`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Aperture: an OpenAI-compatible image-generation gateway for Gemini image models.
#[derive(Debug, Parser)]
#[command(name = "aperture", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Run the Gemini API emulator alone (for trying clients without Google).
    Emulator(EmulatorArgs),
    /// Manage upstream accounts on a running gateway (admin API).
    Accounts {
        /// Where the gateway is.
        #[command(flatten)]
        remote: Remote,
        /// What to do.
        #[command(subcommand)]
        action: AccountsAction,
    },
    /// Manage client API keys on a running gateway (admin API).
    Keys {
        /// Where the gateway is.
        #[command(flatten)]
        remote: Remote,
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Inspect or clear the image cache of a running gateway (admin API).
    Cache {
        /// Where the gateway is.
        #[command(flatten)]
        remote: Remote,
        /// What to do.
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Re-read a running gateway's config file and environment (admin API; like SIGHUP).
    Config {
        /// Where the gateway is.
        #[command(flatten)]
        remote: Remote,
        /// What to do.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// The runbook's business and technical metrics of a running gateway, with targets and marks (admin API).
    Stats {
        /// The window: 1h, 24h, 7d (any number of m, h or d up to 30d).
        #[arg(long, default_value = "1h")]
        since: String,
        /// Where the gateway is.
        #[command(flatten)]
        remote: Remote,
    },
    /// Verify, install and roll out policy components (docs/policy.md); all but
    /// `verify` talk to a running gateway's admin API.
    Policy {
        /// Where the gateway is.
        #[command(flatten)]
        remote: Remote,
        /// What to do.
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Back up a running gateway's store; restore, repair or re-key a stopped one's.
    Store {
        /// What to do.
        #[command(subcommand)]
        action: StoreAction,
    },
}

/// `aperture serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long)]
    pub listen: Option<String>,
    /// Serve the admin API (/admin/*) on this address only, e.g. 127.0.0.1:8046 (then /admin/* is 404 on --listen).
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Directory for the store and logs [default: ~/.aperture, or ~/.aperture/demo with --demo].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (environment variables and flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Demo mode: start the embedded Gemini emulator with three demo accounts.
    #[arg(long)]
    pub demo: bool,
    /// File holding the key account secrets are encrypted with (or set APERTURE_SECRET_KEY).
    #[arg(long)]
    pub secret_key_file: Option<PathBuf>,
}

/// `aperture emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8046")]
    pub listen: SocketAddr,
    /// Accepted API keys (repeatable); without any, every key not starting with "invalid" is accepted.
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Latency added to every generateContent call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Prompts containing this term come back with promptFeedback.blockReason
    /// (repeatable; replaces the default `prohibited-test`).
    #[arg(long = "block-term")]
    pub block_terms: Vec<String>,
    /// Prompts containing this term come back with finishReason IMAGE_SAFETY
    /// (repeatable; replaces the default `unsafe-image-test`).
    #[arg(long = "image-safety-term")]
    pub image_safety_terms: Vec<String>,
    /// Default part layout: interim, drafts-N, thought-only, finals-N, image-only, plain
    /// (per-call `emu:layout=` overrides; see docs/emulator.md).
    #[arg(long)]
    pub layout: Option<String>,
    /// Default answer text: none, before, after, split, long-before, long-after, long-split, echo.
    #[arg(long)]
    pub text: Option<String>,
    /// Image format for every model: png or jpeg (default: the model's usual one).
    #[arg(long)]
    pub mime: Option<String>,
    /// Thought signature size: short or real (about 1.45 MB on images).
    #[arg(long)]
    pub signature: Option<String>,
    /// Every call ends with this finishReason and no image (e.g. IMAGE_SAFETY, IMAGE_OTHER, NO_IMAGE).
    #[arg(long)]
    pub finish: Option<String>,
    /// The `content` of --finish candidates: absent, empty, role, null-parts.
    #[arg(long)]
    pub content: Option<String>,
    /// Every prompt is blocked with this promptFeedback.blockReason (OTHER, SAFETY, ...).
    #[arg(long)]
    pub block: Option<String>,
    /// Every call gets a refusal: text.
    #[arg(long)]
    pub refuse: Option<String>,
    /// Every call answers this named real error (e.g. 429-limit0, 503-overloaded, 502-html).
    #[arg(long)]
    pub error: Option<String>,
    /// Never gzip answers, even for clients that accept gzip.
    #[arg(long)]
    pub no_gzip: bool,
}

impl EmulatorArgs {
    /// The shape flags as `(directive name, value)` pairs.
    pub fn shape_pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("layout", &self.layout),
            ("text", &self.text),
            ("mime", &self.mime),
            ("signature", &self.signature),
            ("finish", &self.finish),
            ("content", &self.content),
            ("block", &self.block),
            ("refuse", &self.refuse),
            ("error", &self.error),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// How to reach a running gateway's admin API.
#[derive(Debug, Args)]
pub struct Remote {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "APERTURE_SERVER",
        default_value = "http://127.0.0.1:8045",
        global = true
    )]
    pub server: String,
    /// Print raw JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `aperture accounts …`.
#[derive(Debug, Subcommand)]
pub enum AccountsAction {
    /// Add an account. The secret (Gemini API key) is read from stdin, or from the
    /// environment variable named by --secret-env; never from the command line.
    Add {
        /// A unique label.
        #[arg(long)]
        label: String,
        /// The account's email, shown in logs as account_email.
        #[arg(long)]
        email: Option<String>,
        /// Read the secret from this environment variable instead of stdin.
        #[arg(long)]
        secret_env: Option<String>,
    },
    /// List accounts (secrets masked) with their state.
    List,
    /// Take an account out of rotation.
    Disable {
        /// Account id or label.
        account: String,
        /// Why (shown in the list).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Put an account back in rotation (clears cool-downs too).
    Enable {
        /// Account id or label.
        account: String,
    },
    /// Delete an account.
    Remove {
        /// Account id or label.
        account: String,
    },
}

/// Limits of one client key, as flags. Each takes a number (0 or `unlimited`: no limit) or `default`
/// (the gateway's `[limits]` setting); a flag left out is not changed.
#[derive(Debug, Args, Default)]
pub struct LimitArgs {
    /// Requests per minute (a burst of N, refilled at N per minute).
    #[arg(long, value_name = "N|unlimited|default")]
    pub rpm: Option<String>,
    /// Images generated upstream per day (until midnight America/Los_Angeles).
    #[arg(long, value_name = "N|unlimited|default")]
    pub images_per_day: Option<String>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N|unlimited|default")]
    pub max_concurrent: Option<String>,
    /// Safety thresholds the key may ask for, comma-separated (e.g. MEDIUM,HIGH), or `default`.
    #[arg(long, value_name = "LIST|default")]
    pub allow_thresholds: Option<String>,
}

/// `aperture keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Add a client key; the key is read from stdin.
    Add {
        /// A unique label.
        #[arg(long)]
        label: String,
        /// The key's limits (the gateway's defaults otherwise).
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Change the limits of a stored client key.
    Set {
        /// The label.
        label: String,
        /// The limits to change.
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List client keys (labels, hash prefixes, limits and usage).
    List,
    /// Remove a client key.
    Remove {
        /// The label.
        label: String,
    },
}

/// `aperture cache …`.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Entries, bytes and limits.
    Stats,
    /// Remove every entry.
    Clear,
}

/// `aperture config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Apply the live settings of the config file and environment now (all or nothing: a file
    /// with problems is refused, each problem named, and the running configuration stays).
    Reload,
}

/// `aperture store …`.
#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Save a consistent copy of a running gateway's store to FILE (through the admin API).
    Backup {
        /// Where to write the backup (must not exist).
        file: PathBuf,
        /// Leave the image cache out (accounts, client keys and settings only).
        #[arg(long)]
        no_cache: bool,
        /// Where the gateway is.
        #[command(flatten)]
        remote: Remote,
    },
    /// Replace a stopped gateway's store with a backup (checked first; the old file is kept aside).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The stopped gateway's data dir [default: ~/.aperture].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Check a stopped gateway's store and repair it; an unrecoverable file is moved aside.
    Repair {
        /// The stopped gateway's data dir [default: ~/.aperture].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Re-encrypt every account secret with a new key (old key: APERTURE_SECRET_KEY; new key:
    /// APERTURE_NEW_SECRET_KEY or stdin).
    RotateKey {
        /// The stopped gateway's data dir [default: ~/.aperture].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// `aperture policy …`. SLOT is `translator`, `safety` or `classifier`; REF is a
/// sha256 prefix of at least 8 hex digits, or a label.
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Verify a component offline (no gateway needed): exit 0 only if it passes.
    Verify {
        /// The component's .wasm file.
        file: PathBuf,
        /// The slot it is meant for.
        #[arg(long)]
        slot: String,
    },
    /// Verify and store a component version; prints its sha256 and the report.
    Install {
        /// The component's .wasm file.
        file: PathBuf,
        /// The slot it is meant for.
        #[arg(long)]
        slot: String,
        /// A label to refer to it by (letters, digits, '-', '_', '.').
        #[arg(long)]
        label: Option<String>,
    },
    /// Per slot: versions, their roles and live counters.
    List,
    /// Run REF beside the active version on live traffic; clients keep the active result.
    Shadow {
        /// The slot.
        slot: String,
        /// The version.
        #[arg(value_name = "REF")]
        reference: String,
    },
    /// Serve REF to N% of requests (by a hash of the request id).
    Canary {
        /// The slot.
        slot: String,
        /// The version.
        #[arg(value_name = "REF")]
        reference: String,
        /// Share of requests, 1-99.
        #[arg(long)]
        percent: u8,
    },
    /// Make the candidate active (the active one becomes previous).
    Promote {
        /// The slot.
        slot: String,
    },
    /// Drop the candidate.
    Abort {
        /// The slot.
        slot: String,
    },
    /// Make REF active at once.
    Activate {
        /// The slot.
        slot: String,
        /// The version.
        #[arg(value_name = "REF")]
        reference: String,
    },
    /// Make the previous version active again.
    Rollback {
        /// The slot.
        slot: String,
    },
    /// Lifecycle events, oldest first.
    History {
        /// Only this slot.
        slot: Option<String>,
    },
    /// Write a version's bytes to stdout (the active one without REF).
    Export {
        /// The slot.
        slot: String,
        /// The version.
        #[arg(value_name = "REF")]
        reference: Option<String>,
    },
}
