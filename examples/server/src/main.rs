//! `crm-server`: see the crate docs of `crm_server` (`cargo doc -p crm-server --open`) and
//! `crm-server --help`.

use std::process::ExitCode;

use clap::Parser;
use crm_server::cli::{Cli, Command};

/// mimalloc instead of the system allocator: the request path allocates a few dozen small
/// blocks per request on two or more threads, where glibc's malloc spends a tenth of the
/// CPU (see `BENCHMARKS.md`, "Request path at the floor"). A binary chooses its allocator;
/// the library crates never do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let store_threads = match &cli.command {
        Some(Command::Seed(args)) => args.store.store_threads(),
        Some(Command::Serve(args)) => args.store.store_threads(),
        None => cli.serve.store.store_threads(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(store_threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crm-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            None => crm_server::serve::run(cli.serve).await,
            Some(Command::Serve(args)) => crm_server::serve::run(args).await,
            Some(Command::Seed(args)) => crm_server::seed::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crm-server: {e}");
            ExitCode::FAILURE
        }
    }
}
