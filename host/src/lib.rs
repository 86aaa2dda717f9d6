//! Aperture: an OpenAI-compatible image-generation gateway in front of Gemini
//! image models, whose policy (translation, safety, error classification) runs as
//! WebAssembly components. The binary is a thin CLI over this library.

pub mod accounts_watch;
pub mod admin;
pub mod admin_client;
pub mod admin_limits;
pub mod admin_policy;
pub mod app;
pub mod auth_throttle;
pub mod backup;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod config_client;
pub mod convert;
pub mod dashboard;
pub mod data_dir;
pub mod errors;
pub mod gateway;
pub mod generated;
pub mod limiter;
pub mod live;
pub mod log_rotation;
pub mod log_sink;
pub mod logging;
pub mod maintenance;
pub mod memory;
pub mod metrics;
pub mod policy;
pub mod policy_cli;
pub mod pricing;
pub mod rate;
pub mod readiness;
pub mod redact;
pub mod reload;
pub mod serve;
pub mod server;
pub mod stats;
pub mod store_cli;
pub mod upstream;
