//! The harness of the binary's tests: start `crm-server` on free ports, wait for it to say
//! where it listens, send requests, read its log.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_crm-server");
pub const SECRET: &str = "a test secret that is long enough for HS256!";

/// A running server process; killed if the test ends without stopping it.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    pub stdout: Arc<Mutex<String>>,
    /// The threads copying the pipes: they end at the pipes' end, once the process exits.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command, with the variables a developer's shell may hold removed.
pub fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .args(args)
        .env_remove("CRM_JWT_SECRET")
        .env_remove("DATABASE_URL")
        .env_remove("CRM_METRICS_TOKEN")
        .env_remove("CRM_EXTERNAL_JWT_SECRET")
        .env_remove("PGSSLROOTCERT")
        .env("CRM_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn collect(
    pipe: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    })
}

/// Starts `crm-server serve` on a free loopback port (local mode) plus `args`.
pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut all = vec!["serve", "--bind", "127.0.0.1:0", "--bcrypt-cost", "4"];
    all.extend_from_slice(args);
    start_raw(dir, &all, env)
}

/// Starts the binary with exactly `args` and waits until it says where it listens.
pub fn start_raw(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = command(dir, args, env).spawn().expect("spawn crm-server");
    let stderr = Arc::new(Mutex::new(String::new()));
    let stdout = Arc::new(Mutex::new(String::new()));
    let readers = vec![
        collect(child.stderr.take().unwrap(), stderr.clone()),
        collect(child.stdout.take().unwrap(), stdout.clone()),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = stderr.lock().unwrap().clone();
        if let Some(rest) = log.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap();
            let host = url.split("://").nth(1).unwrap().trim_end_matches("/api/v1");
            return Server {
                child,
                addr: host.parse().expect("address"),
                stderr,
                stdout,
                readers,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("crm-server exited ({status}) before listening:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "crm-server did not start:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Runs the binary with `args`, expecting it to refuse to start (within a minute): answers
/// its standard error.
pub fn refused(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = command(dir, args, env).spawn().expect("spawn crm-server");
    let stderr = Arc::new(Mutex::new(String::new()));
    collect(child.stderr.take().unwrap(), stderr.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("crm-server did not stop:\n{}", stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    // The pipe's last lines may still be in flight.
    std::thread::sleep(Duration::from_millis(100));
    let err = stderr.lock().unwrap().clone();
    assert!(!status.success(), "crm-server succeeded:\n{err}");
    err
}

impl Server {
    /// The API's URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1{path}", self.addr)
    }

    /// The log once it holds `marker`, waiting up to 30 s for it: lines logged just after
    /// the API's listener (other listeners, the metrics endpoint's state) may not be there
    /// yet when [`start`] returns.
    pub fn wait_logged(&self, marker: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let log = self.log();
            if log.contains(marker) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{marker:?} not logged:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The address logged after `marker` (e.g. `"metrics served on http://"`), waiting for
    /// the line as [`Server::wait_logged`] does.
    pub fn logged_addr(&self, marker: &str) -> SocketAddr {
        let log = self.wait_logged(marker);
        let rest = log.split(marker).nth(1).expect("marker present");
        let end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"')
            .unwrap_or(rest.len());
        rest[..end].parse().expect("address")
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The last lines may still be in the pipes: the copying threads end at
                // the pipes' end, so after them the log is complete.
                for reader in self.readers.drain(..) {
                    reader.join().expect("pipe reader");
                }
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `GET path` of the API with an `Authorization` header (e.g. the bearer header
    /// [`signup`] answers).
    pub async fn get(&self, path: &str, authorization: &str) -> Reply {
        send(
            http()
                .get(self.url(path))
                .header("authorization", authorization),
        )
        .await
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// An answer: status, headers, and the body as JSON (or as a JSON string when it is not).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error answer (`""` for others).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// A client that does not follow redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs up the installation's first workspace and its admin; answers the admin's bearer
/// header.
pub async fn signup(server: &Server, email: &str) -> String {
    let r = send(http().post(server.url("/auth/signup")).json(&json!({
        "workspace_name": "Acme", "email": email, "password": "pw"
    })))
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    format!("Bearer {}", r.body["access_token"].as_str().unwrap())
}
