//! The command line: every subcommand and its flags, and the dispatch of one invocation.
//! Shared by the two binaries, so both parse the same way and `--help` lists everything.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::repo::Repo;
use crate::{cmd, interrupt, output, repo};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "Build, check and publish the Python Lambda layers of this repo"
)]
pub struct Cli {
    /// The layer repo to work on (default: the one holding the current directory; also XTASK_REPO)
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// When to colour stderr (auto: on a terminal; NO_COLOR and CLICOLOR_FORCE are honoured)
    #[arg(long, global = true, value_enum, default_value_t = output::ColorChoice::Auto, value_name = "WHEN", display_order = 900)]
    pub color: output::ColorChoice,
    /// Print only errors (and JSON on stdout)
    #[arg(short, long, global = true, conflicts_with = "verbose", display_order = 901)]
    pub quiet: bool,
    /// Also show the commands run (secrets redacted) and their output as it comes
    #[arg(short, long, global = true, display_order = 902)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build layers into dist/: pip in a build image, slim, zip, check limits
    #[command(visible_alias = "build")]
    Layer(cmd::layer::Args),
    /// Create a new layer folder under layers/
    New(cmd::new::Args),
    /// Resolve requirements.in (or pyproject.toml) into a pinned, hashed requirements.txt
    Lock(cmd::lock::Args),
    /// List every layer with its targets and whether dist/ is current
    List(cmd::list::Args),
    /// Publish layers that changed to a deploy profile (staging unless --profile names another)
    Publish(cmd::remote::publish::Args),
    /// Publish every layer that changed to a deploy profile
    PublishAll(cmd::remote::publish::AllArgs),
    /// Show, per unit and region, the newest published version and whether it is current
    Status(cmd::remote::status::Args),
    /// Create a deploy profile's bucket: public access blocked, default encryption
    Bootstrap(cmd::remote::bootstrap::Args),
    /// Check built layers: imports, ABI (arch, glibc, wheel tags), dependency closure
    Check(cmd::check::Args),
    /// The project's own benchmark against the article's pipeline (a development tool, not
    /// a user task: hidden from the command list; see docs/benchmarks in README)
    #[command(hide = true)]
    Bench(cmd::bench::Args),
    /// What a layer ships: each package's size, largest first, and a treemap SVG
    Size(cmd::size::Args),
    /// Check a stack (the layers one function attaches) and print its LayerVersionArns
    Stack(cmd::stack::Args),
    /// Why a package is in a layer: the requirements leading to it, per target, from the lock
    Why(cmd::why::Args),
    /// The functions attaching this repo's layers: attached and newest versions, matching stack
    Usage(cmd::remote::usage::Args),
    /// Move functions to the newest versions of this repo's layers (or a stack's), checked first
    Rollout(cmd::remote::rollout::Args),
    /// Delete old layer versions of a profile, keeping the N newest and every one a manifest names or a function attaches
    Prune(cmd::remote::prune::Args),
    /// The units whose fingerprint differs from a profile's manifest (a CI matrix with --json)
    Changed(cmd::changed::Args),
    /// Remove a deploy profile's publish lock left by a run that is gone (after confirmation)
    Unlock(cmd::remote::unlock::Args),
}

impl Command {
    /// Whether the command calls AWS, and so runs in the xtask-aws binary.
    pub fn needs_aws(&self) -> bool {
        match self {
            Command::Publish(_)
            | Command::PublishAll(_)
            | Command::Status(_)
            | Command::Bootstrap(_)
            | Command::Usage(_)
            | Command::Rollout(_)
            | Command::Prune(_)
            | Command::Unlock(_) => true,
            Command::Changed(a) => a.remote,
            _ => false,
        }
    }
}

/// Runs one invocation: parses the command line, sets up output and Ctrl-C, finds the
/// repo, runs the command. A command that [needs AWS](Command::needs_aws) goes to `aws`:
/// in the xtask binary it hands the invocation to the xtask-aws binary, which passes its
/// own runner.
/// Which binary runs `main`: its package and the folder it was compiled in (its
/// compile-time `CARGO_MANIFEST_DIR`), checked against the checkout cargo runs it for.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    pub package: &'static str,
    pub compiled_in: &'static str,
}

pub fn main(binary: Binary, aws: &dyn Fn(Repo, &Command) -> Result<bool>) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(e),
    };
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => output::Verbosity::Quiet,
        (_, true) => output::Verbosity::Verbose,
        _ => output::Verbosity::Normal,
    };
    crate::settings::init();
    output::init(cli.color, verbosity);
    if let Err(e) = crate::origin::ensure_compiled_here(binary.compiled_in, binary.package) {
        output::error(format_args!("{e:#}"));
        return ExitCode::FAILURE;
    }
    interrupt::install();
    let result = repo::Repo::find(cli.repo.as_deref()).and_then(|repo| match &cli.command {
        c if c.needs_aws() => aws(repo, c),
        Command::Layer(a) => cmd::layer::run(repo, a),
        Command::New(a) => cmd::new::run(repo, a),
        Command::Lock(a) => cmd::lock::run(repo, a),
        Command::List(a) => cmd::list::run(repo, a),
        Command::Bench(a) => cmd::bench::run(repo, a),
        Command::Check(a) => cmd::check::run(repo, a),
        Command::Size(a) => cmd::size::run(repo, a),
        Command::Stack(a) => cmd::stack::run(repo, a),
        Command::Why(a) => cmd::why::run(repo, a),
        Command::Changed(a) => cmd::changed::run(repo, a, None),
        c => aws(repo, c),
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            interrupt::wait_if_interrupted();
            output::error(format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// clap's report of a command line it cannot parse, except an unknown subcommand: one line
/// naming the closest subcommand, as cargo does (`publsh` -> `publish`).
fn parse_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::InvalidSubcommand {
        if let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand) {
            crate::settings::init();
            output::init(output::ColorChoice::Auto, output::Verbosity::Normal);
            output::error(unknown_subcommand(typed));
            return ExitCode::from(2);
        }
    }
    e.exit()
}

/// The error of an unknown subcommand, with the listed subcommand (or alias) closest to it.
fn unknown_subcommand(typed: &str) -> String {
    let cli = Cli::command();
    let names = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_visible_aliases()));
    let shown = crate::quote::clip(typed);
    match crate::suggest::closest(typed, names) {
        Some(close) => format!(
            "no such subcommand `{shown}`: a subcommand with a similar name exists: `{close}` (`cargo xtask --help` lists them all)"
        ),
        None => format!("no such subcommand `{shown}`: `cargo xtask --help` lists them all"),
    }
}
