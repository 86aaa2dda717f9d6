//! `aperture config reload`: asks a running gateway (admin API) to re-read its config
//! file and environment, and prints what changed live and what needs a restart.

use anyhow::Result;
use http::Method;
use serde_json::Value;

use crate::cli::{ConfigAction, Remote};

/// `aperture config …`.
pub async fn config(remote: &Remote, action: &ConfigAction) -> Result<()> {
    match action {
        ConfigAction::Reload => {
            let bytes =
                crate::admin_client::request(remote, Method::POST, "/admin/config/reload", None)
                    .await?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if remote.json {
                crate::admin_client::write_line(format_args!(
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                ));
                return Ok(());
            }
            let names = |key: &str| -> Vec<String> {
                v[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (applied, restart) = (names("applied"), names("restart_required"));
            let line = |s: String| crate::admin_client::write_line(format_args!("{s}"));
            if applied.is_empty() {
                line("Configuration reloaded: no live setting changed".into());
            } else {
                line(format!(
                    "Configuration reloaded; now in force: {}",
                    applied.join(", ")
                ));
            }
            if !restart.is_empty() {
                line(format!(
                    "Changed but needs a restart to take effect: {}",
                    restart.join(", ")
                ));
            }
            Ok(())
        }
    }
}
