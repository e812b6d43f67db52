//! The command line: `setup`, `run` (with `--baseline` to compare) and `fill`. Every option
//! that names a place or a secret also reads an `AFFILYNC_*` variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ingest::config::ClickhouseArgs;

use crate::drive::Pace;
use crate::scenario::{Mix, Scenario};
use crate::setup::SetupPlan;

#[derive(Debug, Parser)]
#[command(
    name = "affilync-load",
    version,
    about = "Load generator for Affilync ingestion that checks what was stored"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Threads driving the requests; default: one per core.
    #[arg(long, global = true, env = "AFFILYNC_LOAD_THREADS")]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a brand, affiliates, campaigns, links, a brand key and clicks; print them as
    /// JSON (and save them with --save, for `fill`).
    Setup(SetupArgs),
    /// Run a scenario, report rate and latency, then check the store.
    Run(Box<RunArgs>),
    /// Write conversions for one brand straight through the store.
    Fill(Box<FillArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// Base URL of the running service.
    #[arg(
        long,
        env = "AFFILYNC_LOAD_TARGET",
        default_value = "http://127.0.0.1:8080"
    )]
    pub target: String,
    /// The service's admin token.
    #[arg(long, env = "AFFILYNC_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

impl ServiceArgs {
    pub fn admin_token(&self) -> anyhow::Result<&str> {
        self.admin_token
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("give --admin-token or set AFFILYNC_ADMIN_TOKEN"))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ShapeArgs {
    #[arg(long, default_value_t = 3)]
    pub campaigns: usize,
    #[arg(long, default_value_t = 2)]
    pub affiliates: usize,
    /// Click ids to collect by following the links; conversions use them in turn.
    #[arg(long, default_value_t = 100)]
    pub clicks: usize,
}

impl ShapeArgs {
    pub fn plan(&self, name: &str) -> SetupPlan {
        SetupPlan {
            name: name.to_owned(),
            campaigns: self.campaigns,
            affiliates: self.affiliates,
            clicks: self.clicks.max(1),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Write the setup as JSON to this file.
    #[arg(long)]
    pub save: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
#[command(mut_arg("clickhouse_url", clickhouse_url_help))]
pub struct RunArgs {
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, short = 'c', default_value_t = 32)]
    pub connections: usize,
    /// Requests per second across all connections; unset: flat out.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send, like 10s, 500ms or 2m; default 10s unless --requests is given.
    #[arg(long, value_parser = parse_span)]
    pub duration: Option<Duration>,
    /// How many requests to send.
    #[arg(long)]
    pub requests: Option<u64>,
    /// A request unanswered this long counts as timed out (its outcome uncertain).
    #[arg(long, value_parser = parse_span, default_value = "10s")]
    pub timeout: Duration,
    /// Longest wait, before the store check, for the service's journal to reach ClickHouse.
    #[arg(long, value_parser = parse_span, default_value = "5m")]
    pub drain_timeout: Duration,
    /// Conversions stored before replay, conflict and mixed runs, and sent again.
    #[arg(long, default_value_t = 1000)]
    pub pool: usize,
    /// Shares of clicks : new conversions : replays in the mixed scenario.
    #[arg(long, default_value = "5:3:2")]
    pub mix: Mix,
    /// Run first against this do-nothing baseline (affilync-baseline) with the same
    /// settings, and report the service's rate as a share of the baseline's.
    #[arg(long, env = "AFFILYNC_LOAD_BASELINE")]
    pub baseline: Option<String>,
    #[command(flatten)]
    pub clickhouse: ClickhouseArgs,
    /// Skip the store check.
    #[arg(long)]
    pub no_verify: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// How to print the report on stdout.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

impl RunArgs {
    pub fn pace(&self) -> Pace {
        let duration = match (self.duration, self.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (duration, _) => duration,
        };
        Pace {
            connections: self.connections.max(1),
            rate: self.rate.filter(|rate| *rate > 0.0),
            duration,
            requests: self.requests,
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(mut_arg("clickhouse_url", clickhouse_url_help))]
pub struct FillArgs {
    /// A file saved by `setup --save`; without it, a setup is made through --target.
    #[arg(long)]
    pub setup: Option<PathBuf>,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Where to save the setup made when --setup is not given.
    #[arg(long)]
    pub save_setup: Option<PathBuf>,
    #[command(flatten)]
    pub clickhouse: ClickhouseArgs,
    /// Conversions to write.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Click rows to write, each conversion's own among them (so at least --rows);
    /// default five per conversion. (--clicks is the setup's, for the links it follows.)
    #[arg(long)]
    pub click_rows: Option<u64>,
    /// created_at is spread over this many days before now.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Rows per INSERT.
    #[arg(long, default_value_t = 100_000)]
    pub batch_rows: usize,
    /// Shares `approved:pending:rejected` of the conversions the brand decides on (those
    /// the cookie window rejected stay rejected); a decided conversion is stored as two
    /// versions and a history row, as the service stores it.
    #[arg(long, default_value = "70:20:10")]
    pub statuses: StatusShares,
}

/// Shares of the statuses a brand decides, e.g. `70:20:10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusShares {
    pub approved: u32,
    pub pending: u32,
    pub rejected: u32,
}

impl StatusShares {
    pub fn total(&self) -> u32 {
        self.approved + self.pending + self.rejected
    }
}

impl std::str::FromStr for StatusShares {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let shares: Vec<u32> = text
            .split(':')
            .map(|part| part.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{text:?} is not approved:pending:rejected, e.g. 70:20:10"))?;
        match shares[..] {
            [approved, pending, rejected] if approved + pending + rejected > 0 => Ok(Self {
                approved,
                pending,
                rejected,
            }),
            _ => Err(format!(
                "{text:?} is not approved:pending:rejected, e.g. 70:20:10"
            )),
        }
    }
}

/// The service's own help for the URL speaks of the ClickHouse it starts when none is
/// given; the generator starts none.
fn clickhouse_url_help(arg: clap::Arg) -> clap::Arg {
    arg.help("ClickHouse HTTP URL of the service's store, for the checks and for fill")
}

/// `10s`, `500ms`, `2m`, `1.5s`, or a bare number of seconds.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shares_are_three_numbers_not_all_zero() {
        assert_eq!(
            "70:20:10".parse::<StatusShares>(),
            Ok(StatusShares {
                approved: 70,
                pending: 20,
                rejected: 10
            })
        );
        for bad in ["70:30", "0:0:0", "a:b:c", "1:2:3:4", ""] {
            assert!(bad.parse::<StatusShares>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_read_with_and_without_units() {
        assert_eq!(parse_span("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_span("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_span("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_span("3"), Ok(Duration::from_secs(3)));
        assert!(parse_span("ten").is_err());
        assert!(parse_span("5d").is_err());
    }
}
