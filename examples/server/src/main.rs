//! `crm-server`: see the crate docs of `crm_server` (`cargo doc -p crm-server --open`) and
//! `crm-server --help`.

use std::process::ExitCode;

use clap::Parser;
use crm_server::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
