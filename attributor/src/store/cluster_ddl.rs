//! The migrations in `sql/` are written for one server; on a cluster each statement is
//! rendered, by the conventions those files follow, into its cluster form, so that a new
//! migration written the same way needs nothing more:
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

use super::StoreError;

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
        // Rollups by their whole key: a generation's rows, read whole through the
        // Distributed table, may be on every shard.
        assert!(distributed("report_clicks_daily").ends_with(
            "Distributed(c, db, report_clicks_daily_local, \
             cityHash64(brand_id, day, campaign_id, affiliate_id))"
        ));
        assert!(all.iter().any(|s| s.starts_with(
            "CREATE TABLE IF NOT EXISTS db.report_conversions_daily_local ON CLUSTER c"
        ) && s.contains("ReplicatedReplacingMergeTree(")));
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
