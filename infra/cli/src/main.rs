//! `stockguard`: operate a stockguard stack from a terminal. See `stockguard --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use stockguard_cli::errors::error_line;
use stockguard_cli::{Cli, Stack, Terminal, connect_with, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let terminal = Terminal {
        progress: if cli.json {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        },
        json: cli.json,
    };
    if let Some(done) = cli.command.run_offline(&mut std::io::stdout(), terminal) {
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let (stack, config) = match Stack::locate(&cli.target).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{}", error_line(&e, None, cli.target.profile.as_deref()));
            return ExitCode::FAILURE;
        }
    };
    let connection = connect_with(&stack, config);
    match run(&connection, &cli.command, &mut std::io::stdout(), terminal).await {
        Ok(()) => ExitCode::SUCCESS,
        // `stockguard ... | head`: the reader has what it wanted.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_line(&e, Some(&stack), None));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
