//! One `run`: against the baseline first when asked, then against the service, each with
//! its own setup and pool and the same settings; then the store check and the report.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::cli::{Output, RunArgs};
use crate::clickhouse_http::ClickhouseHttp;
use crate::drive::drive;
use crate::report::{Answers, Latency, Outcome, RunReport};
use crate::scenario::{Workload, amount_for};
use crate::target::Target;
use crate::verify::{self, Answer, Sent};
use crate::{drain, pool, setup};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Service,
    Baseline,
}

/// Runs, prints and returns whether every promise held.
pub async fn run(args: &RunArgs) -> anyhow::Result<bool> {
    let clickhouse = if args.no_verify {
        None
    } else {
        let c = &args.clickhouse;
        let url = c.clickhouse_url.as_deref().context(
            "the store check needs --clickhouse-url (or AFFILYNC_CLICKHOUSE_URL); \
             give --no-verify to skip it",
        )?;
        Some(ClickhouseHttp::new(
            url,
            &c.clickhouse_database,
            &c.clickhouse_user,
            c.clickhouse_password.expose(),
        )?)
    };
    let baseline = match &args.baseline {
        Some(url) => Some(one_run(args, url, Role::Baseline, None).await?),
        None => None,
    };
    let service = one_run(
        args,
        &args.service.target,
        Role::Service,
        clickhouse.as_ref(),
    )
    .await?;
    let outcome = Outcome::new(service, baseline);

    let json = serde_json::to_string_pretty(&outcome)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    match args.output {
        Output::Text => print!("{}", outcome.table()),
        Output::Json => {
            eprint!("{}", outcome.table());
            println!("{json}");
        }
    }
    Ok(outcome.passed)
}

async fn one_run(
    args: &RunArgs,
    base: &str,
    role: Role,
    clickhouse: Option<&ClickhouseHttp>,
) -> anyhow::Result<RunReport> {
    let pace = args.pace();
    let target = Target::new(base, pace.connections, args.timeout)?;
    let tag = run_tag();
    let role_name = match role {
        Role::Service => "service",
        Role::Baseline => "baseline",
    };
    eprintln!("[{role_name}] setting up on {base}");
    let plan = args.shape.plan(&format!("load {tag}"));
    let setup = Arc::new(
        setup::create(&target, args.service.admin_token()?, &plan)
            .await
            .with_context(|| format!("setting up on {base}"))?,
    );
    let pool = if args.scenario.needs_pool() {
        eprintln!(
            "[{role_name}] storing {} conversions to send again",
            args.pool
        );
        pool::create(&target, &setup, &tag, args.pool.max(1), pace.connections).await?
    } else {
        Vec::new()
    };
    let pool = Arc::new(pool);
    let workload = Arc::new(Workload::new(
        args.scenario,
        args.mix,
        tag,
        Arc::clone(&setup),
        Arc::clone(&pool),
    )?);
    eprintln!("[{role_name}] running {}", args.scenario.name());
    let tally = drive(&target, Arc::clone(&workload), pace, role == Role::Service).await;

    let verification = match (role, clickhouse) {
        (Role::Service, Some(clickhouse)) => {
            eprintln!("[{role_name}] waiting for the service's journal to reach ClickHouse");
            let waited = drain::wait_for_drain(&target, args.drain_timeout).await?;
            eprintln!("[{role_name}] drained in {waited:.1?}; checking the store");
            let mut sent: HashMap<String, Sent> = pool
                .iter()
                .map(|p| {
                    let answer = Answer::Acked {
                        conversion_id: p.conversion_id.clone(),
                        commission: p.commission.clone(),
                    };
                    let amount = p.amount.clone();
                    (p.order_id.clone(), Sent { amount, answer })
                })
                .collect();
            for (order, answer) in &tally.sent {
                let amount = amount_for(*order);
                sent.insert(
                    workload.order_id(*order),
                    Sent {
                        amount,
                        answer: answer.clone(),
                    },
                );
            }
            Some(verify::check(clickhouse, &setup.brand_id, &sent).await?)
        }
        _ => None,
    };

    let elapsed_s = tally.elapsed.as_secs_f64();
    let answered = tally.requests - tally.timeouts - tally.transport_errors;
    Ok(RunReport {
        scenario: args.scenario.name(),
        role: role_name,
        target: base.to_owned(),
        brand_id: setup.brand_id.clone(),
        connections: pace.connections,
        rate_limit: pace.rate,
        duration_limit_s: pace.duration.map(|d| d.as_secs_f64()),
        request_limit: pace.requests,
        pool: pool.len(),
        requests: tally.requests,
        answered,
        elapsed_s,
        requests_per_second: if elapsed_s > 0.0 {
            answered as f64 / elapsed_s
        } else {
            0.0
        },
        latency_us: Latency::of(&tally.latency_us),
        statuses: RunReport::statuses_of(&tally),
        timeouts: tally.timeouts,
        transport_errors: tally.transport_errors,
        transport_examples: tally.transport_examples,
        answers: (role == Role::Service).then_some(Answers {
            as_expected: tally.expected,
            backpressure: tally.backpressure,
            wrong: tally.wrong,
            wrong_examples: tally.wrong_examples,
        }),
        verification,
    })
}

/// Makes this run's order ids its own: `lt` and the start time in milliseconds, base 16.
fn run_tag() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("lt{millis:x}")
}
