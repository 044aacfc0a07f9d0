//! `frontdesk`: CLI and wiring. Rules live in `frontdesk-core`; this binary parses arguments,
//! opens the store, calls core, and prints.

mod cli;
mod commands;
mod config;
mod dnslog;
mod metrics;
mod offline;
mod output;
mod systemd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    frontdesk_radius::directory::fixed_mmap_threshold();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One plain line on stderr, also with --json (SPEC §7).
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
