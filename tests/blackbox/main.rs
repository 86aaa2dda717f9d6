//! Black-box tests: the real `aperture` binary (spawned on `127.0.0.1:0` with its
//! own data dir) against the in-process Gemini emulator. Each test owns its
//! emulator, gateway and temporary directory, so they run in parallel.

mod harness;

mod accounts;
mod cache;
mod components;
mod config_file;
mod config_reload;
mod contract;
mod error_shapes;
mod errors;
mod fixed_upstream;
mod generation;
mod guest_variants;
mod limits;
mod logs;
mod memo;
mod metrics;
mod policy;
mod protocol;
mod safety;
mod shapes;
mod stats;
mod store;
mod upstream_faults;
