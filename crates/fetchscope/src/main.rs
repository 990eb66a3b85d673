//! The fetchscope command.

use clap::Parser;
use fetchscope::cli::{Cli, Command};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(fetchscope::usage::report(&e)),
    };
    let result = match &cli.command {
        Command::Fetch(args) => fetchscope::run::fetch(&args.url, &args.common),
        Command::Step(args) => fetchscope::step::step(args),
        Command::Compare(args) => fetchscope::compare::run(args),
        Command::Replay(args) => fetchscope::replay::run(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // Set-up failures name their phase, as a failed fetch does ("tls failed: …").
            let phase = if e.code == fetchscope::run::EXIT_SETUP {
                "set-up failed: "
            } else {
                ""
            };
            eprintln!("fetchscope: {phase}{:#}", e.error);
            e.code
        }
    };
    std::process::exit(code);
}
