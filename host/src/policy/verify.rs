//! The one verification pipeline a component version must pass before it can
//! become candidate or active: used by `install`, by the offline
//! `aperture policy verify` and at start-up for configured files. Its
//! [`Report`] is stored with the version.
//!
//! Checks, in order (a failed check stops the ones after it):
//! 1. `component` — WebAssembly at all, a component rather than a core module, compiles;
//! 2. `world` (imports) — links against the authority-free WASI linker (a missing
//!    or extra import is named);
//! 3. `wit_version` — exports the slot's interface of a WIT package version
//!    semver-compatible with the host's ([`HOST_WIT_VERSION`]);
//! 4. `world` (exports) — type-checks against the slot's world;
//! 5. `vectors` — every embedded conformance vector of the slot passes (a
//!    translator's `cache-namespace` may return any non-empty string: it names
//!    the version's cache entries, it is not behaviour);
//! 6. `limits` — every vector call finished within the call deadline and the
//!    memory cap (median and max call time are reported).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre};

use super::engine::{CallState, Runtime};
use super::vectors::{self, VectorFile};
use super::{hex, Which};

/// The WIT package version this host implements (`wit/`).
pub const HOST_WIT_VERSION: &str = "0.2.0";

/// The conformance vectors of each slot, embedded in the binary.
pub fn vectors_for(which: Which) -> &'static str {
    match which {
        Which::Translator => include_str!("../../../tests/vectors/request-translator.json"),
        Which::Safety => include_str!("../../../tests/vectors/safety-policy.json"),
        Which::Classifier => include_str!("../../../tests/vectors/error-classifier.json"),
    }
}

/// One check of the pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// `component`, `wit_version`, `world`, `vectors` or `limits`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// A conformance vector that did not pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorFailure {
    /// The case name.
    pub name: String,
    /// The exported function.
    pub function: String,
    /// The arguments.
    pub input: Value,
    /// What was expected.
    pub expected: Value,
    /// What came back (or the call's error).
    pub actual: Value,
}

/// The verification report of one component for one slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The slot it was verified for.
    pub slot: String,
    /// sha256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether every check passed.
    pub passed: bool,
    /// The first failed check, in words (what is wrong and what to do).
    pub refused: Option<String>,
    /// The WIT package version the component targets, when it could be read.
    pub wit_version: Option<String>,
    /// The host's WIT package version.
    pub host_wit_version: String,
    /// Every check that ran.
    pub checks: Vec<Check>,
    /// Vectors run.
    pub vectors: usize,
    /// Vectors passed.
    pub vectors_passed: usize,
    /// The failing vectors.
    pub failures: Vec<VectorFailure>,
    /// Median vector call time, microseconds.
    pub median_call_us: u64,
    /// Slowest vector call, microseconds.
    pub max_call_us: u64,
    /// The call deadline the vectors ran under, milliseconds.
    pub timeout_ms: u64,
    /// The memory cap the vectors ran under, MiB.
    pub max_memory_mb: u64,
}

impl Report {
    fn refuse(&mut self, name: &str, detail: String) {
        self.checks.push(Check {
            name: name.into(),
            passed: false,
            detail: detail.clone(),
        });
        self.passed = false;
        if self.refused.is_none() {
            self.refused = Some(detail);
        }
    }

    fn pass(&mut self, name: &str, detail: String) {
        self.checks.push(Check {
            name: name.into(),
            passed: true,
            detail,
        });
    }

    /// A human-readable, multi-line rendering (the CLI's output).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let verdict = if self.passed { "PASSED" } else { "REFUSED" };
        let _ = writeln!(
            out,
            "{verdict}: {} component sha256 {} ({} bytes, WIT {})",
            self.slot,
            self.sha256,
            self.size,
            self.wit_version.as_deref().unwrap_or("unknown")
        );
        for c in &self.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {mark} {:<11} {}", c.name, c.detail);
        }
        for f in &self.failures {
            let _ = writeln!(out, "  vector {:?} ({}):", f.name, f.function);
            let _ = writeln!(out, "    input:    {}", f.input);
            let _ = writeln!(out, "    expected: {}", f.expected);
            let _ = writeln!(out, "    actual:   {}", f.actual);
        }
        out
    }
}

/// The export name of the slot's interface, without the version.
pub fn interface_of(which: Which) -> &'static str {
    match which {
        Which::Translator => "aperture:policy/translator",
        Which::Safety => "aperture:policy/safety",
        Which::Classifier => "aperture:policy/classifier",
    }
}

/// Whether `version` is semver-compatible with the host's (same major, and the same
/// minor while the major is 0).
pub fn compatible(version: &str) -> bool {
    let req = semver::VersionReq::parse(&format!("^{HOST_WIT_VERSION}"));
    match (req, semver::Version::parse(version)) {
        (Ok(req), Ok(v)) => req.matches(&v),
        _ => false,
    }
}

/// Run the pipeline on `bytes` for `which`. `check` is the slot's typed world check
/// (the bindgen `*Pre::new`). Returns the report and, when every check passed, the
/// compiled component (so the caller need not compile it again).
pub fn verify(
    runtime: &Runtime,
    which: Which,
    bytes: &[u8],
    compile: impl FnOnce(&[u8]) -> wasmtime::Result<Component>,
    check: impl FnOnce(InstancePre<CallState>) -> wasmtime::Result<()>,
) -> (Report, Option<Component>) {
    let mut report = Report {
        slot: which.name().into(),
        sha256: hex(&Sha256::digest(bytes)),
        size: bytes.len() as u64,
        passed: true,
        refused: None,
        wit_version: None,
        host_wit_version: HOST_WIT_VERSION.into(),
        checks: Vec::new(),
        vectors: 0,
        vectors_passed: 0,
        failures: Vec::new(),
        median_call_us: 0,
        max_call_us: 0,
        timeout_ms: runtime.limits.timeout.as_millis() as u64,
        max_memory_mb: (runtime.limits.max_memory_bytes >> 20) as u64,
    };

    // 1. A component.
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        report.refuse(
            "component",
            "this is not WebAssembly (no `\\0asm` header): give the component's .wasm file".into(),
        );
        return (report, None);
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        report.refuse(
            "component",
            "this is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)".into(),
        );
        return (report, None);
    }
    let component = match compile(bytes) {
        Ok(c) => c,
        Err(e) => {
            report.refuse(
                "component",
                format!("the component does not compile: {e:#}"),
            );
            return (report, None);
        }
    };
    report.pass("component", "a WebAssembly component; compiles".into());

    // 2. Imports: only what the host grants (an extra import is named).
    let pre = match runtime.linker.instantiate_pre(&component) {
        Ok(pre) => pre,
        Err(e) => {
            report.refuse(
                "world",
                format!(
                    "the component's imports cannot be satisfied (policy components get no clocks, random, filesystem or network): {e:#}"
                ),
            );
            return (report, None);
        }
    };

    // 2b. WIT version, read from the exported interface names.
    let wanted = interface_of(which);
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(&runtime.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let ours = exports.iter().find_map(|name| {
        let (iface, version) = name.split_once('@')?;
        (iface == wanted).then(|| version.to_string())
    });
    match ours {
        None => {
            let others: Vec<&str> = exports
                .iter()
                .map(String::as_str)
                .filter(|n| n.starts_with("aperture:policy/"))
                .collect();
            let found = if others.is_empty() {
                format!("exports {:?}", exports)
            } else {
                format!("exports {} (another slot's interface)", others.join(", "))
            };
            report.refuse(
                "wit_version",
                format!(
                    "the {} slot needs a component exporting {wanted}@{HOST_WIT_VERSION}; this one {found}: install it for the right --slot",
                    which.name()
                ),
            );
            return (report, None);
        }
        Some(version) => {
            report.wit_version = Some(version.clone());
            if !compatible(&version) {
                report.refuse(
                    "wit_version",
                    format!(
                        "the component targets aperture:policy@{version}, but this host implements aperture:policy@{HOST_WIT_VERSION}: rebuild it against the host's WIT (wit/ of this release)"
                    ),
                );
                return (report, None);
            }
            report.pass(
                "wit_version",
                format!(
                    "targets aperture:policy@{version}, compatible with the host's {HOST_WIT_VERSION}"
                ),
            );
        }
    }

    // 3. World: exports type-checked.
    if let Err(e) = check(pre.clone()) {
        report.refuse(
            "world",
            format!(
                "the component does not implement the {} world: {e:#}",
                which.name()
            ),
        );
        return (report, None);
    }
    report.pass(
        "world",
        format!(
            "implements the {} world with only the WASI the host grants",
            which.name()
        ),
    );

    // 4. Conformance vectors, 5. limits.
    let file: VectorFile = match serde_json::from_str(vectors_for(which)) {
        Ok(f) => f,
        Err(e) => {
            report.refuse("vectors", format!("the embedded vectors do not parse: {e}"));
            return (report, None);
        }
    };
    let runs = match vectors::run_cases(runtime, which, &pre, &file) {
        Ok(runs) => runs,
        Err(e) => {
            report.refuse(
                "vectors",
                format!("the component cannot be instantiated: {e}"),
            );
            return (report, None);
        }
    };
    // A call stopped at its deadline on a loaded machine (many gateways starting at
    // once) says little about the component: such cases run again, up to twice, and
    // only a case that times out every time counts against it.
    let mut runs = runs;
    for _ in 0..2 {
        let again: Vec<_> = file
            .cases
            .iter()
            .filter(|c| runs.iter().any(|r| r.timed_out && r.name == c.name))
            .cloned()
            .collect();
        if again.is_empty() {
            break;
        }
        let retry = VectorFile {
            cases: again,
            ..file.clone()
        };
        if let Ok(second) = vectors::run_cases(runtime, which, &pre, &retry) {
            for s in second {
                if let Some(r) = runs.iter_mut().find(|r| r.name == s.name) {
                    *r = s;
                }
            }
        }
    }
    // A translator's cache namespace is its own identity, not behaviour to conform
    // to: any non-empty string passes (the vectors pin the default translator's).
    for r in &mut runs {
        if r.function == "cache-namespace"
            && !r.timed_out
            && r.actual.as_str().is_some_and(|s| !s.trim().is_empty())
        {
            r.failure = None;
        }
    }
    report.vectors = runs.len();
    let mut times: Vec<u64> = runs.iter().map(|r| r.elapsed.as_micros() as u64).collect();
    times.sort_unstable();
    report.median_call_us = times.get(times.len() / 2).copied().unwrap_or(0);
    report.max_call_us = times.last().copied().unwrap_or(0);
    let over: Vec<&str> = runs
        .iter()
        .filter(|r| r.timed_out)
        .map(|r| r.name.as_str())
        .collect();
    let trapped_memory: Vec<&str> = runs
        .iter()
        .filter(|r| {
            r.failure
                .as_deref()
                .is_some_and(|f| f.contains("memory") && f.starts_with("call failed"))
        })
        .map(|r| r.name.as_str())
        .collect();
    for r in &runs {
        if r.failure.is_some() {
            report.failures.push(VectorFailure {
                name: r.name.clone(),
                function: r.function.clone(),
                input: r.input.clone(),
                expected: r.expected.clone(),
                actual: r.actual.clone(),
            });
        }
    }
    report.vectors_passed = runs.len() - report.failures.len();
    if report.failures.is_empty() {
        report.pass(
            "vectors",
            format!("{} of {} conformance vectors pass", runs.len(), runs.len()),
        );
    } else {
        let names: Vec<&str> = report.failures.iter().map(|f| f.name.as_str()).collect();
        report.refuse(
            "vectors",
            format!(
                "{} of {} conformance vectors fail ({}): fix the component so it returns what tests/vectors/ expects",
                report.failures.len(),
                runs.len(),
                names.join(", ")
            ),
        );
    }
    if over.is_empty() && trapped_memory.is_empty() {
        report.pass(
            "limits",
            format!(
                "every call within {} ms and {} MiB; median {} us, max {} us",
                report.timeout_ms, report.max_memory_mb, report.median_call_us, report.max_call_us
            ),
        );
    } else {
        report.refuse(
            "limits",
            format!(
                "calls past the {} ms deadline: [{}]; calls over the {} MiB memory cap: [{}]",
                report.timeout_ms,
                over.join(", "),
                report.max_memory_mb,
                trapped_memory.join(", ")
            ),
        );
    }
    let ok = report.passed;
    (report, ok.then_some(component))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hosts_minor_line_is_compatible() {
        assert!(compatible("0.2.0"));
        assert!(compatible("0.2.7"));
        assert!(!compatible("0.1.0"));
        assert!(!compatible("0.3.0"));
        assert!(!compatible("1.2.0"));
        assert!(!compatible("garbage"));
    }
}
