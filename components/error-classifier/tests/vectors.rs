//! Checks the plain-Rust logic against the shared conformance vectors in
//! `tests/vectors/error-classifier.json` (the same file the host runs against the .wasm).

use aperture_policy_types::vectors::{arg, check, value};
use error_classifier::classify::classify;

#[test]
fn conformance_vectors() {
    check(
        "error-classifier.json",
        "error-classifier",
        "aperture:policy/classifier@0.2.0",
        |function, args| match function {
            "classify" => value(classify(&arg(args, 0)?)),
            other => Err(format!("unknown function {other}")),
        },
    );
}
