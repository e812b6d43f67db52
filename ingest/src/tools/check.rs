//! `affilync check`: are the derived tables (commissions, listing copies) in agreement with
//! `conversions`, for a brand, a time range or everything? Prints each disagreement; with
//! `--repair`, mends what it found and checks again. Exits non-zero while anything is wrong.

use attributor::Store;
use attributor::domain::BrandId;
use attributor::store::{CheckScope, StoreSettings};

use crate::config::CheckArgs;
use crate::request::parse_bound;

/// Runs the check; `Ok(true)` when everything agrees (after the repair, if asked for).
pub async fn run(args: &CheckArgs, settings: &StoreSettings) -> anyhow::Result<bool> {
    let scope = scope(args)?;
    let store = Store::connect(settings).await?;
    let problems = store.check(&scope).await?;
    for problem in &problems {
        println!(
            "{}\t{}\t{}",
            problem.table, problem.conversion_id, problem.what
        );
    }
    println!("{} problems found", problems.len());
    if problems.is_empty() || !args.repair {
        return Ok(problems.is_empty());
    }
    let rewritten = store.repair(&problems).await?;
    println!("{rewritten} conversions rewritten; checking again");
    let left = store.check(&scope).await?;
    for problem in &left {
        println!(
            "{}\t{}\t{}",
            problem.table, problem.conversion_id, problem.what
        );
    }
    println!("{} problems left", left.len());
    Ok(left.is_empty())
}

fn scope(args: &CheckArgs) -> anyhow::Result<CheckScope> {
    let bound = |text: &Option<String>, field: &str, upper: bool| {
        text.as_deref()
            .map(|text| parse_bound(text, field, upper))
            .transpose()
            .map_err(|error| anyhow::anyhow!("--{}: {error}", field.replace('_', "-")))
    };
    Ok(CheckScope {
        brand: args
            .brand
            .as_deref()
            .map(BrandId::parse)
            .transpose()
            .map_err(|error| anyhow::anyhow!("--brand {error}"))?,
        from: bound(&args.from, "from", false)?,
        until: bound(&args.until, "until", true)?,
    })
}
