//! `affilync-load`: reads the command line, starts the runtime and hands over to the
//! library. Exits 0 when every check held, 1 when one failed, 2 when the run could not
//! be made at all.

use std::process::ExitCode;

use affilync_load::cli::{Cli, Command};
use affilync_load::{fill, run, setup, target::Target};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Setup(args) => {
            let target = Target::new(&args.service.target, 16, std::time::Duration::from_secs(10))?;
            let plan = args.shape.plan("load setup");
            let made = setup::create(&target, args.service.admin_token()?, &plan).await?;
            if let Some(path) = &args.save {
                made.save(path)?;
            }
            println!("{}", serde_json::to_string_pretty(&made)?);
            Ok(true)
        }
        Command::Run(args) => run::run(&args).await,
        Command::Fill(args) => fill::fill(&args).await,
    }
}
