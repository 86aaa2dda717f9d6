//! Checks the plain-Rust logic against the shared conformance vectors in
//! `tests/vectors/request-translator.json` (the same file the host runs against the .wasm).

use aperture_policy_types::vectors::{arg, check, value, wit_result};
use request_translator::types::SafetySetting;
use request_translator::{request, response, upstream, CACHE_NAMESPACE};

#[test]
fn conformance_vectors() {
    check(
        "request-translator.json",
        "request-translator",
        "aperture:policy/translator@0.2.0",
        |function, args| match function {
            "cache-namespace" => value(CACHE_NAMESPACE),
            "parse-request" => wit_result(request::parse_request(&arg::<String>(args, 0)?)),
            "build-upstream-body" => value(upstream::build_upstream_body(
                &arg(args, 0)?,
                &arg::<Vec<SafetySetting>>(args, 1)?,
            )),
            "parse-response" => wit_result(response::parse_response(&arg::<String>(args, 0)?)),
            "build-response" => value(response::build_response(
                &arg(args, 0)?,
                arg(args, 1)?,
                arg(args, 2)?,
            )),
            other => Err(format!("unknown function {other}")),
        },
    );
}
