//! Running on a replicated, sharded ClickHouse cluster. The migrations in `sql/` are written
//! for one server; on a cluster each statement is rendered, by the conventions those files
//! follow, into its cluster form, so that a new migration written the same way needs
//! nothing more:
//!
//! - `CREATE TABLE t (...) ENGINE = XMergeTree(args) ...` becomes `t_local`, a
//!   `ReplicatedXMergeTree` on every node (path by `{shard}`, replica by `{replica}`), and
//!   `t`, a `Distributed` table over the `t_local` of every shard, so that the service keeps
//!   reading and writing the names it knows. `CREATE TABLE t AS s ENGINE = ...` does the same
//!   with `s_local`'s columns.
//! - The sharding key keeps every version of a row on one shard, which FINAL and the dedup
//!   look-ups rely on: `cityHash64(conversion_id)` for a table with a `conversion_id` column
//!   (a conversion's versions, its commission, its listing copies and anything derived from
//!   it land on the shard of its id, which is derived from brand and order id), otherwise a
//!   hash of the table's ORDER BY key (its identity for ReplacingMergeTree).
//! - `CREATE MATERIALIZED VIEW v TO t AS SELECT ... FROM s` becomes a view on every node
//!   from `s_local` to `t_local`: each shard derives its own rows, and the target's
//!   replication copies them.
//! - `CREATE VIEW` and `ALTER TABLE` run ON CLUSTER (ALTER on both `t_local` and `t`);
//!   `INSERT ... SELECT` backfills run once, through the Distributed tables.
//!
//! Every statement runs ON CLUSTER with `distributed_ddl_task_timeout` bounded, so a node that
//! is down turns a migration into a prompt error naming the timeout, not a wait of minutes.

use std::collections::HashMap;
use std::time::Duration;

use clickhouse::{Client, Row};
use serde::Deserialize;

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
        let mut query = self.client().query(sql);
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
                self.client()
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

    /// The name of `table`'s rows on this node: itself on one server, its local table on a
    /// cluster.
    pub(crate) fn local_name(&self, table: &str) -> String {
        match &self.settings.cluster {
            Some(_) => format!("{table}{LOCAL}"),
            None => table.to_owned(),
        }
    }
}

/// The suffix of the tables that hold each shard's rows.
pub const LOCAL: &str = "_local";

/// What the rendering knows of the tables created so far.
#[derive(Default)]
pub struct Tables {
    /// Each table, and whether it has a `conversion_id` column.
    has_conversion_id: HashMap<String, bool>,
}

/// Renders single-server statements into their cluster form, in migration order.
pub struct Renderer<'a> {
    pub database: &'a str,
    pub cluster: &'a str,
    pub tables: Tables,
}

impl Renderer<'_> {
    /// The cluster statements for one single-server `statement`.
    pub fn render(&mut self, statement: &str) -> Result<Vec<String>, StoreError> {
        let words: Vec<String> = statement
            .split_whitespace()
            .take(4)
            .map(str::to_ascii_uppercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["CREATE", "TABLE", ..] => self.table(statement),
            ["CREATE", "MATERIALIZED", "VIEW", ..] => self.materialized_view(statement),
            ["CREATE", "VIEW", ..] => {
                let (name, rest) = split_name(statement, "VIEW")?;
                Ok(vec![format!(
                    "{} {}.{name} ON CLUSTER {}{}",
                    head(statement, "VIEW"),
                    self.database,
                    self.cluster,
                    self.qualify(rest, "")
                )])
            }
            ["ALTER", "TABLE", ..] => {
                let (name, rest) = split_name(statement, "TABLE")?;
                Ok([format!("{name}{LOCAL}"), name.to_owned()]
                    .iter()
                    .map(|table| {
                        format!(
                            "ALTER TABLE {}.{table} ON CLUSTER {}{rest}",
                            self.database, self.cluster
                        )
                    })
                    .collect())
            }
            ["INSERT", ..] => Ok(vec![statement.to_owned()]),
            _ => Err(unsupported(
                statement,
                "only CREATE, ALTER and INSERT are rendered",
            )),
        }
    }

    fn table(&mut self, statement: &str) -> Result<Vec<String>, StoreError> {
        let (name, rest) = split_name(statement, "TABLE")?;
        let engine_at = find_word(rest, "ENGINE")
            .ok_or_else(|| unsupported(statement, "a table needs an ENGINE"))?;
        let (shape, engine_clause) = rest.split_at(engine_at);
        let (engine, args, tail) = parse_engine(engine_clause)
            .ok_or_else(|| unsupported(statement, "the ENGINE could not be read"))?;
        if !engine.ends_with("MergeTree") || engine.starts_with("Replicated") {
            return Err(unsupported(
                statement,
                "only *MergeTree tables are rendered",
            ));
        }
        let shape = shape.trim();
        let (columns, has_conversion_id) = match shape.strip_prefix("AS ").map(str::trim) {
            Some(source) => {
                let known = self.tables.has_conversion_id.get(source).copied();
                let known = known.ok_or_else(|| unsupported(statement, "unknown AS table"))?;
                (format!("AS {}.{source}{LOCAL}", self.database), known)
            }
            None => {
                let has = shape
                    .lines()
                    .any(|line| line.trim_start().starts_with("conversion_id "));
                (shape.to_owned(), has)
            }
        };
        self.tables
            .has_conversion_id
            .insert(name.to_owned(), has_conversion_id);
        let key = if has_conversion_id {
            "cityHash64(conversion_id)".to_owned()
        } else {
            let order = order_by(tail)
                .ok_or_else(|| unsupported(statement, "a table needs an ORDER BY"))?;
            if order.is_empty() || order == "tuple()" {
                "rand()".to_owned()
            } else {
                format!("cityHash64({order})")
            }
        };
        let local = format!("{name}{LOCAL}");
        let zk_path = format!("'/clickhouse/tables/{{shard}}/{}/{local}'", self.database);
        let replicated_args = match args {
            Some(args) if !args.trim().is_empty() => format!("{zk_path}, '{{replica}}', {args}"),
            _ => format!("{zk_path}, '{{replica}}'"),
        };
        let (database, cluster) = (self.database, self.cluster);
        Ok(vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER {cluster} {columns} \
                 ENGINE = Replicated{engine}({replicated_args}){tail}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} \
                 AS {database}.{local} ENGINE = Distributed({cluster}, {database}, {local}, {key})"
            ),
        ])
    }

    fn materialized_view(&self, statement: &str) -> Result<Vec<String>, StoreError> {
        let (name, rest) = split_name(statement, "VIEW")?;
        let rest = rest.trim_start();
        let Some(after_to) = rest.strip_prefix("TO ") else {
            return Err(unsupported(
                statement,
                "a materialized view must write TO a table created by a migration",
            ));
        };
        let target_end = after_to.find(char::is_whitespace).unwrap_or(after_to.len());
        let (target, select) = after_to.split_at(target_end);
        Ok(vec![format!(
            "{} {}.{name} ON CLUSTER {} TO {}.{target}{LOCAL}{}",
            head(statement, "VIEW"),
            self.database,
            self.cluster,
            self.database,
            self.qualify(select, LOCAL)
        )])
    }

    /// `text` with every known table read after FROM or JOIN qualified by the database and
    /// given `suffix`.
    fn qualify(&self, text: &str, suffix: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut previous = String::new();
        let mut rest = text;
        while let Some(start) = rest.find(is_word_char) {
            out.push_str(&rest[..start]);
            let word_end = rest[start..]
                .find(|c: char| !is_word_char(c))
                .map_or(rest.len(), |end| start + end);
            let word = &rest[start..word_end];
            let qualified_already = rest[word_end..].starts_with('.') || out.ends_with('.');
            if ["FROM", "JOIN"].contains(&previous.to_ascii_uppercase().as_str())
                && self.tables.has_conversion_id.contains_key(word)
                && !qualified_already
            {
                out.push_str(&format!("{}.{word}{suffix}", self.database));
            } else {
                out.push_str(word);
            }
            previous = word.to_owned();
            rest = &rest[word_end..];
        }
        out.push_str(rest);
        out
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn unsupported(statement: &str, why: &str) -> StoreError {
    StoreError::Refused(format!(
        "cannot render this migration statement for a cluster ({why}): {statement}"
    ))
}

/// The statement up to and including `keyword` and its `IF NOT EXISTS`.
fn head<'a>(statement: &'a str, keyword: &str) -> &'a str {
    let (name, _) = split_name(statement, keyword).expect("checked by the caller");
    let at = statement.find(name).expect("the name is in the statement");
    statement[..at].trim_end()
}

/// The object's name after `keyword` (and `IF NOT EXISTS`), and what follows it.
fn split_name<'a>(statement: &'a str, keyword: &str) -> Result<(&'a str, &'a str), StoreError> {
    let at = find_word(statement, keyword)
        .ok_or_else(|| unsupported(statement, "no object keyword"))?
        + keyword.len();
    let mut rest = statement[at..].trim_start();
    if rest.to_ascii_uppercase().starts_with("IF NOT EXISTS") {
        rest = rest["IF NOT EXISTS".len()..].trim_start();
    } else if rest.to_ascii_uppercase().starts_with("IF EXISTS") {
        rest = rest["IF EXISTS".len()..].trim_start();
    }
    let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
    let (name, after) = rest.split_at(end);
    if name.is_empty() || after.starts_with('.') {
        return Err(unsupported(
            statement,
            "the object needs a plain, unqualified name",
        ));
    }
    Ok((name, after))
}

/// Where `word` first stands as a whole word in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        let after = text[at + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_word_char(c));
        if before && after {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// `ENGINE = Name(args) tail` → (Name, args, tail).
fn parse_engine(clause: &str) -> Option<(&str, Option<&str>, &str)> {
    let rest = clause.strip_prefix("ENGINE")?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let name_end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
    let (name, rest) = rest.split_at(name_end);
    let Some(inside) = rest.strip_prefix('(') else {
        return Some((name, None, rest));
    };
    let mut depth = 1;
    for (index, c) in inside.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return Some((name, Some(&inside[..index]), &inside[index + 1..]));
        }
    }
    None
}

/// The ORDER BY expression of an engine's tail, without its outer parentheses.
fn order_by(tail: &str) -> Option<String> {
    let at = find_word(tail, "ORDER")?;
    let rest = tail[at + "ORDER".len()..].trim_start().strip_prefix("BY")?;
    let end = ["SETTINGS", "PRIMARY", "SAMPLE", "PARTITION", "TTL"]
        .iter()
        .filter_map(|keyword| find_word(rest, keyword))
        .min()
        .unwrap_or(rest.len());
    let expression = rest[..end].trim();
    let inner = expression
        .strip_prefix('(')
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or(expression);
    Some(inner.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MIGRATIONS;

    fn renderer() -> Renderer<'static> {
        Renderer {
            database: "db",
            cluster: "c",
            tables: Tables::default(),
        }
    }

    #[test]
    fn a_table_becomes_a_replicated_local_table_and_a_distributed_one() {
        let mut r = renderer();
        let out = r
            .render(
                "CREATE TABLE IF NOT EXISTS brands (\n    brand_id String,\n    version UInt64\n) \
                 ENGINE = ReplacingMergeTree(version)\nORDER BY brand_id",
            )
            .unwrap();
        assert_eq!(
            out[0],
            "CREATE TABLE IF NOT EXISTS db.brands_local ON CLUSTER c (\n    brand_id String,\n    \
             version UInt64\n) ENGINE = ReplicatedReplacingMergeTree(\
             '/clickhouse/tables/{shard}/db/brands_local', '{replica}', version)\nORDER BY brand_id"
        );
        assert_eq!(
            out[1],
            "CREATE TABLE IF NOT EXISTS db.brands ON CLUSTER c AS db.brands_local \
             ENGINE = Distributed(c, db, brands_local, cityHash64(brand_id))"
        );
    }

    #[test]
    fn every_table_of_a_conversion_is_sharded_by_its_id() {
        let mut r = renderer();
        let mut all = Vec::new();
        for migration in MIGRATIONS {
            for statement in migration.statements() {
                all.extend(r.render(&statement).unwrap());
            }
        }
        let distributed = |table: &str| {
            all.iter()
                .find(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS db.{table} ON")))
                .unwrap_or_else(|| panic!("{table} has no Distributed table"))
                .clone()
        };
        for table in [
            "conversions",
            "conversions_by_brand",
            "conversions_by_affiliate",
            "commissions",
        ] {
            assert!(
                distributed(table).ends_with("cityHash64(conversion_id))"),
                "{}",
                distributed(table)
            );
        }
        assert!(distributed("clicks").ends_with("cityHash64(brand_id, clicked_at, click_id))"));
        assert!(
            all.contains(
                &"CREATE MATERIALIZED VIEW IF NOT EXISTS db.conversions_by_brand_mv ON CLUSTER c \
              TO db.conversions_by_brand_local\nAS SELECT * FROM db.conversions_local"
                    .to_owned()
            )
        );
        assert!(
            all.iter().any(|s| s.contains(
                "ReplicatedMergeTree('/clickhouse/tables/{shard}/db/dedup_log_local', '{replica}')"
            )),
            "{all:#?}"
        );
        // Backfills read through the Distributed tables, once.
        assert!(
            all.iter()
                .any(|s| s.starts_with("INSERT INTO email_touches"))
        );
    }

    #[test]
    fn views_and_alters_run_on_every_node() {
        let mut r = renderer();
        r.render("CREATE TABLE IF NOT EXISTS conversions (\n conversion_id String\n) ENGINE = ReplacingMergeTree ORDER BY conversion_id").unwrap();
        assert_eq!(
            r.render("CREATE VIEW IF NOT EXISTS daily AS SELECT count() FROM conversions FINAL")
                .unwrap(),
            [
                "CREATE VIEW IF NOT EXISTS db.daily ON CLUSTER c AS SELECT count() FROM db.conversions FINAL"
            ]
        );
        assert_eq!(
            r.render("ALTER TABLE conversions ADD COLUMN IF NOT EXISTS x String")
                .unwrap(),
            [
                "ALTER TABLE db.conversions_local ON CLUSTER c ADD COLUMN IF NOT EXISTS x String",
                "ALTER TABLE db.conversions ON CLUSTER c ADD COLUMN IF NOT EXISTS x String"
            ]
        );
        assert!(
            r.render(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS v ENGINE = MergeTree ORDER BY x AS SELECT 1"
            )
            .is_err()
        );
        assert!(r.render("OPTIMIZE TABLE conversions").is_err());
    }
}
