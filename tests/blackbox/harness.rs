//! The black-box harness: an in-process Gemini emulator, the real `aperture`
//! binary spawned on `127.0.0.1:0` with its own temporary data dir, a small HTTP
//! client, the `aperture accounts …` CLI, and readers for images and the log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aperture_emulator::{Emulator, EmulatorConfig, KeySpec};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The client key every test gateway accepts.
pub const API_KEY: &str = "bb-client-key-0123456789";
/// The admin key every test gateway accepts.
pub const ADMIN_KEY: &str = "bb-admin-key-0123456789";
/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_aperture");
/// How long a gateway may take to announce itself.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long any single HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// The hostile safety-policy guest built by host/build.rs.
pub fn hostile_guest() -> PathBuf {
    PathBuf::from(concat!(env!("APERTURE_GUEST_DIR"), "/hostile_guest.wasm"))
}

/// Environment variable prefixes the gateway reads; all are cleared for the child.
const ENV_PREFIXES: [&str; 3] = ["APERTURE_", "CACHE_", "GEMINI_"];

/// An emulator accepting exactly `keys`, with the demo trigger words.
pub async fn emulator(keys: &[&str]) -> Emulator {
    let config = EmulatorConfig {
        keys: keys.iter().map(|k| KeySpec::new(*k)).collect(),
        ..EmulatorConfig::demo(vec![])
    };
    Emulator::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("binding the emulator")
}

/// How to start a gateway.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// `APERTURE_UPSTREAM_URL` (unset when `None`).
    pub upstream: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Contents of a `--config` file (written into the data dir).
    pub config: Option<String>,
    /// `--demo`, and no `APERTURE_*` environment at all.
    pub demo: bool,
}

impl Launch {
    /// Against `upstream` with the test keys.
    pub fn to(upstream: &Emulator) -> Launch {
        Launch {
            upstream: Some(upstream.base_url()),
            ..Launch::default()
        }
    }

    /// Add an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Launch {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Use this TOML as the config file.
    pub fn config(mut self, toml: &str) -> Launch {
        self.config = Some(toml.to_string());
        self
    }
}

/// A running `aperture serve`. Killed on drop.
pub struct Gateway {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The data dir (owned by the test).
    pub data_dir: PathBuf,
    /// Lines printed on stdout before the start line (demo keys).
    pub stdout_lines: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Gateway {
    /// Spawn the binary on `data_dir` and wait for `Proxy server started on http://ADDR`.
    pub async fn start(data_dir: &Path, launch: Launch) -> Gateway {
        let data_dir = data_dir.to_path_buf();
        tokio::task::spawn_blocking(move || Gateway::start_blocking(data_dir, launch))
            .await
            .expect("start task")
    }

    fn start_blocking(data_dir: PathBuf, launch: Launch) -> Gateway {
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir);
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
                cmd.env_remove(&k);
            }
        }
        if launch.demo {
            cmd.arg("--demo");
        } else {
            cmd.env("APERTURE_API_KEY", API_KEY)
                .env("APERTURE_ADMIN_KEY", ADMIN_KEY);
        }
        if let Some(up) = &launch.upstream {
            cmd.env("APERTURE_UPSTREAM_URL", up);
        }
        if let Some(toml) = &launch.config {
            let path = data_dir.join("config.toml");
            std::fs::write(&path, toml).unwrap();
            cmd.arg("--config").arg(path);
        }
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning aperture serve");

        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let mut pipe = child.stderr.take().unwrap();
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        {
            let pipe = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    // Keep draining after the receiver is gone.
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let mut lines = Vec::new();
        let fail = |child: &mut Child, why: &str, stderr: &Arc<Mutex<Vec<u8>>>| -> ! {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "gateway did not start ({why}); stderr:\n{}",
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
        };
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Proxy server started on ") {
                        break rest.trim().to_string();
                    }
                    lines.push(line);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    fail(&mut child, "timed out", &stderr)
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    fail(&mut child, "it exited", &stderr)
                }
            }
        };
        assert!(url.starts_with("http://127.0.0.1:"), "start line: {url}");
        Gateway {
            child: Some(child),
            url,
            data_dir,
            stdout_lines: lines,
            stderr,
        }
    }

    /// The gateway process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    /// Stop gracefully (SIGTERM) and wait for the exit.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        tokio::task::spawn_blocking(move || {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            for _ in 0..300 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        })
        .await
        .unwrap();
    }

    /// Send the gateway process a signal with `kill -NAME PID` (e.g. `HUP`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("the gateway is running").id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// The config file written from [`Launch::config`].
    pub fn config_path(&self) -> PathBuf {
        self.data_dir.join("config.toml")
    }

    /// What the gateway wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The request log file's text.
    /// The gateway appends it from a writer thread, so this waits (up to 2 s) until
    /// the file stops growing for a moment before reading it.
    pub fn log(&self) -> String {
        // The log is written by a background thread after the response is sent:
        // wait until the file has stopped growing for a while (several checks, so a
        // writer thread starved on a loaded machine is still waited for).
        let path = self.data_dir.join("logs/aperture.log");
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut last = size();
        let mut stable = 0;
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(25));
            let now = size();
            if now == last {
                stable += 1;
                if stable == 4 {
                    break;
                }
            } else {
                stable = 0;
            }
            last = now;
        }
        std::fs::read_to_string(&path).unwrap_or_default()
    }

    /// The request lines once at least `n` are in the log (waiting up to 15 s for
    /// the log writer), for tests that count them.
    pub fn wait_request_lines(&self, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let lines = self.request_lines();
            if lines.len() >= n || std::time::Instant::now() > deadline {
                return lines;
            }
        }
    }

    /// The request lines of the log (`image request completed|failed`).
    pub fn request_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("msg=\"image request completed\"")
                    || l.contains("msg=\"image request failed\"")
            })
            .map(str::to_string)
            .collect()
    }

    /// The log line of the request with this id.
    pub fn request_line(&self, request_id: &str) -> String {
        let needle = format!("request_id={request_id}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let found: Vec<String> = loop {
            let found: Vec<String> = self
                .request_lines()
                .into_iter()
                .filter(|l| l.split(' ').any(|f| f == needle))
                .collect();
            if !found.is_empty() || std::time::Instant::now() > deadline {
                break found;
            }
        };
        assert_eq!(
            found.len(),
            1,
            "want exactly one request line for {request_id}; log:\n{}",
            self.log()
        );
        found.into_iter().next().unwrap()
    }

    /// `POST /v1/images/generations` with the test key.
    pub async fn generate(&self, body: Value) -> Resp {
        self.generate_with(body, &[]).await
    }

    /// `POST /v1/images/generations` with the test key and extra headers.
    pub async fn generate_with(&self, body: Value, headers: &[(&str, &str)]) -> Resp {
        let auth = format!("Bearer {API_KEY}");
        let mut all = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        request(
            "POST",
            &format!("{}/v1/images/generations", self.url),
            &all,
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Run `aperture accounts ARGS --server URL [--json]` with the admin key; `stdin` is piped in.
    pub async fn accounts(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        let mut full: Vec<String> = vec!["accounts".into()];
        full.extend(args.iter().map(|s| s.to_string()));
        full.push("--server".into());
        full.push(self.url.clone());
        run_cli(full, stdin.map(str::to_string)).await
    }

    /// Run `aperture ARGS --server URL` with the admin key.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        full.push("--server".into());
        full.push(self.url.clone());
        run_cli(full, None).await
    }

    /// Add an account through the CLI (the secret on stdin); panics on failure.
    pub async fn add_account(&self, label: &str, email: &str, secret: &str) {
        let out = self
            .accounts(&["add", "--label", label, "--email", email], Some(secret))
            .await;
        assert!(out.ok, "accounts add {label} failed: {out:?}");
    }

    /// `accounts list --json`, parsed: the `accounts` array.
    pub async fn list_accounts(&self) -> (Vec<Value>, String) {
        let out = self.accounts(&["list", "--json"], None).await;
        assert!(out.ok, "accounts list failed: {out:?}");
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("accounts list --json is not JSON ({e}): {}", out.stdout));
        (
            v["accounts"].as_array().cloned().unwrap_or_default(),
            out.stdout,
        )
    }

    /// The account with this label from `accounts list --json`.
    pub async fn account(&self, label: &str) -> Value {
        let (list, raw) = self.list_accounts().await;
        list.into_iter()
            .find(|a| a["label"] == label)
            .unwrap_or_else(|| panic!("no account {label} in {raw}"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a CLI run printed.
#[derive(Debug)]
pub struct CliOutput {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run the CLI with `args` and the admin key; `stdin` is piped in.
pub async fn run_cli(args: Vec<String>, stdin: Option<String>) -> CliOutput {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(BIN);
        cmd.args(&args);
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
                cmd.env_remove(&k);
            }
        }
        cmd.env("APERTURE_ADMIN_KEY", ADMIN_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning the aperture CLI");
        {
            let mut pipe = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                pipe.write_all(s.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        CliOutput {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON (panics with the body text otherwise).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(2000)])
            )
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// `x-aperture-cache`.
    pub fn cache(&self) -> String {
        self.header("x-aperture-cache").unwrap_or_default()
    }

    /// `x-request-id`.
    pub fn request_id(&self) -> String {
        self.header("x-request-id").expect("x-request-id header")
    }

    /// Short text for assertion messages.
    pub fn brief(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(600)]).into_owned();
        format!("status {} body {text}", self.status)
    }

    /// Assert 200 and return the JSON body.
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.brief());
        self.json()
    }

    /// Assert an OpenAI-shaped error with this status and code; returns `error`.
    pub fn error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.brief());
        let v = self.json();
        let e = v["error"].clone();
        assert_eq!(e["code"], code, "{}", self.brief());
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error.message: {}",
            self.brief()
        );
        assert!(
            e["error_type"].as_str().is_some_and(|t| [
                "USER_ERROR",
                "API_ERROR",
                "NETWORK_ERROR",
                "SYSTEM_ERROR"
            ]
            .contains(&t)),
            "error.error_type: {}",
            self.brief()
        );
        assert_eq!(
            e["request_id"].as_str(),
            self.header("x-request-id").as_deref(),
            "error.request_id matches x-request-id: {}",
            self.brief()
        );
        e
    }

    /// `Retry-After` as whole seconds ≥ 1.
    pub fn retry_after(&self) -> u64 {
        let v = self
            .header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After: {:?}", self.headers));
        let secs: u64 = v
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After {v:?} is not integer seconds"));
        assert!(secs >= 1, "Retry-After {secs}");
        secs
    }
}

/// One HTTP/1.1 exchange.
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = http::Request::builder().method(method).uri(url);
    let has_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_type && !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder.body(Full::new(Bytes::from(body))).unwrap();
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("reading the body").to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {url} took longer than {HTTP_TIMEOUT:?}"))
}

/// A GET with optional bearer key.
pub async fn get(url: &str, key: Option<&str>) -> Resp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    request("GET", url, &headers, Vec::new()).await
}

/// Decode a base64 image of any format the gateway serves (PNG, JPEG, WebP):
/// its format and (width, height), after decoding every pixel.
pub fn decoded_image(b64: &str) -> (image::ImageFormat, (u32, u32)) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("image is base64");
    let format = image::guess_format(&bytes).expect("image data has a known format");
    let img = image::load_from_memory(&bytes).expect("image pixel data decodes");
    (format, (img.width(), img.height()))
}

/// The base64 data and MIME type of every image of an OpenAI response (`b64_json`,
/// whose format the response's `output_format` names, or a data-URI `url`).
pub fn images(body: &Value) -> Vec<(String, String)> {
    let format = body["output_format"].as_str().unwrap_or("png");
    body["data"]
        .as_array()
        .expect("data[]")
        .iter()
        .map(|d| {
            if let Some(b64) = d["b64_json"].as_str() {
                (format!("image/{format}"), b64.to_string())
            } else {
                let url = d["url"].as_str().expect("b64_json or url");
                let rest = url.strip_prefix("data:").expect("url is a data URI");
                let (mime, b64) = rest
                    .split_once(";base64,")
                    .expect("url is a base64 data URI");
                (mime.to_string(), b64.to_string())
            }
        })
        .collect()
}

/// The pixel sizes of every image of an OpenAI response, checking that each
/// decodes as the format the response names.
pub fn image_sizes(body: &Value) -> Vec<(u32, u32)> {
    images(body)
        .iter()
        .map(|(mime, b64)| {
            let (format, size) = decoded_image(b64);
            assert_eq!(
                format.to_mime_type(),
                mime,
                "the image's bytes are the format the response names"
            );
            size
        })
        .collect()
}

/// The value of `key=` in a logfmt line (unquoted form).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!(" {key}=");
    let start = line.find(&needle)? + needle.len();
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"').unwrap_or(quoted.len());
        Some(&quoted[..end])
    } else {
        Some(rest.split(' ').next().unwrap_or(""))
    }
}

/// A port on which nothing listens (bound, then released).
pub fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A fresh gateway with one account per key on an emulator that knows `keys`. The
/// emulator lives on the test's runtime and ends with it.
pub struct Setup {
    pub emu: Emulator,
    pub gw: Gateway,
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// Emulator with `keys`, gateway with `launch` tweaks, one account per key (label a1.., email aN@test).
    pub async fn new(keys: &[&str], tweak: impl FnOnce(Launch) -> Launch) -> Setup {
        let emu = emulator(keys).await;
        let dir = tempfile::tempdir().unwrap();
        let gw = Gateway::start(dir.path(), tweak(Launch::to(&emu))).await;
        for (i, k) in keys.iter().enumerate() {
            let n = i + 1;
            gw.add_account(&format!("a{n}"), &format!("a{n}@test.example"), k)
                .await;
        }
        Setup { emu, gw, dir }
    }

    /// One account, no tweaks.
    pub async fn simple() -> Setup {
        Setup::new(&["bb-gemini-key-1"], |l| l).await
    }
}
