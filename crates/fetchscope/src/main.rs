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
        Command::Step(args) => fetchscope::step::step(&args.url, &args.common),
        Command::Compare(args) => fetchscope::compare::run(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fetchscope: {:#}", e.error);
            e.code
        }
    };
    std::process::exit(code);
}
