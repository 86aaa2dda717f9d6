//! The policy components' metrics: call counts, traps, timeouts, call time,
//! memo hits and outcomes per slot and version, and which versions are active or candidates. Read
//! at each scrape from the versions' own live counters (the ones `aperture policy
//! list` shows, `policy/stats.rs`), so nothing is counted twice.

use std::sync::{Mutex, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::policy::Policies;

/// The policies whose versions are reported (the gateway's, set once it is built).
static SOURCE: Mutex<Option<Weak<Policies>>> = Mutex::new(None);

/// Report the versions of `policies` from now on.
pub fn watch(policies: Weak<Policies>) {
    *SOURCE.lock().unwrap_or_else(|p| p.into_inner()) = Some(policies);
}

/// Encodes the component metrics at each scrape.
#[derive(Debug, Default)]
pub struct ComponentCollector;

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One metric family of `series`, each value encoded as the metric `make` builds.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&prometheus_client::registry::Unit>,
    series: &[(Labels, f64)],
    make: impl Fn(f64) -> M,
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, unit, make(0.0).metric_type())?;
    for (labels, value) in series {
        make(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&prometheus_client::registry::Unit>,
    series: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    family(encoder, name, help, unit, series, ConstCounter::new)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&prometheus_client::registry::Unit>,
    series: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    family(encoder, name, help, unit, series, ConstGauge::new)
}

impl Collector for ComponentCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let policies = SOURCE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        let Some(policies) = policies else {
            return Ok(());
        };
        let versions = policies.versions_for_metrics();
        let seconds = Some(&prometheus_client::registry::Unit::Seconds);
        let mut info = Vec::new();
        let (mut calls, mut traps, mut timeouts, mut time, mut quantiles) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut disagreements, mut fallbacks, mut outcomes) = (Vec::new(), Vec::new(), Vec::new());
        let mut memo_hits = Vec::new();
        for v in &versions {
            let base: Labels = vec![("slot", v.slot), ("version", v.version.as_str())];
            if let Some(role) = v.role {
                let mut l = base.clone();
                l.push(("label", v.label.as_str()));
                l.push(("role", role));
                info.push((l, 1.0));
            }
            let s = &v.stats;
            calls.push((base.clone(), s.calls as f64));
            traps.push((base.clone(), s.traps as f64));
            timeouts.push((base.clone(), s.timeouts as f64));
            time.push((base.clone(), s.time_us_total as f64 / 1e6));
            for (q, us) in [("0.5", s.median_us), ("0.99", s.p99_us)] {
                let mut l = base.clone();
                l.push(("quantile", q));
                quantiles.push((l, us as f64 / 1e6));
            }
            disagreements.push((base.clone(), s.disagreements as f64));
            fallbacks.push((base.clone(), s.fallbacks as f64));
            memo_hits.push((base.clone(), s.memo_hits as f64));
            for (outcome, n) in &s.outcomes {
                let mut l = base.clone();
                l.push(("outcome", outcome.as_str()));
                outcomes.push((l, *n as f64));
            }
        }
        gauge(
            &mut encoder,
            "aperture_policy_version_info",
            "The policy component versions serving traffic: role active, canary or shadow (value 1)",
            None,
            &info,
        )?;
        counter(
            &mut encoder,
            "aperture_component_calls",
            "Calls made on a component version",
            None,
            &calls,
        )?;
        counter(
            &mut encoder,
            "aperture_component_traps",
            "Calls of a component version that trapped",
            None,
            &traps,
        )?;
        counter(
            &mut encoder,
            "aperture_component_timeouts",
            "Calls of a component version stopped at the call deadline",
            None,
            &timeouts,
        )?;
        counter(
            &mut encoder,
            "aperture_component_call_time",
            "Time spent in calls of a component version (divide by calls for the mean)",
            seconds,
            &time,
        )?;
        gauge(
            &mut encoder,
            "aperture_component_call_quantile",
            "Call time of a component version over its last 2048 calls, by quantile",
            seconds,
            &quantiles,
        )?;
        counter(
            &mut encoder,
            "aperture_component_shadow_disagreements",
            "Shadow calls whose result differed from the active version's",
            None,
            &disagreements,
        )?;
        counter(
            &mut encoder,
            "aperture_component_canary_fallbacks",
            "Canary calls redone on the active version after a trap or timeout",
            None,
            &fallbacks,
        )?;
        counter(
            &mut encoder,
            "aperture_component_memo_hits",
            "Results of a component version served from the host's memo instead of a call (translator parse-request, safety screen)",
            None,
            &memo_hits,
        )?;
        counter(
            &mut encoder,
            "aperture_component_outcomes",
            "Results of a component version by outcome (translator user_error; safety allow, deny, block; classifier error_type)",
            None,
            &outcomes,
        )?;
        Ok(())
    }
}
