//! Aperture: an OpenAI-compatible image-generation gateway in front of Gemini
//! image models, whose policy (translation, safety, error classification) runs as
//! WebAssembly components. The binary is a thin CLI over this library.

pub mod config;
pub mod policy;
