//! ClickHouse access: connection and server-version detection, migrations, and the
//! reads and writes of every table. ClickHouse is the authority for everything the
//! service promises; the caches in front of it only make it faster.

mod catalog;
mod check;
mod clicks;
mod cluster;
mod cluster_ddl;
mod conversions;
mod cursor;
mod deadline;
mod dedup_log;
mod error;
mod export;
mod history;
mod holds;
mod listing;
mod migrate;
mod nodes;
mod report_rollups;
mod reports;
mod rollups;
mod rows;
mod shipped_table;
mod stamps;
mod touches;

use std::sync::Arc;
use std::time::Duration;

use clickhouse::insert::Insert;
use clickhouse::{Client, RowOwned, RowWrite};
use deadline::Exchange;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use nodes::Nodes;

pub use catalog::CatalogSnapshot;
pub use check::{CheckScope, Problem};
pub use clicks::ClickRow;
pub use cluster::ClusterSettings;
pub use cursor::{CursorError, ListCursor};
pub use deadline::StoreTimeouts;
pub use error::StoreError;
pub use export::ConversionExport;
pub use history::StatusChangeRow;
pub use holds::{CampaignHoldRow, DuePosition};
pub use listing::{ListFilter, ListOwner, PageRequest, ScheduledRange};
pub use migrate::{MIGRATIONS, Migration};
pub use rollups::DirtyDay;
pub use rows::{CommissionRow, ConversionRow};
pub use shipped_table::ShippedTable;
pub use stamps::StampRace;
pub use touches::EmailTouch;

/// Where the store lives.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// One ClickHouse HTTP URL, or several separated by commas (nodes of one cluster): the
    /// store uses one and fails over to the next.
    pub url: String,
    /// The cluster the URLs belong to; `None` for a single server.
    pub cluster: Option<ClusterSettings>,
    pub database: String,
    pub user: String,
    pub password: String,
    pub timeouts: StoreTimeouts,
}

/// A handle on the service's database; cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct Store {
    /// One client per node of `nodes`, in the same order.
    clients: NodeClients,
    nodes: Arc<Nodes>,
    server_version: (u32, u32),
    settings: StoreSettings,
}

/// One client per node of a store, in the order of its nodes, for each kind of exchange.
#[derive(Clone)]
struct NodeClients {
    /// For writes, DDL, work on whole tables and reads that stream (exports, tools).
    unbounded: Arc<[Client]>,
    /// The same for reads someone waits on: ClickHouse stops them itself at the read
    /// deadline (`max_execution_time`), where the service gives up on them. Without it a
    /// read the service abandoned runs on; a burst of heavy reports retried by their
    /// callers piled up in ClickHouse until it ran out of memory and was killed.
    reads: Arc<[Client]>,
}

impl NodeClients {
    fn new(nodes: &Nodes, base: &Client, timeouts: &StoreTimeouts) -> Self {
        // Whole seconds, at least one, as the service stops waiting.
        let seconds = timeouts.read.as_secs_f64().ceil().max(1.0) as u64;
        let reads = base
            .clone()
            .with_setting("max_execution_time", seconds.to_string());
        Self {
            unbounded: nodes::clients(nodes, base),
            reads: nodes::clients(nodes, &reads),
        }
    }
}

/// The `clickhouse` crate validates rows against the server's schema with the
/// RowBinaryWithNamesAndTypes format, which servers before 19.3 do not speak.
const FIRST_VERSION_WITH_VALIDATION: (u32, u32) = (19, 3);

impl Store {
    /// A store for code that holds one but, in a test or a bench, must never use it (a
    /// catalog from a snapshot, fake look-ups): nothing listens on the discard port, so a
    /// query that should not happen fails at once instead of going unnoticed.
    pub fn detached() -> Self {
        Self::unconnected(&StoreSettings {
            url: "http://127.0.0.1:9".into(),
            cluster: None,
            database: "detached".into(),
            user: "default".into(),
            password: String::new(),
            timeouts: StoreTimeouts::default(),
        })
    }

    /// Connects, creates the database if needed and detects the server version. Does not
    /// migrate: call [`Store::migrate`].
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        if settings.database.is_empty()
            || !settings
                .database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::Refused(format!(
                "database name {:?} must be letters, digits and underscores",
                settings.database
            )));
        }
        if let Some(cluster) = &settings.cluster
            && !cluster
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            // It is written into ON CLUSTER and Distributed(...) unquoted.
            return Err(StoreError::Refused(format!(
                "cluster name {:?} (AFFILYNC_CLICKHOUSE_CLUSTER) must be letters, digits and \
                 underscores",
                cluster.name
            )));
        }
        let nodes = Nodes::parse(&settings.url)?;
        let mut settings = settings.clone();
        // Until the version is known, speak the format every server understands.
        let server = with_settings(http_client(), &settings).with_validation(false);
        let server = match &settings.cluster {
            Some(cluster) => cluster.apply(server),
            None => server,
        };
        let unknown = Store {
            clients: NodeClients::new(&nodes, &server, &settings.timeouts),
            nodes: Arc::clone(&nodes),
            server_version: (0, 0),
            settings: settings.clone(),
        };
        let version: String = unknown.first_answer().await?;
        let server_version = parse_version(&version);
        if let Some(cluster) = settings.cluster.as_mut() {
            cluster.insert_quorum = unknown.quorum_of(cluster).await?;
        }
        unknown.create_database().await?;
        let client = server
            .with_database(&settings.database)
            .with_validation(server_version >= FIRST_VERSION_WITH_VALIDATION);
        let client = match &settings.cluster {
            Some(cluster) => cluster.apply_quorum(client),
            None => client,
        };
        tracing::debug!(version, database = %settings.database, "connected to clickhouse");
        Ok(Self {
            clients: NodeClients::new(&nodes, &client, &settings.timeouts),
            nodes,
            server_version,
            settings,
        })
    }

    /// The server version, asked of each node in turn until one answers.
    async fn first_answer(&self) -> Result<String, StoreError> {
        let mut last_error = None;
        for _ in 0..self.nodes.urls().len() {
            match self
                .within(
                    Exchange::Read,
                    "version query",
                    self.client()
                        .query("SELECT version()")
                        .fetch_one::<String>(),
                )
                .await
            {
                Ok(version) => return Ok(version),
                Err(error) if error.is_retryable() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.expect("at least one node is configured"))
    }

    /// A handle that has not talked to the server yet (version unknown, rows unvalidated),
    /// for tools and benches that may never reach it; [`Store::connect`] is for the service.
    pub fn unconnected(settings: &StoreSettings) -> Self {
        let nodes = Nodes::parse(&settings.url)
            .unwrap_or_else(|_| Nodes::parse("http://127.0.0.1:9").expect("a literal URL parses"));
        let unknown = Self {
            clients: NodeClients::new(&nodes, &http_client(), &settings.timeouts),
            nodes,
            server_version: (0, 0),
            settings: settings.clone(),
        };
        unknown.with_own_pool()
    }

    /// A store with its own connection pool, for a thread that drives its own runtime:
    /// pooled connections belong to the runtime that opened them.
    pub fn with_own_pool(&self) -> Self {
        self.on(http_client())
    }

    /// A store that keeps no connection for reuse: each statement opens its own, in the
    /// runtime of whoever asks. For a store shared by threads that each run their own
    /// runtime only now and then (the catalog, asked by handlers and by attribution
    /// workers): a pooled connection is driven by the runtime that opened it, and handed to
    /// another thread while that runtime sleeps, it would never answer.
    pub fn unpooled(&self) -> Self {
        self.on(http_client_keeping(0))
    }

    /// This store's settings on another HTTP client.
    fn on(&self, client: Client) -> Self {
        let client = with_settings(client, &self.settings)
            .with_database(&self.settings.database)
            .with_validation(self.server_version >= FIRST_VERSION_WITH_VALIDATION);
        let client = match &self.settings.cluster {
            Some(cluster) => cluster.apply_quorum(cluster.apply(client)),
            None => client,
        };
        Self {
            clients: NodeClients::new(&self.nodes, &client, &self.settings.timeouts),
            nodes: Arc::clone(&self.nodes),
            server_version: self.server_version,
            settings: self.settings.clone(),
        }
    }

    pub fn database(&self) -> &str {
        &self.settings.database
    }

    /// The client of the node in use now, for writes, DDL and work on whole tables, and
    /// reads that stream for as long as their reader keeps up (exports, tools).
    pub fn client(&self) -> &Client {
        &self.clients.unbounded[self.nodes.current()]
    }

    /// The client of the node in use now for reads someone waits on (`Exchange::Read`):
    /// ClickHouse ends them at the read deadline.
    pub(crate) fn read_client(&self) -> &Client {
        &self.clients.reads[self.nodes.current()]
    }

    /// The cluster's name, when the store runs on one.
    pub fn cluster(&self) -> Option<&ClusterSettings> {
        self.settings.cluster.as_ref()
    }

    /// One INSERT of all `rows` into `table`.
    pub(crate) async fn insert_rows<'r, R: RowOwned + RowWrite + 'r>(
        &self,
        table: &str,
        rows: impl IntoIterator<Item = &'r R> + Clone,
    ) -> Result<(), StoreError> {
        self.while_quorum_busy(|| {
            let rows = rows.clone();
            self.within(Exchange::Write, "INSERT", async {
                let mut insert = self.begin_insert::<R>(table).await?;
                for row in rows {
                    insert.write(row).await?;
                }
                insert.end().await.map_err(StoreError::from)
            })
        })
        .await
    }

    /// An INSERT into `table` that rows stream into, each chunk sent and the end awaited
    /// within the write timeout; `end` completes it, dropping it aborts it.
    pub(crate) async fn begin_insert<R: RowOwned + RowWrite>(
        &self,
        table: &str,
    ) -> Result<Insert<R>, StoreError> {
        let limit = self.timeout(Exchange::Write);
        let insert = self
            .within(Exchange::Write, "INSERT", self.client().insert::<R>(table))
            .await?;
        Ok(insert.with_timeouts(Some(limit), Some(limit)))
    }

    /// Whether ClickHouse answers a trivial query within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(
            timeout,
            self.read_client().query("SELECT 1").fetch_one::<u8>(),
        )
        .await
        {
            Ok(answer) => answer.map(drop).map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
        }
    }
}

/// The `clickhouse` crate's own HTTP client, with one change: TCP_NODELAY. Without it an
/// INSERT body past the crate's 256 KiB buffer goes out in two writes, and the second waits
/// for the delayed ACK of the first: about 40 ms added to every large batch.
fn http_client() -> Client {
    http_client_keeping(usize::MAX)
}

/// The same client keeping at most `idle` connections per host for reuse.
fn http_client_keeping(idle: usize) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(idle)
        .build(connector);
    // An INSERT into conversions also feeds the materialized views of its listing copies
    // and e-mail touches; by default ClickHouse writes those one after another, which is
    // most of a batch's INSERT time.
    Client::with_http_client(http).with_setting("parallel_view_processing", "1")
}

/// The credentials of `settings` on `client`.
fn with_settings(client: Client, settings: &StoreSettings) -> Client {
    client
        .with_user(&settings.user)
        .with_password(&settings.password)
}

/// As the `clickhouse` crate sets them: ClickHouse closes idle connections after 3 s, so
/// the pool lets go of them sooner.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

fn parse_version(text: &str) -> (u32, u32) {
    let mut parts = text.split('.').map(|part| part.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(parse_version("18.16.1"), (18, 16));
        assert!(parse_version("18.16.1") < FIRST_VERSION_WITH_VALIDATION);
        assert!(parse_version("24.8.4.13") >= FIRST_VERSION_WITH_VALIDATION);
        assert!(parse_version("19.3.0") >= FIRST_VERSION_WITH_VALIDATION);
    }
}
