//! Running on a replicated, sharded ClickHouse cluster: the settings every statement carries
//! (synchronous Distributed INSERTs with a quorum, bounded ON CLUSTER statements), the
//! cluster's schema statements and the names of each shard's tables. How the migrations are
//! rendered for a cluster is in `cluster_ddl.rs`.

use std::time::Duration;

use clickhouse::{Client, Row};
use serde::Deserialize;

use super::cluster_ddl::LOCAL;
use super::deadline::Exchange;
use super::{Store, StoreError};

/// A cluster the store runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The cluster's name in the servers' `remote_servers`.
    pub name: String,
    /// Replicas of each shard that must hold an INSERT before ClickHouse acknowledges it;
    /// 0: all of them.
    pub insert_quorum: u32,
    /// Longest an ON CLUSTER statement waits for every node.
    pub ddl_timeout: Duration,
}

impl ClusterSettings {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            insert_quorum: 0,
            ddl_timeout: Duration::from_secs(30),
        }
    }

    /// Settings every statement of a cluster store carries: INSERTs through a Distributed
    /// table are forwarded to each shard before they are answered (never queued on the
    /// receiving node, which would acknowledge rows no replica holds), and ON CLUSTER
    /// statements wait at most `ddl_timeout` for every node.
    ///
    /// Block deduplication is off: on 18.16 a block found to be a duplicate also skips the
    /// table's materialized views, so the retry of an INSERT that failed after its main
    /// block was committed (a replica killed while the quorum waited) would never fill the
    /// listing copies, touches and dedup log. Retries are made harmless the way they are on
    /// one server: every table is a ReplacingMergeTree keyed by its row's identity, sharded
    /// so that a repeated row lands beside the first, and read with FINAL.
    pub(crate) fn apply(&self, client: Client) -> Client {
        client
            .with_setting("insert_distributed_sync", "1")
            .with_setting("insert_deduplicate", "0")
            // Reads filter and join Distributed tables by subqueries over Distributed tables
            // (reports' latest rollup generation, `check`'s joins), which ClickHouse refuses
            // unless told how: "global" computes the subquery once and sends its result to
            // every shard, where the rows it must match may be on any shard.
            .with_setting("distributed_product_mode", "global")
            .with_setting(
                "distributed_ddl_task_timeout",
                self.ddl_timeout.as_secs().max(1).to_string(),
            )
    }

    /// INSERTs are answered only once `insert_quorum` replicas of the shard hold them, so an
    /// acknowledged batch survives the loss of any node short of a quorum; a retry of the
    /// same batch is collapsed by ReplacingMergeTree.
    pub(crate) fn apply_quorum(&self, client: Client) -> Client {
        if self.insert_quorum > 1 {
            client
                .with_setting("insert_quorum", self.insert_quorum.to_string())
                .with_setting(
                    "insert_quorum_timeout",
                    self.ddl_timeout.as_millis().to_string(),
                )
        } else {
            client
        }
    }
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct Replicas {
    replicas: u32,
}

impl Store {
    /// `CREATE DATABASE`, on every node of the cluster when there is one. On a cluster it is
    /// skipped when the database exists, so that a node starts while another node is down.
    pub(crate) async fn create_database(&self) -> Result<(), StoreError> {
        let database = &self.settings.database;
        let create = match &self.settings.cluster {
            Some(_) if self.database_exists().await? => return Ok(()),
            Some(cluster) => {
                format!(
                    "CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {}",
                    cluster.name
                )
            }
            None => format!("CREATE DATABASE IF NOT EXISTS {database}"),
        };
        self.ddl(&create).await
    }

    async fn database_exists(&self) -> Result<bool, StoreError> {
        self.count_of(
            "SELECT count() AS n FROM system.databases WHERE name = ?",
            &[&self.settings.database],
        )
        .await
        .map(|n| n > 0)
    }

    /// Whether `table` exists in the database on the node asked.
    pub(crate) async fn table_exists(&self, table: &str) -> Result<bool, StoreError> {
        self.count_of(
            "SELECT count() AS n FROM system.tables WHERE database = ? AND name = ?",
            &[&self.settings.database, table],
        )
        .await
        .map(|n| n > 0)
    }

    async fn count_of(&self, sql: &str, binds: &[&str]) -> Result<u64, StoreError> {
        let mut query = self.read_client().query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        let rows: Vec<Count> = self
            .within(Exchange::Read, "schema look-up", query.fetch_all::<Count>())
            .await?;
        Ok(rows.first().map_or(0, |row| row.n))
    }

    /// How many replicas each shard has, which sets the INSERT quorum when it is not given;
    /// fails when the servers do not know the cluster.
    pub(crate) async fn quorum_of(&self, cluster: &ClusterSettings) -> Result<u32, StoreError> {
        let rows: Vec<Replicas> = self
            .within(
                Exchange::Read,
                "cluster description",
                self.read_client()
                    .query(
                        "SELECT toUInt32(max(replica_num)) AS replicas FROM system.clusters \
                         WHERE cluster = ?",
                    )
                    .bind(&cluster.name)
                    .fetch_all::<Replicas>(),
            )
            .await?;
        let replicas = rows.first().map_or(0, |row| row.replicas);
        if replicas == 0 {
            return Err(StoreError::Refused(format!(
                "ClickHouse does not know the cluster {:?} (AFFILYNC_CLICKHOUSE_CLUSTER): it is \
                 not in the servers' remote_servers",
                cluster.name
            )));
        }
        Ok(match cluster.insert_quorum {
            0 => replicas,
            quorum => quorum.min(replicas),
        })
    }

    /// Runs `attempt` again while the cluster answers that another quorum INSERT into the
    /// same table and shard is still waiting for its replicas (Code 286: 18.16 allows one
    /// at a time), for at most the write timeout. Such INSERTs take tens of milliseconds,
    /// so two nodes writing at once (admin creates, migration ledgers) both succeed in a
    /// few tries instead of one of them answering 503.
    pub(crate) async fn while_quorum_busy<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let deadline = std::time::Instant::now() + self.timeout(Exchange::Write);
        let mut pause = Duration::from_millis(10);
        loop {
            match attempt().await {
                Err(error)
                    if error.is_quorum_busy() && std::time::Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                result => return result,
            }
        }
    }

    /// A schema statement; on a cluster, a timeout of the distributed DDL names the cause.
    pub(crate) async fn ddl(&self, statement: &str) -> Result<(), StoreError> {
        let result = self
            .within(
                Exchange::Bulk,
                "schema statement",
                self.client().query(statement).execute(),
            )
            .await;
        match (result, &self.settings.cluster) {
            (Err(error), Some(cluster)) if error.to_string().contains("Code: 159") => {
                Err(StoreError::Unavailable(format!(
                    "not every node of cluster {} applied a schema statement within {:?} \
                     (is a node down?); the nodes that are up applied it, the others will when \
                     they return. Statement: {statement}. Server said: {}",
                    cluster.name,
                    cluster.ddl_timeout,
                    error
                        .to_string()
                        .trim_start_matches("clickhouse is unavailable: ")
                )))
            }
            (result, _) => result,
        }
    }

    /// `ALTER TABLE {table} {action}`: on a cluster, on every node's local table.
    pub(crate) fn alter_local(&self, table: &str, action: &str) -> String {
        match &self.settings.cluster {
            Some(cluster) => format!(
                "ALTER TABLE {}.{table}{LOCAL} ON CLUSTER {} {action}",
                self.settings.database, cluster.name
            ),
            None => format!("ALTER TABLE {table} {action}"),
        }
    }

    /// A system table read on one replica of every shard on a cluster (the `cluster` table
    /// function), or this server's own.
    pub(crate) fn every_shard(&self, database: &str, table: &str) -> String {
        match &self.settings.cluster {
            Some(cluster) => format!("cluster('{}', {database}, {table})", cluster.name),
            None => format!("{database}.{table}"),
        }
    }

    /// The name of `table`'s rows on this node: itself on one server, its local table on a
    /// cluster.
    pub(crate) fn local_name(&self, table: &str) -> String {
        match &self.settings.cluster {
            Some(_) => format!("{table}{LOCAL}"),
            None => table.to_owned(),
        }
    }
}
