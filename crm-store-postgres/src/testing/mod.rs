//! Test support (feature `testing`): a fresh, empty database per test on whatever PostgreSQL
//! server can be had.
//!
//! The server is found once per process, in this order:
//!
//! 1. `CRM_TEST_DATABASE_URL`, if set (any database on the server; the user must be allowed
//!    to create databases). If it is set but unreachable, tests fail: nothing is guessed.
//! 2. A server on `127.0.0.1:5432` as user `postgres` with trust authentication (what the
//!    project's CI machine runs).
//! 3. A throwaway cluster: `initdb` and `pg_ctl` (from `PATH`, `PG_BIN`, or the newest
//!    `/usr/lib/postgresql/*/bin`) create and start one in a temporary directory on a free
//!    port, as the `postgres` user when the tests run as root. A watchdog process stops it and
//!    removes the directory when the test process exits.
//!
//! Setting `CRM_TEST_POSTGRES=throwaway` skips step 2 (to exercise step 3).
//!
//! Each [`TestDatabase`] is created with a unique name (`crm_test_...`) and dropped (with
//! `FORCE`, ending any connection left) when the value is dropped.
//! [`TestDatabase::engine`] gives a store on it, an engine over that store and a
//! bootstrapped workspace with its admin (the start of the engine tests on PostgreSQL).
//! [`texts`] reads the first column of a query's rows as text (the catalog queries of the
//! schema and privacy tests).
//!
//! ```no_run
//! # async fn demo() {
//! use crm_store_postgres::testing::TestDatabase;
//! let db = TestDatabase::create().await;
//! let store = db.store().await; // migrated, empty
//! # let _ = store;
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crm_core::model::{UserInput, Workspace};
use crm_core::{Actor, Crm, CrmConfig};

use crate::{PgOptions, PgStore};

/// The server tests use: an admin URL (a database on it to connect to for `CREATE
/// DATABASE`).
#[derive(Debug)]
struct Server {
    admin_url: String,
    /// The cluster this process started, if it did (kept for the process's lifetime).
    _cluster: Option<ThrowawayCluster>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The admin URL of the test server, found (or started) on first use. Blocking; runs the
/// discovery on its own thread so it can be called from async code.
fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        std::thread::spawn(discover)
            .join()
            .unwrap_or_else(|_| panic!("finding a PostgreSQL server for tests panicked"))
    })
}

fn discover() -> Server {
    if let Ok(url) = std::env::var("CRM_TEST_DATABASE_URL") {
        assert!(
            block_on(reachable(&url)),
            "CRM_TEST_DATABASE_URL is set but the server does not answer"
        );
        return Server {
            admin_url: url,
            _cluster: None,
        };
    }
    let local = "postgres://postgres@127.0.0.1:5432/postgres";
    let skip_local = std::env::var("CRM_TEST_POSTGRES").is_ok_and(|v| v == "throwaway");
    if !skip_local && block_on(reachable(local)) {
        return Server {
            admin_url: local.into(),
            _cluster: None,
        };
    }
    let cluster =
        ThrowawayCluster::start().unwrap_or_else(|e| panic!("no PostgreSQL server for tests: {e}"));
    Server {
        admin_url: cluster.url().to_string(),
        _cluster: Some(cluster),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

async fn reachable(url: &str) -> bool {
    let Ok(opts) = PgConnectOptions::from_str(url) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), opts.connect()).await,
        Ok(Ok(_))
    )
}

/// A one-connection pool on the admin database (a pool, unlike a bare connection, keeps the
/// futures using it `Send`).
async fn admin_pool(admin: &PgConnectOptions) -> Result<sqlx::PgPool, sqlx::Error> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin.clone())
        .await
}

/// A database of its own for one test; dropped with the value.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database (no schema) on the test server.
    ///
    /// # Panics
    /// If no server can be had or the database cannot be created: a test cannot go on.
    pub async fn create() -> Self {
        let admin_url = &server().admin_url;
        let name = format!(
            "crm_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::now_v7().simple()
        );
        let admin = PgConnectOptions::from_str(admin_url).expect("admin URL");
        let pool = admin_pool(&admin)
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        let url = admin.database(&name).to_url_lossy().to_string();
        TestDatabase { name, url }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Default options for this database (small pool, migrations on connect).
    pub fn options(&self) -> PgOptions {
        PgOptions::new(&self.url).max_connections(8)
    }

    /// A migrated store on this database. Call again for a second, independent pool (a
    /// second "instance" of the host application).
    ///
    /// # Panics
    /// If connecting or migrating fails.
    pub async fn store(&self) -> PgStore {
        PgStore::connect(self.options())
            .await
            .expect("connect the store to the test database")
    }

    /// A store on this database, an engine over it (default configuration) and the
    /// workspace `workspace` bootstrapped with its admin, Ada Admin
    /// (`admin@<workspace in lower case>.test`), returned as an actor: the start of a test of
    /// the engine on PostgreSQL.
    ///
    /// # Panics
    /// If connecting, migrating or bootstrapping fails.
    pub async fn engine(&self, workspace: &str) -> (PgStore, Crm, Workspace, Actor) {
        let store = self.store().await;
        let crm = Crm::new(std::sync::Arc::new(store.clone()), CrmConfig::default());
        let first = UserInput {
            email: format!("admin@{}.test", workspace.to_lowercase()),
            first_name: "Ada".into(),
            last_name: "Admin".into(),
            ..Default::default()
        };
        let (ws, admin) = crm.bootstrap(workspace, first).await.expect("bootstrap");
        let admin = crm
            .actor(ws.id, admin.id)
            .await
            .expect("the admin as an actor");
        (store, crm, ws, admin)
    }
}

/// The first column of every row `sql` selects, as text (`bind`, if any, is its `$1`): the
/// catalog queries of the schema and privacy tests.
///
/// # Panics
/// If the query fails.
pub async fn texts(pool: &sqlx::PgPool, sql: &str, bind: Option<&str>) -> Vec<String> {
    use sqlx::Row;
    let mut query = sqlx::query(sql);
    if let Some(value) = bind {
        query = query.bind(value);
    }
    query
        .fetch_all(pool)
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = server().admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside an async runtime: do the blocking work on a thread of its own.
        let done = std::thread::spawn(move || {
            block_on(async move {
                let admin = PgConnectOptions::from_str(&admin_url).ok()?;
                let pool = admin_pool(&admin).await.ok()?;
                let done = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&pool)
                    .await
                    .ok();
                pool.close().await;
                done
            })
        })
        .join();
        if !matches!(done, Ok(Some(_))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

/// Directory holding `initdb` and `pg_ctl`.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let on_path = Command::new("initdb")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return Some(PathBuf::new());
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args...`, as the `postgres` user when running as root (initdb refuses root).
fn pg_command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    let exe = bin.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A PostgreSQL cluster of its own in a temporary directory, started with the installed
/// `initdb` and `pg_ctl`; stopped and removed when dropped — or, should the process die
/// first, by a watchdog process within a second of its exit.
#[derive(Debug)]
pub struct ThrowawayCluster {
    url: String,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    /// The server options (`pg_ctl -o`), to start it again as it was.
    server_opts: String,
}

impl ThrowawayCluster {
    /// Creates and starts a cluster on a free port of 127.0.0.1 (trust authentication, user
    /// `postgres`, `fsync` off: for tests only).
    ///
    /// # Errors
    /// A description of what failed (tools not found, `initdb` or `pg_ctl` failing).
    pub fn start() -> Result<Self, String> {
        let bin = pg_bin().ok_or("initdb/pg_ctl not found (set PG_BIN)")?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "crm-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(&dir);
            run(chown, "chown")?;
        }
        let data = dir.join("data");
        let mut initdb = pg_command(&bin, "initdb", as_postgres);
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let server_opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            dir.display()
        );
        let mut start = pg_command(&bin, "pg_ctl", as_postgres);
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .arg("-o")
            .arg(&server_opts)
            .args(["-w", "-t", "30", "start"])
            .stdout(Stdio::null());
        run(start, "pg_ctl start")?;
        let cluster = ThrowawayCluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            as_postgres,
            server_opts,
        };
        // Stop the cluster and remove its directory once this process is gone.
        Command::new("sh")
            .args([
                "-c",
                &format!(
                    "while kill -0 {} 2>/dev/null; do sleep 1; done; {}",
                    std::process::id(),
                    cluster.stop_script()
                ),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("watchdog: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !block_on(reachable(&cluster.url)) {
            if Instant::now() > deadline {
                return Err("the throwaway cluster did not start".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(cluster)
    }

    /// The admin URL (database `postgres`, user `postgres`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory's parent (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Restarts the server abruptly (`pg_ctl restart -m immediate`: every connection cut, no
    /// checkpoint, crash recovery before it accepts connections again), with the options it
    /// was started with.
    ///
    /// # Errors
    /// A description of what failed.
    pub fn crash_and_restart(&self) -> Result<(), String> {
        let mut restart = pg_command(&self.bin, "pg_ctl", self.as_postgres);
        restart
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-m", "immediate", "-w", "-t", "30", "restart"])
            .stdout(Stdio::null());
        run(restart, "pg_ctl restart")
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are cut, the data stays), so
    /// the database is unreachable until [`ThrowawayCluster::start_again`].
    ///
    /// # Errors
    /// A description of what failed.
    pub fn stop(&self) -> Result<(), String> {
        let mut stop = pg_command(&self.bin, "pg_ctl", self.as_postgres);
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .stdout(Stdio::null());
        run(stop, "pg_ctl stop")
    }

    /// Starts a server stopped by [`ThrowawayCluster::stop`] again, on the same port with
    /// the same options, and waits until it accepts connections.
    ///
    /// # Errors
    /// A description of what failed.
    pub fn start_again(&self) -> Result<(), String> {
        let mut start = pg_command(&self.bin, "pg_ctl", self.as_postgres);
        start
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(&self.server_opts)
            .args(["-w", "-t", "30", "start"])
            .stdout(Stdio::null());
        run(start, "pg_ctl start")
    }

    /// Shell commands that stop the cluster and remove its directory.
    fn stop_script(&self) -> String {
        let pg_ctl = pg_command(&self.bin, "pg_ctl", self.as_postgres);
        let mut words: Vec<String> = vec![pg_ctl.get_program().to_string_lossy().into_owned()];
        words.extend(pg_ctl.get_args().map(|a| a.to_string_lossy().into_owned()));
        format!(
            "{} -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
            words.join(" "),
            self.dir.join("data").display(),
            self.dir.display()
        )
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &self.stop_script()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
