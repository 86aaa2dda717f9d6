//! Checks the plain-Rust logic against the shared conformance vectors in
//! `tests/vectors/error-classifier.json` (the same file the host runs against the .wasm).

use error_classifier::classify::classify;
use error_classifier::types::Failure;
use serde_json::{json, Value};

fn call(case: &Value) -> Value {
    match case["function"].as_str().unwrap_or_default() {
        "classify" => {
            let failure: Failure = serde_json::from_value(case["args"][0].clone())
                .unwrap_or_else(|e| panic!("{}: bad argument: {e}", case["name"]));
            json!(classify(&failure))
        }
        other => panic!("{}: unknown function {other}", case["name"]),
    }
}

#[test]
fn conformance_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/error-classifier.json"
    );
    let text = std::fs::read_to_string(path).expect("read vectors");
    let file: Value = serde_json::from_str(&text).expect("vectors are JSON");
    assert_eq!(file["component"], "error-classifier");
    assert_eq!(file["interface"], "aperture:policy/classifier@0.1.0");
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
