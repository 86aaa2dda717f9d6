//! Checks the plain-Rust logic against the shared conformance vectors in
//! `tests/vectors/safety-policy.json` (the same file the host runs against the .wasm).

use safety_policy::policy;
use safety_policy::types::{ImageRequest, PolicyConfig, SafetyThreshold, UpstreamVerdict};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn arg<T: DeserializeOwned>(case: &Value, i: usize) -> T {
    serde_json::from_value(case["args"][i].clone())
        .unwrap_or_else(|e| panic!("{}: bad argument {i}: {e}", case["name"]))
}

fn call(case: &Value) -> Value {
    match case["function"].as_str().unwrap_or_default() {
        "screen" => json!(policy::screen(
            &arg::<ImageRequest>(case, 0),
            arg::<SafetyThreshold>(case, 1),
            &arg::<PolicyConfig>(case, 2)
        )),
        "review" => json!(policy::review(&arg::<UpstreamVerdict>(case, 0))),
        other => panic!("{}: unknown function {other}", case["name"]),
    }
}

#[test]
fn conformance_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/safety-policy.json"
    );
    let text = std::fs::read_to_string(path).expect("read vectors");
    let file: Value = serde_json::from_str(&text).expect("vectors are JSON");
    assert_eq!(file["component"], "safety-policy");
    assert_eq!(file["interface"], "aperture:policy/safety@0.1.0");
    let cases = file["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let actual = call(case);
        let expected = &case["expect"];
        if &actual != expected {
            failures.push(format!(
                "{}:\n  expected {expected}\n  actual   {actual}",
                case["name"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
