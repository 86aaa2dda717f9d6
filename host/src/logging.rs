//! Logs in logfmt (`ts=… level=info msg="Cache hit" key=…`), to stderr and to
//! `<data dir>/logs/aperture.log`, so the runbook's grep/awk queries work as
//! written. Prompts and secrets are never logged (only `prompt_hash`). The file is
//! rotated by size and by day (`[logs]`, see `log_rotation.rs`); `aperture.log` is
//! always the current one.

use std::fmt::Write as _;
use std::path::Path;

use tracing::field::{Field, Visit};

use crate::config::observability::Logs;
use crate::log_rotation::{Reopen, RotatingFile};
use crate::log_sink::{Destination, LogSink, SinkGuard};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where the request log goes, relative to the data dir.
pub const LOG_FILE: &str = "logs/aperture.log";

/// Keeps the log writer thread alive; dropping it writes out what is queued.
/// Hold it until the process is done logging.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] SinkGuard);

/// Install the global subscriber: stderr, plus the log file when `data_dir` is given.
/// `APERTURE_LOG` (an `EnvFilter`) sets the level; `info` by default.
pub fn init(data_dir: Option<&Path>) -> std::io::Result<LogGuard> {
    init_rotating(data_dir, Logs::default()).map(|(guard, _)| guard)
}

/// [`init`] with the file rotated as `[logs]` says; the [`Reopen`] handle reopens the
/// file (see [`crate::log_rotation::reopen_on_sigusr1`]).
///
/// Each line is formatted once and handed to a [`LogSink`]: its writer thread appends
/// it to stderr and to the file in batches, so a request never waits on either (and a
/// full stderr pipe cannot stall the async workers). Not lossy: when the queue is full,
/// logging waits rather than dropping request lines.
pub fn init_rotating(data_dir: Option<&Path>, logs: Logs) -> std::io::Result<(LogGuard, Reopen)> {
    let reopen = Reopen::default();
    let filter = EnvFilter::try_from_env("APERTURE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let mut destinations: Vec<Destination> = vec![Box::new(std::io::stderr())];
    if let Some(dir) = data_dir {
        let path = dir.join(LOG_FILE);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        destinations.push(Box::new(RotatingFile::open(&path, logs, reopen.clone())?));
    }
    let (sink, guard) = LogSink::start(destinations)?;
    let layer = tracing_subscriber::fmt::layer()
        .event_format(Logfmt)
        .with_writer(sink)
        .with_filter(filter);
    // A second init (tests, embedded use) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok((LogGuard(guard), reopen))
}

/// The logfmt event formatter.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        write!(
            writer,
            "ts={ts} level={} target={}",
            meta.level().as_str().to_ascii_lowercase(),
            meta.target()
        )?;
        let mut visitor = Fields { out: String::new() };
        event.record(&mut visitor);
        writeln!(writer, "{}", visitor.out)
    }
}

struct Fields {
    out: String,
}

impl Fields {
    fn push(&mut self, name: &str, value: &str) {
        let name = if name == "message" { "msg" } else { name };
        let _ = write!(self.out, " {name}=");
        push_value(&mut self.out, value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field.name(), &format!("{value:?}"));
    }
}

/// Append `value`, quoted only when it must be (spaces, quotes, `=`, empty).
fn push_value(out: &mut String, value: &str) {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
    if plain {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_value;

    #[test]
    fn values_are_quoted_only_when_needed() {
        let mut s = String::new();
        push_value(&mut s, "IMG_SAFETY_BLOCKED");
        s.push(' ');
        push_value(&mut s, "all accounts \"out\" of quota");
        assert_eq!(s, r#"IMG_SAFETY_BLOCKED "all accounts \"out\" of quota""#);
    }
}
