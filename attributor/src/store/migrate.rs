//! Numbered migrations from `sql/`, compiled into the binary and applied in order at
//! start and by `affilync migrate`. Every statement is idempotent (IF NOT EXISTS), and the
//! applied numbers are recorded, so concurrent or repeated runs converge.

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;

use super::cluster_ddl::{Renderer, Tables};
use super::deadline::Exchange;
use super::{Store, StoreError};

pub struct Migration {
    pub number: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        number: 1,
        name: "catalog",
        sql: include_str!("../../../sql/0001_catalog.sql"),
    },
    Migration {
        number: 2,
        name: "conversions",
        sql: include_str!("../../../sql/0002_conversions.sql"),
    },
    Migration {
        number: 3,
        name: "commissions",
        sql: include_str!("../../../sql/0003_commissions.sql"),
    },
    Migration {
        number: 4,
        name: "clicks",
        sql: include_str!("../../../sql/0004_clicks.sql"),
    },
    Migration {
        number: 5,
        name: "email_touches",
        sql: include_str!("../../../sql/0005_email_touches.sql"),
    },
    Migration {
        number: 6,
        name: "dedup_log",
        sql: include_str!("../../../sql/0006_dedup_log.sql"),
    },
    Migration {
        number: 7,
        name: "api_key_limits",
        sql: include_str!("../../../sql/0007_api_key_limits.sql"),
    },
    Migration {
        number: 8,
        name: "report_rollups",
        sql: include_str!("../../../sql/0008_report_rollups.sql"),
    },
    Migration {
        number: 9,
        name: "bi_views",
        sql: include_str!("../../../sql/0009_bi_views.sql"),
    },
    Migration {
        number: 10,
        name: "status_changes",
        sql: include_str!("../../../sql/0010_status_changes.sql"),
    },
    Migration {
        number: 11,
        name: "campaign_holds",
        sql: include_str!("../../../sql/0011_campaign_holds.sql"),
    },
    Migration {
        number: 12,
        name: "conversions_by_status",
        sql: include_str!("../../../sql/0012_conversions_by_status.sql"),
    },
    Migration {
        number: 13,
        name: "report_daily_rollups",
        sql: include_str!("../../../sql/0013_report_daily_rollups.sql"),
    },
    Migration {
        number: 14,
        name: "conversion_stamps",
        sql: include_str!("../../../sql/0014_conversion_stamps.sql"),
    },
];

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    number     UInt32,
    name       String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree
ORDER BY number";

#[derive(Row, Deserialize)]
struct Applied {
    number: u32,
}

impl Migration {
    /// The statements of the file, without comment lines; statements end with `;` at the
    /// end of a line.
    pub fn statements(&self) -> impl Iterator<Item = String> + '_ {
        self.sql.split(";\n").filter_map(|chunk| {
            let statement = chunk
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            let statement = statement.trim().trim_end_matches(';').trim();
            (!statement.is_empty()).then(|| statement.to_owned())
        })
    }
}

impl Store {
    /// Applies the migrations not yet recorded; returns the numbers it applied. On a
    /// cluster each statement is first rendered into its cluster form (see `cluster.rs`).
    pub async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let mut renderer = self.settings.cluster.as_ref().map(|cluster| Renderer {
            database: &self.settings.database,
            cluster: &cluster.name,
            tables: Tables::default(),
        });
        // On a cluster, ON CLUSTER statements wait for every node; a node that starts while
        // another is down must not need one when there is nothing to create.
        if renderer.is_none() || !self.table_exists("schema_migrations").await? {
            self.apply(&mut renderer, LEDGER).await?;
        }
        let applied: Vec<u32> = self
            .within(
                Exchange::Read,
                "migration ledger read",
                self.client()
                    .query("SELECT DISTINCT number FROM schema_migrations")
                    .fetch_all::<Applied>(),
            )
            .await?
            .into_iter()
            .map(|row| row.number)
            .collect();
        let mut newly_applied = Vec::new();
        for migration in MIGRATIONS {
            let done = applied.contains(&migration.number);
            for statement in migration.statements() {
                match renderer.as_mut() {
                    // What the applied ones created is still needed to render what follows.
                    Some(renderer) if done => drop(renderer.render(&statement)?),
                    _ if done => {}
                    _ => self.apply(&mut renderer, &statement).await?,
                }
            }
            if done {
                continue;
            }
            let applied_at = OffsetDateTime::now_utc().unix_timestamp();
            self.while_quorum_busy(|| {
                self.within(
                    Exchange::Write,
                    "migration ledger update",
                    self.client()
                        .query(
                            "INSERT INTO schema_migrations (number, name, applied_at) \
                             VALUES (?, ?, ?)",
                        )
                        .bind(migration.number)
                        .bind(migration.name)
                        .bind(applied_at)
                        .execute(),
                )
            })
            .await?;
            tracing::info!(
                number = migration.number,
                name = migration.name,
                "migration applied"
            );
            newly_applied.push(migration.number);
        }
        Ok(newly_applied)
    }

    /// One statement of a migration, in its cluster form when there is a cluster.
    async fn apply(
        &self,
        renderer: &mut Option<Renderer<'_>>,
        statement: &str,
    ) -> Result<(), StoreError> {
        match renderer {
            Some(renderer) => {
                for rendered in renderer.render(statement)? {
                    self.ddl(&rendered).await?;
                }
                Ok(())
            }
            None => self.ddl(statement).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_split_into_statements() {
        // Numbers may leave gaps (branches number their migrations apart), never go back.
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert!(i == 0 || MIGRATIONS[i - 1].number < migration.number);
            let statements: Vec<_> = migration.statements().collect();
            assert!(
                !statements.is_empty(),
                "{} has no statements",
                migration.name
            );
            for statement in statements {
                // Backfills run once, recorded in the ledger; everything else is idempotent.
                if !statement.starts_with("INSERT") {
                    assert!(statement.starts_with("CREATE"), "{statement}");
                    assert!(statement.contains("IF NOT EXISTS"), "{statement}");
                }
            }
        }
    }
}
