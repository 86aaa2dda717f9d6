//! The conformance-vector harness: runs every case of a `tests/vectors/<file>.json`
//! against a component's plain-Rust logic (the host runs the same file against the
//! built `.wasm`), so both implementations are held to one specification.
//!
//! A case is `{"name", "function", "args": [...], "expect": value}` or, for functions
//! that return a JSON document as a string, `"expect_json": value`: the returned string
//! is parsed and compared as a JSON value, so key order and spacing do not matter.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// The workspace root: this crate lives in `components/policy-types/`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Decodes argument `i` of a case from its vector encoding.
pub fn arg<T: DeserializeOwned>(args: &[Value], i: usize) -> Result<T, String> {
    let value = args.get(i).ok_or_else(|| format!("missing argument {i}"))?;
    serde_json::from_value(value.clone()).map_err(|e| format!("bad argument {i}: {e}"))
}

/// Encodes a value in the vector encoding.
pub fn value<T: Serialize>(v: T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("result does not serialize: {e}"))
}

/// Encodes a WIT `result<T, E>` in the vector encoding (`{"ok": T}` or `{"err": E}`).
pub fn wit_result<T: Serialize, E: Serialize>(r: Result<T, E>) -> Result<Value, String> {
    match r {
        Ok(v) => Ok(json!({ "ok": value(v)? })),
        Err(e) => Ok(json!({ "err": value(e)? })),
    }
}

/// Checks `call` against every case of `tests/vectors/<file_name>` and returns the
/// number of cases checked.
///
/// The file must name `component` and `interface` and hold at least one case. `call`
/// gets a case's function name and arguments and returns its result in the vector
/// encoding, or an error (unknown function, undecodable argument), which counts as a
/// mismatch. Panics with a report of every mismatch.
pub fn check(
    file_name: &str,
    component: &str,
    interface: &str,
    call: impl Fn(&str, &[Value]) -> Result<Value, String>,
) -> usize {
    let path = workspace_root().join("tests/vectors").join(file_name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let file: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert_eq!(file["component"], component, "{file_name}: component");
    assert_eq!(file["interface"], interface, "{file_name}: interface");
    let cases = file["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{file_name}: no `cases` array"));
    assert!(!cases.is_empty(), "{file_name} has no cases");

    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let name = case["name"].as_str().unwrap_or("<unnamed>");
            check_case(case, &call)
                .err()
                .map(|detail| format!("{name}:\n  {detail}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors in {file_name} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("{file_name}: {} vector cases passed", cases.len());
    cases.len()
}

/// Runs one case; `Err` describes the mismatch.
fn check_case(
    case: &Value,
    call: &impl Fn(&str, &[Value]) -> Result<Value, String>,
) -> Result<(), String> {
    let function = case["function"].as_str().ok_or("case has no `function`")?;
    let args = match &case["args"] {
        Value::Array(args) => args.as_slice(),
        Value::Null => &[],
        other => return Err(format!("`args` is not an array: {other}")),
    };
    let actual = call(function, args).map_err(|e| format!("{function}: {e}"))?;
    let (actual, expected) = if let Some(expected) = case.get("expect") {
        (actual, expected.clone())
    } else if let Some(expected) = case.get("expect_json") {
        let s = actual
            .as_str()
            .ok_or_else(|| format!("expect_json needs a string result, got {actual}"))?;
        let parsed =
            serde_json::from_str(s).map_err(|e| format!("result is not JSON ({e}): {s}"))?;
        (parsed, expected.clone())
    } else {
        return Err("case has neither `expect` nor `expect_json`".to_string());
    };
    if actual != expected {
        return Err(format!("expected {expected}\n  actual   {actual}"));
    }
    Ok(())
}
