//! `xtask-aws`: the half of `cargo xtask` that calls AWS (publish, publish-all, status,
//! bootstrap, usage, rollout, prune, unlock, changed --remote). The xtask binary hands
//! these commands here, so only they compile the AWS SDK; everything else (the command
//! line, the stages, the checks) comes from the xtask crate. See docs/ARCHITECTURE.md.

mod aws;
mod bootstrap;
mod cmd;
mod prune;
mod publish;
mod records;
mod rollout;
mod s3lock;

use std::process::ExitCode;

use anyhow::Result;
use xtask::cli::{self, Command};
use xtask::repo::Repo;

fn main() -> ExitCode {
    cli::main(cli::Binary { package: "xtask-aws", compiled_in: env!("CARGO_MANIFEST_DIR") }, &run)
}

/// Runs a command that needs AWS; any other is run by `cli::main` itself.
fn run(repo: Repo, command: &Command) -> Result<bool> {
    match command {
        Command::Publish(a) => cmd::publish::run(repo, a),
        Command::PublishAll(a) => cmd::publish::run_all(repo, a),
        Command::Status(a) => cmd::status::run(repo, a),
        Command::Bootstrap(a) => cmd::bootstrap::run(repo, a),
        Command::Usage(a) => cmd::usage::run(repo, a),
        Command::Rollout(a) => cmd::rollout::run(repo, a),
        Command::Prune(a) => cmd::prune::run(repo, a),
        Command::Unlock(a) => cmd::unlock::run(repo, a),
        Command::Changed(a) => xtask::cmd::changed::run(
            repo,
            a,
            Some(&|ctx, profile, names| aws::run(publish::status::status(ctx, profile, names, 8))),
        ),
        other => unreachable!("{other:?} needs no AWS and is run by cli::main"),
    }
}
