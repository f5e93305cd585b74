//! The `tokenprune` command-line tool: `select`, `bench`, `demo`, `info`.

mod bench;
mod demo;
#[cfg(feature = "gpu")]
mod info;
mod picture;
mod request;
mod select;

use clap::{Parser, Subcommand};

/// Visual-token pruning for multimodal LLMs (DivPrune, IDPruner and baselines).
#[derive(Parser)]
#[command(name = "tokenprune", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Select the tokens to keep from a feature file; prints one JSON object.
    Select(select::Args),
    /// Time the engines on the standard sizes; prints a table of medians.
    Bench(bench::Args),
    /// Prune real photos' encoder tokens with every method: PNGs of what was kept, and figures.
    Demo(demo::Args),
    /// List the GPU adapters, their limits, and the path each standard size takes.
    #[cfg(feature = "gpu")]
    Info(info::Args),
}

fn main() -> std::process::ExitCode {
    // Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set" when probed
    // without it (containers, CI); harmless, but it reads like a failure of ours. Set before
    // any thread exists.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Select(a) => select::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Demo(a) => demo::run(a),
        #[cfg(feature = "gpu")]
        Command::Info(a) => info::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenprune: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
