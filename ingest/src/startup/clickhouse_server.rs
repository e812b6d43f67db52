//! A private `clickhouse-server` for when no AFFILYNC_CLICKHOUSE_URL is given: the demo,
//! a developer's laptop and the test harness. Its config is generated under the data
//! directory with free loopback ports; it is started through a small shell wrapper that
//! stops it when this process's end of a pipe closes, so it never outlives us, not even
//! after a crash. A supervisor thread restarts it if it dies while we still need it.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

/// Runs the server in the background, records its pid, and sends it SIGTERM when our end
/// of its stdin closes; exits with the server's status. The server runs at nice 10: on a
/// machine it shares with the service, its INSERTs and merges are background work that
/// should yield to requests.
const WRAPPER: &str = r#"
pid_file="$1"; shift
exec 3<&0
nice -n 10 "$@" </dev/null >/dev/null 2>&1 &
server=$!
echo "$server" > "$pid_file"
( read -r _ <&3; kill -TERM "$server" 2>/dev/null ) &
wait "$server"
"#;

#[derive(Debug, thiserror::Error)]
pub enum ManagedClickhouseError {
    #[error(
        "clickhouse-server was not found on PATH or in /usr/sbin or /usr/bin. Install it with \
         `sudo apt-get install -y clickhouse-server` (Debian and Ubuntu), or point \
         AFFILYNC_CLICKHOUSE_URL at a running ClickHouse"
    )]
    NotInstalled,
    #[error("could not prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("clickhouse-server did not start: {0}")]
    DidNotStart(String),
}

/// A running private ClickHouse; stopped when dropped.
pub struct ManagedClickhouse {
    http_port: u16,
    inner: Arc<Inner>,
    supervisor: Option<JoinHandle<()>>,
}

struct Inner {
    command: Vec<String>,
    root: PathBuf,
    stopping: AtomicBool,
    running: Mutex<Option<Running>>,
}

struct Running {
    wrapper: Child,
    /// Dropping this closes the pipe, which stops the server.
    lifeline: Option<ChildStdin>,
}

impl ManagedClickhouse {
    /// Starts a server whose files live under `data_dir/clickhouse`, and waits until it
    /// answers. A server left behind by an earlier crashed run on the same directory is
    /// stopped first.
    pub fn start(data_dir: &Path) -> Result<Self, ManagedClickhouseError> {
        let binary = find_binary().ok_or(ManagedClickhouseError::NotInstalled)?;
        let root = absolute(&data_dir.join("clickhouse"))?;
        for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
            create_dir(&root.join(sub))?;
        }
        stop_leftover(&root);

        let mut last_error = String::new();
        // A free port can be taken between choosing it and the server binding it; try anew.
        for _ in 0..3 {
            let (http_port, tcp_port) = (free_port()?, free_port()?);
            write_config(&root, http_port, tcp_port)?;
            let mut command = binary.clone();
            command.push(format!(
                "--config-file={}",
                root.join("config.xml").display()
            ));
            let inner = Arc::new(Inner {
                command,
                root: root.clone(),
                stopping: AtomicBool::new(false),
                running: Mutex::new(None),
            });
            inner.launch()?;
            match wait_until_ready(&inner, http_port) {
                Ok(()) => {
                    let supervisor = {
                        let inner = Arc::clone(&inner);
                        std::thread::Builder::new()
                            .name("clickhouse-supervisor".into())
                            .spawn(move || inner.supervise(http_port))
                            .expect("spawning the clickhouse supervisor")
                    };
                    tracing::info!(http_port, dir = %root.display(), "managed clickhouse started");
                    return Ok(Self {
                        http_port,
                        inner,
                        supervisor: Some(supervisor),
                    });
                }
                Err(error) => {
                    inner.stop();
                    last_error = error;
                }
            }
        }
        Err(ManagedClickhouseError::DidNotStart(last_error))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The URL of the managed server another process runs on `data_dir`, if it answers.
    pub fn running_url(data_dir: &Path) -> Option<String> {
        let config = fs::read_to_string(data_dir.join("clickhouse/config.xml")).ok()?;
        let port: u16 = config
            .split("<http_port>")
            .nth(1)?
            .split("</http_port>")
            .next()?
            .trim()
            .parse()
            .ok()?;
        ping(port).then(|| format!("http://127.0.0.1:{port}"))
    }

    /// The server's process id while it runs (a restart gives it a new one): for fault
    /// tests that freeze or kill it.
    pub fn server_pid(&self) -> Option<u32> {
        fs::read_to_string(self.inner.root.join("clickhouse.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.inner.stop();
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }
}

impl Drop for ManagedClickhouse {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    fn launch(&self) -> Result<(), ManagedClickhouseError> {
        let mut wrapper = Command::new("sh");
        wrapper
            .arg("-c")
            .arg(WRAPPER)
            .arg("affilync-clickhouse")
            .arg(self.root.join("clickhouse.pid"))
            .args(&self.command)
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = wrapper
            .spawn()
            .map_err(|source| ManagedClickhouseError::Io {
                path: PathBuf::from("sh"),
                source,
            })?;
        let lifeline = child.stdin.take();
        *self.running.lock().expect("clickhouse lock poisoned") = Some(Running {
            wrapper: child,
            lifeline,
        });
        Ok(())
    }

    fn has_exited(&self) -> bool {
        let mut running = self.running.lock().expect("clickhouse lock poisoned");
        match running.as_mut() {
            Some(run) => !matches!(run.wrapper.try_wait(), Ok(None)),
            None => true,
        }
    }

    fn supervise(&self, http_port: u16) {
        while !self.stopping.load(Ordering::Acquire) {
            std::thread::sleep(SUPERVISE_EVERY);
            if self.stopping.load(Ordering::Acquire) || !self.has_exited() {
                continue;
            }
            tracing::error!(log = %self.root.join("log").display(), "managed clickhouse exited; restarting it");
            if let Some(mut old) = self
                .running
                .lock()
                .expect("clickhouse lock poisoned")
                .take()
            {
                old.lifeline.take();
                let _ = old.wrapper.wait();
            }
            if let Err(error) = self
                .launch()
                .map_err(|e| e.to_string())
                .and_then(|()| wait_until_ready(self, http_port))
            {
                tracing::error!(%error, "managed clickhouse did not come back");
            }
        }
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let Some(mut run) = self
            .running
            .lock()
            .expect("clickhouse lock poisoned")
            .take()
        else {
            return;
        };
        run.lifeline.take();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(run.wrapper.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!("managed clickhouse did not stop in time; killing it");
        stop_leftover(&self.root);
        let _ = run.wrapper.kill();
        let _ = run.wrapper.wait();
    }
}

fn find_binary() -> Option<Vec<String>> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    let in_dirs = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    if let Some(server) = in_dirs("clickhouse-server") {
        return Some(vec![server.display().to_string()]);
    }
    // Newer releases ship one `clickhouse` binary with a `server` mode.
    in_dirs("clickhouse").map(|bin| vec![bin.display().to_string(), "server".into()])
}

fn wait_until_ready(inner: &Inner, http_port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if ping(http_port) {
            return Ok(());
        }
        if inner.has_exited() {
            return Err(format!(
                "it exited during start-up; see {}",
                inner.root.join("log/clickhouse-server.err.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "no answer on port {http_port} within {START_TIMEOUT:?}"
    ))
}

fn ping(http_port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ") && answer.ends_with("Ok.\n")
}

/// Stops a server an earlier run left on this directory (its pid file survives a crash).
fn stop_leftover(root: &Path) {
    let pid_file = root.join("clickhouse.pid");
    let Ok(pid) = fs::read_to_string(&pid_file) else {
        return;
    };
    let pid = pid.trim();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let config = root.join("config.xml").display().to_string();
    if !pid.is_empty() && String::from_utf8_lossy(&cmdline).contains(&config) {
        tracing::warn!(
            pid,
            "stopping a clickhouse-server left over from an earlier run"
        );
        let _ = Command::new("kill").arg("-KILL").arg(pid).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = fs::remove_file(pid_file);
}

fn free_port() -> Result<u16, ManagedClickhouseError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| ManagedClickhouseError::Io {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}

fn create_dir(path: &Path) -> Result<(), ManagedClickhouseError> {
    fs::create_dir_all(path).map_err(|source| ManagedClickhouseError::Io {
        path: path.to_owned(),
        source,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, ManagedClickhouseError> {
    create_dir(path)?;
    path.canonicalize()
        .map_err(|source| ManagedClickhouseError::Io {
            path: path.to_owned(),
            source,
        })
}

fn write_config(root: &Path, http_port: u16, tcp_port: u16) -> Result<(), ManagedClickhouseError> {
    let dir = root.display();
    let config = format!(
        r#"<?xml version="1.0"?>
<!-- Generated by affilync for its private server; rewritten at every start. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{dir}/log/clickhouse-server.log</log>
        <errorlog>{dir}/log/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>200</max_concurrent_queries>
    <keep_alive_timeout>10</keep_alive_timeout>
</yandex>
"#
    );
    let users = r#"<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <log_queries>0</log_queries>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"#;
    for (name, text) in [("config.xml", config.as_str()), ("users.xml", users)] {
        let path = root.join(name);
        fs::write(&path, text).map_err(|source| ManagedClickhouseError::Io { path, source })?;
    }
    Ok(())
}
