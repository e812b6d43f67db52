//! `affilync-baseline`: the do-nothing server that load runs are compared with. It answers
//! the service's routes with fixed answers of the real sizes on as many HTTP worker
//! threads as the service would use (one per core unless told).

use std::net::{SocketAddr, TcpListener};

use affilync_load::baseline;
use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "affilync-baseline",
    version,
    about = "Answers Affilync's routes with fixed answers, doing no work"
)]
struct Args {
    /// HTTP address.
    #[arg(
        long,
        env = "AFFILYNC_BASELINE_LISTEN",
        default_value = "127.0.0.1:8099"
    )]
    listen: SocketAddr,
    /// HTTP worker threads; default one per core, as the service's AFFILYNC_HTTP_WORKERS.
    #[arg(long, env = "AFFILYNC_HTTP_WORKERS")]
    workers: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    println!(
        "affilync-baseline is serving on http://{} with {workers} workers",
        listener.local_addr()?
    );
    actix_web::rt::System::new().block_on(baseline::serve(listener, workers))?;
    Ok(())
}
