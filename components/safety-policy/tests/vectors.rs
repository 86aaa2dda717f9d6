//! Checks the plain-Rust logic against the shared conformance vectors in
//! `tests/vectors/safety-policy.json` (the same file the host runs against the .wasm).

use aperture_policy_types::vectors::{arg, check, value};
use safety_policy::policy;

#[test]
fn conformance_vectors() {
    check(
        "safety-policy.json",
        "safety-policy",
        "aperture:policy/safety@0.2.0",
        |function, args| match function {
            "screen" => value(policy::screen(
                &arg(args, 0)?,
                arg(args, 1)?,
                &arg(args, 2)?,
            )),
            "review" => value(policy::review(&arg(args, 0)?)),
            other => Err(format!("unknown function {other}")),
        },
    );
}
