//! Checks the plain-Rust logic against the shared conformance vectors in
//! `tests/vectors/request-translator.json` (the same file the host runs against the .wasm).

use request_translator::types::{Generation, ImageRequest, ResponseFormat, SafetySetting};
use request_translator::{request, response, upstream, CACHE_NAMESPACE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

fn arg<T: DeserializeOwned>(case: &Value, i: usize) -> T {
    serde_json::from_value(case["args"][i].clone())
        .unwrap_or_else(|e| panic!("{}: bad argument {i}: {e}", case["name"]))
}

fn wit_result<T: Serialize, E: Serialize>(r: Result<T, E>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": e }),
    }
}

fn call(case: &Value) -> Value {
    match case["function"].as_str().unwrap_or_default() {
        "cache-namespace" => json!(CACHE_NAMESPACE),
        "parse-request" => wit_result(request::parse_request(&arg::<String>(case, 0))),
        "build-upstream-body" => json!(upstream::build_upstream_body(
            &arg::<ImageRequest>(case, 0),
            &arg::<Vec<SafetySetting>>(case, 1)
        )),
        "parse-response" => wit_result(response::parse_response(&arg::<String>(case, 0))),
        "build-response" => json!(response::build_response(
            &arg::<Generation>(case, 0),
            arg::<ResponseFormat>(case, 1),
            arg::<u64>(case, 2)
        )),
        other => panic!("{}: unknown function {other}", case["name"]),
    }
}

#[test]
fn conformance_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/request-translator.json"
    );
    let text = std::fs::read_to_string(path).expect("read vectors");
    let file: Value = serde_json::from_str(&text).expect("vectors are JSON");
    assert_eq!(file["component"], "request-translator");
    assert_eq!(file["interface"], "aperture:policy/translator@0.1.0");
    let cases = file["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let actual = call(case);
        let (actual, expected) = if let Some(expected) = case.get("expect") {
            (actual, expected.clone())
        } else {
            let s = actual.as_str().expect("expect_json needs a string result");
            (
                serde_json::from_str(s).expect("result is JSON"),
                case["expect_json"].clone(),
            )
        };
        if actual != expected {
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
