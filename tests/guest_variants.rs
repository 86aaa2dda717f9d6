//! The policy-lifecycle test guests (tests/guests/, built by host/build.rs): each file
//! exists, is a component the host's runtime accepts (or, for the 0.1.0 one, refuses),
//! and shows the one behaviour its crate documents, checked in process on the host's own
//! runtime. Lifecycle tests rely on these behaviours, so they are pinned here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aperture::policy::vectors::{Mismatch, VectorFile};
use aperture::policy::{
    CallLimits, ImageRequest, LifecycleError, Policies, PolicyConfig, PolicyError, ResponseFormat,
    SafetyThreshold, Screening, Sources, Which,
};

/// Install `bytes` (verified) and make them active, as `aperture policy install` + `activate` do.
fn swap(p: &Policies, which: Which, bytes: Vec<u8>) -> Result<(), LifecycleError> {
    let installed = p.install(which, &bytes, None)?;
    p.activate(which, &installed.version.sha256).map(drop)
}

/// Parse `body` on the slots' current versions: the result and the translator's namespace.
fn parse(
    p: &Policies,
    body: &str,
) -> Result<(Result<ImageRequest, aperture::policy::UserError>, String), PolicyError> {
    let pin = p.pin("guest-variants");
    let parsed = p.parse_request(&pin, body)?;
    Ok((parsed, pin.namespace().to_string()))
}

/// A test guest's built `.wasm`, as lifecycle tests find it.
fn guest(stem: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("APERTURE_GUEST_DIR")).join(format!("{stem}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("guest {}: {e}", path.display()));
    // The component-model binary preamble: magic, then layer 1 (a core module has layer 0).
    assert!(
        bytes.starts_with(b"\0asm") && bytes.get(6..8) == Some(&[1, 0]),
        "{stem}.wasm is not a component"
    );
    bytes
}

fn vectors(file: &str) -> VectorFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn policies(timeout: Duration) -> Policies {
    let limits = CallLimits {
        timeout,
        ..CallLimits::default()
    };
    Policies::load(&Sources::default(), limits).expect("embedded components load")
}

/// The conformance mismatches of a guest, by case name.
fn mismatches(which: Which, file: &str, stem: &str) -> Vec<String> {
    let found: Vec<Mismatch> = policies(Duration::from_secs(5))
        .conformance(which, &guest(stem), &vectors(file))
        .unwrap_or_else(|e| panic!("{stem} does not instantiate: {e}"));
    found.into_iter().map(|m| m.case).collect()
}

fn request(prompt: &str) -> ImageRequest {
    ImageRequest {
        model: "gemini-3-pro-image".into(),
        upstream_model: "gemini-3-pro-image-preview".into(),
        prompt: prompt.into(),
        n: 1,
        aspect_ratio: "1:1".into(),
        image_size: "1K".into(),
        style: None,
        safety_threshold: None,
        response_format: ResponseFormat::B64Json,
        output_format: None,
    }
}

fn body(prompt: &str) -> String {
    serde_json::json!({ "prompt": prompt }).to_string()
}

#[test]
fn safety_extra_deny_is_the_real_policy_plus_one_denied_term() {
    assert_eq!(
        mismatches(Which::Safety, "safety-policy.json", "safety_extra_deny"),
        Vec::<String>::new()
    );
    let p = policies(Duration::from_secs(5));
    let config = PolicyConfig { deny_list: vec![] };
    let screen = |p: &Policies, prompt: &str| {
        p.screen(
            &p.pin("t"),
            &request(prompt),
            SafetyThreshold::Medium,
            &config,
        )
        .expect("screen runs")
    };
    let canary = "a lighthouse, aperture-canary-term";
    assert!(matches!(screen(&p, canary), Screening::Allow(_)));
    swap(&p, Which::Safety, guest("safety_extra_deny"))
        .expect("safety_extra_deny loads in the safety slot");
    match screen(&p, canary) {
        Screening::Deny(d) => assert_eq!(d.code, "IMG_SAFETY_BLOCKED"),
        other => panic!("the canary term was not denied: {other:?}"),
    }
    assert!(matches!(screen(&p, "a lighthouse"), Screening::Allow(_)));
}

#[test]
fn safety_fails_vector_fails_exactly_the_spii_vector() {
    assert_eq!(
        mismatches(Which::Safety, "safety-policy.json", "safety_fails_vector"),
        vec!["finish SPII blocks".to_string()]
    );
}

#[test]
fn translator_namespace_differs_only_in_its_cache_namespace() {
    assert_eq!(
        mismatches(
            Which::Translator,
            "request-translator.json",
            "translator_namespace"
        ),
        vec!["cache namespace".to_string()]
    );
    let p = policies(Duration::from_secs(5));
    let (_, real) = parse(&p, &body("a fox")).expect("parse runs");
    swap(&p, Which::Translator, guest("translator_namespace"))
        .expect("translator_namespace loads in the translator slot");
    let (parsed, variant) = parse(&p, &body("a fox")).expect("parse runs");
    assert!(parsed.is_ok());
    assert_ne!(variant, real);
}

#[test]
fn translator_trap_traps_on_its_trigger_only() {
    assert_eq!(
        mismatches(
            Which::Translator,
            "request-translator.json",
            "translator_trap"
        ),
        Vec::<String>::new()
    );
    let p = policies(Duration::from_secs(5));
    swap(&p, Which::Translator, guest("translator_trap"))
        .expect("translator_trap loads in the translator slot");
    assert!(parse(&p, &body("a fox")).expect("no trap").0.is_ok());
    let err = parse(&p, &body("a fox, trap-me")).unwrap_err();
    assert!(matches!(err, PolicyError::Trap { .. }), "{err}");
}

#[test]
fn translator_loop_runs_past_the_deadline_on_its_trigger_only() {
    assert_eq!(
        mismatches(
            Which::Translator,
            "request-translator.json",
            "translator_loop"
        ),
        Vec::<String>::new()
    );
    let p = policies(Duration::from_millis(100));
    swap(&p, Which::Translator, guest("translator_loop"))
        .expect("translator_loop loads in the translator slot");
    assert!(parse(&p, &body("a fox")).expect("no loop").0.is_ok());
    let err = parse(&p, &body("a fox, loop-me")).unwrap_err();
    assert!(matches!(err, PolicyError::Timeout { .. }), "{err}");
}

#[test]
fn translator_wit_010_targets_the_frozen_0_1_0_package_and_is_refused() {
    let bytes = guest("translator_wit_010");
    let p = policies(Duration::from_secs(5));
    let before = p.active()[0].sha256.clone();
    let err = swap(&p, Which::Translator, bytes.clone()).unwrap_err();
    match &err {
        LifecycleError::Refused(report) => {
            let why = report.refused.as_deref().unwrap_or("");
            assert!(why.contains("aperture:policy@0.1.0"), "{why}");
            assert!(why.contains("aperture:policy@0.2.0"), "{why}");
            assert_eq!(report.wit_version.as_deref(), Some("0.1.0"));
        }
        other => panic!("not refused for its version: {other}"),
    }
    assert_eq!(p.active()[0].sha256, before);
    // It exports the 0.1.0 interface, not the host's 0.2.0 one.
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("aperture:policy/translator@0.1.0"));
    assert!(!text.contains("aperture:policy/translator@0.2.0"));
}
