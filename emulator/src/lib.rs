//! A faithful subset of Google's Gemini `generateContent` API for image models, so Aperture's demo mode and
//! tests run without the internet: real PNGs at the documented sizes, thought parts, usage metadata, safety
//! outcomes, per-key quotas with the real 429 body, and injectable faults and latency.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use aperture_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::bind("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default()).await?;
//! let url = format!("{}/v1beta/models/gemini-3-pro-image-preview:generateContent", emulator.base_url());
//! emulator.fail_next(&[503]);
//! # let _ = url; Ok(()) }
//! ```

mod config;
mod control;
mod errors;
mod generate;
mod handle;
mod images;
mod models;
mod png_writer;
mod quota;
mod request;
mod response;
mod safety;
mod server;
mod state;

pub use config::{EmulatorConfig, HarmTerm, KeySpec, Quota, QuotaWindow};
pub use handle::{run_standalone, Emulator};
pub use images::pixel_size;
