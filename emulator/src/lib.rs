//! A faithful subset of Google's Gemini `generateContent` API for image models, so Aperture's demo mode and
//! tests run without the internet: real JPEGs and PNGs at each model's pixel sizes, thought parts and
//! signatures, usage metadata, safety outcomes, per-key quotas with the real 429 body, streaming, and every
//! response shape production is known to send, selectable per instance ([`Shape`]) or per call (`emu:`
//! directives in the prompt), plus injectable named errors and latency. See `docs/emulator.md`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use aperture_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::bind("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default()).await?;
//! let url = format!("{}/v1beta/models/gemini-3-pro-image-preview:generateContent", emulator.base_url());
//! emulator.fail_next(&[503]);
//! # let _ = url; Ok(()) }
//! ```

mod catalog;
mod config;
mod control;
mod directives;
mod errors;
mod generate;
mod handle;
mod images;
mod models;
mod png_writer;
mod quota;
mod reply;
mod request;
mod response;
mod safety;
mod server;
mod shape;
mod signatures;
mod state;
mod stream;
mod texts;
mod usage;
mod wire;

pub use catalog::NamedError;
pub use config::{EmulatorConfig, HarmTerm, KeySpec, Quota, QuotaWindow};
pub use directives::PREFIX as DIRECTIVE_PREFIX;
pub use handle::{run_standalone, Emulator};
pub use images::{pixel_size, pixel_size_for};
pub use shape::{
    BlockReason, ContentShape, FinishReason, Layout, Mime, Refusal, Shape, ShapeError,
    SignatureSize, TextMode, MAX_DELAY_MS,
};
