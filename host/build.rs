//! Builds the policy components (and the hostile test guests) from source for
//! `wasm32-wasip2`, so the gateway embeds the components of this very checkout.
//!
//! The guests are built by a nested `cargo build` with its own target directory
//! (sharing the outer `target/` would deadlock a `--release` build on cargo's lock)
//! and with the outer RUSTFLAGS stripped (they are meant for the host target).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest crates built here: (package name, wasm file stem).
const GUESTS: &[(&str, &str)] = &[
    ("request-translator", "request_translator"),
    ("safety-policy", "safety_policy"),
    ("error-classifier", "error_classifier"),
    ("hostile-guest", "hostile_guest"),
    // Policy-lifecycle test variants (tests/guests/): the real components with one change.
    ("safety-extra-deny", "safety_extra_deny"),
    ("safety-fails-vector", "safety_fails_vector"),
    ("translator-namespace", "translator_namespace"),
    ("translator-trap", "translator_trap"),
    ("translator-loop", "translator_loop"),
    ("translator-wit-010", "translator_wit_010"),
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let guest_target = workspace.join("target").join("guests");

    for dir in ["wit", "components", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    ensure_wasm_target();

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--locked",
        ])
        .env("CARGO_TARGET_DIR", &guest_target)
        // The guests' own release profile (the host's is left alone): small and fast components, no
        // debug sections. panic=abort is what wasm32 does anyway (a guest panic traps, the host reports it).
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_PRIMARY_PACKAGE");
    for (package, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the policy components: {e}"));
    if !status.success() {
        panic!(
            "building the policy components for wasm32-wasip2 failed ({status}). \
             Is the target installed? Run: rustup target add wasm32-wasip2"
        );
    }

    let built = guest_target.join("wasm32-wasip2").join("release");
    for (_, stem) in GUESTS {
        copy(
            &built.join(format!("{stem}.wasm")),
            &out_dir.join(format!("{stem}.wasm")),
        );
    }
    // Integration tests and benches find the hostile guests here.
    println!("cargo:rustc-env=APERTURE_GUEST_DIR={}", out_dir.display());
}

/// The README promises a fresh machine with only the Rust toolchain: install the
/// guest target through rustup when it is missing.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let installed = sysroot
        .map(|o| {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                .join("lib/rustlib/wasm32-wasip2")
                .is_dir()
        })
        .unwrap_or(false);
    if installed {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target with rustup (needed to build the policy components)");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        panic!("the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed; install it and build again");
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
