//! Conformance vectors (`tests/vectors/*.json`) run against the embedded, built
//! `.wasm` components through the host's component runtime.

use aperture::policy::vectors::VectorFile;
use aperture::policy::{embedded, CallLimits, Policies, Sources, Which};

fn check(which: Which, file: &str, bytes: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let vectors: VectorFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    assert!(!vectors.cases.is_empty(), "{file} has no cases");
    let policies = Policies::load(&Sources::default(), CallLimits::default())
        .expect("embedded components load");
    let mismatches = policies
        .conformance(which, bytes, &vectors)
        .expect("component instantiates");
    let report: Vec<String> = mismatches
        .iter()
        .map(|m| format!("- {}: {}", m.case, m.detail))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} cases in {file} failed:\n{}",
        mismatches.len(),
        vectors.cases.len(),
        report.join("\n")
    );
}

#[test]
fn request_translator_conforms() {
    check(
        Which::Translator,
        "request-translator.json",
        embedded::TRANSLATOR,
    );
}

#[test]
fn safety_policy_conforms() {
    check(Which::Safety, "safety-policy.json", embedded::SAFETY);
}

#[test]
fn error_classifier_conforms() {
    check(
        Which::Classifier,
        "error-classifier.json",
        embedded::CLASSIFIER,
    );
}

#[test]
fn a_component_of_the_wrong_world_is_refused_and_the_active_one_stays() {
    let policies = Policies::load(&Sources::default(), CallLimits::default())
        .expect("embedded components load");
    let before = policies.active()[0].sha256.clone();
    let err = policies
        .install(Which::Translator, embedded::SAFETY, None)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("exports aperture:policy/safety@0.2.0 (another slot's interface)"),
        "{err}"
    );
    assert_eq!(policies.active()[0].sha256, before);
}

#[test]
fn a_component_that_asks_for_more_than_cli_and_io_is_refused() {
    // Policy components are pure functions: clocks, randomness, files and sockets
    // are not linked, so asking for any of them fails at load, before any call.
    let wants_randomness = wat::parse_str(
        r#"(component
             (import "wasi:random/random@0.2.6" (instance
               (export "get-random-u64" (func (result u64))))))"#,
    )
    .expect("valid component text");
    let policies = Policies::load(&Sources::default(), CallLimits::default())
        .expect("embedded components load");
    let err = policies
        .install(Which::Safety, &wants_randomness, None)
        .unwrap_err();
    assert!(err.to_string().contains("wasi:random/random"), "{err}");
}
