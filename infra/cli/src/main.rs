//! `stockguard`: operate a stockguard stack from a terminal. See `stockguard --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use stockguard_adapters::AdapterError;
use stockguard_cli::dlq::SqsError;
use stockguard_cli::stack::is_local_endpoint;
use stockguard_cli::{Cli, Stack, Terminal, connect, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let stack = match Stack::discover() {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let terminal = Terminal {
        progress: std::io::stdout().is_terminal(),
    };
    let result = match connect(&stack).await {
        Ok(connection) => run(&connection, &cli.command, &mut std::io::stdout(), terminal).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `stockguard ... | head`: the reader has what it wanted.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain()
                .any(|c| c.is::<AdapterError>() || c.is::<SqsError>())
            {
                let local = stack.endpoint_url.as_deref().is_some_and(is_local_endpoint);
                let hint = if local {
                    "; is it up? `make local-up` starts the local stack"
                } else {
                    ""
                };
                eprintln!("(stack: {stack}{hint})");
            }
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
