//! The flags of the commands that talk to AWS. They are declared here, in the crate without
//! the AWS SDK, so `cargo xtask --help` and argument errors need no SDK; the commands run
//! in the `xtask-aws` binary (xtask-aws/src/cmd/), which `cargo xtask` hands them to.

/// `cargo xtask publish` and `cargo xtask publish-all`.
pub mod publish {
    use crate::cmd::args::{ImagesArgs, OutputArgs, ProfileArgs, TargetArgs};

    /// The flags `publish` and `publish-all` share.
    #[derive(clap::Args, Debug)]
    pub struct Opts {
        #[command(flatten)]
        pub profile: ProfileArgs,
        /// Detect changes and build, but upload, publish and record nothing; print the plan
        #[arg(long)]
        pub dry_run: bool,
        /// Confirm writing to a profile marked `confirm = true` (such as production)
        #[arg(long)]
        pub yes: bool,
        /// How many units are uploaded and published at once
        #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        pub jobs: u16,
        /// How many units are built and checked at once [default: the number of cores]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        pub build_jobs: Option<u16>,
        #[command(flatten)]
        pub images: ImagesArgs,
        /// Publish without running `cargo xtask check` first
        #[arg(long)]
        pub no_check: bool,
        /// Publish units whose import check could not run (no docker, no emulation, no host Python)
        #[arg(long)]
        pub allow_unverified: bool,
        #[command(flatten)]
        pub output: OutputArgs,
        #[command(flatten)]
        pub target: TargetArgs,
        /// How long to wait, in seconds, while another run holds the profile's publish lock
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        pub lock_timeout: u64,
    }

    #[derive(clap::Args, Debug)]
    pub struct Args {
        /// Layers to publish (folders under layers/)
        #[arg(required = true)]
        pub names: Vec<String>,
        #[command(flatten)]
        pub opts: Opts,
    }

    #[derive(clap::Args, Debug)]
    pub struct AllArgs {
        #[command(flatten)]
        pub opts: Opts,
    }
}

/// `cargo xtask status`.
pub mod status {
    use crate::cmd::args::{OutputArgs, ProfileArgs};

    #[derive(clap::Args, Debug)]
    pub struct Args {
        /// Layers to show (default: every layer)
        pub names: Vec<String>,
        #[command(flatten)]
        pub profile: ProfileArgs,
        #[command(flatten)]
        pub output: OutputArgs,
    }
}

/// `cargo xtask bootstrap`.
pub mod bootstrap {
    use crate::cmd::args::{OutputArgs, ProfileArgs};

    #[derive(clap::Args, Debug)]
    pub struct Args {
        #[command(flatten)]
        pub profile: ProfileArgs,
        /// Confirm writing to a profile marked `confirm = true` (such as production)
        #[arg(long)]
        pub yes: bool,
        #[command(flatten)]
        pub output: OutputArgs,
    }
}

/// `cargo xtask usage`.
pub mod usage {
    use crate::cmd::args::{OutputArgs, ProfileArgs};

    #[derive(clap::Args, Debug)]
    pub struct Args {
        /// Only functions attaching one of these layers (default: any layer of the repo)
        pub names: Vec<String>,
        #[command(flatten)]
        pub profile: ProfileArgs,
        #[command(flatten)]
        pub output: OutputArgs,
    }
}

/// `cargo xtask rollout`.
pub mod rollout {
    use crate::cmd::args::{OutputArgs, ProfileArgs};

    #[derive(clap::Args, Debug)]
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["stack", "function", "all_outdated", "undo"])))]
    pub struct Args {
        /// Move the functions whose repo layers are this stack's (or the --function ones) to exactly its ARNs in published/PROFILE.json
        #[arg(long, value_name = "NAME")]
        pub stack: Option<String>,
        /// Move these functions (name or ARN) to the newest versions of the repo layers they attach (with --undo: restore only these)
        #[arg(long, value_name = "F", num_args = 1..)]
        pub function: Vec<String>,
        /// Move every function attaching an older version than the newest
        #[arg(long, conflicts_with_all = ["stack", "function"])]
        pub all_outdated: bool,
        /// Restore the layer lists the last rollout of the profile replaced (with --function: only those functions of it); a function changed since is skipped
        #[arg(long, conflicts_with_all = ["stack", "all_outdated"])]
        pub undo: bool,
        #[command(flatten)]
        pub profile: ProfileArgs,
        /// Print the plan and its checks, and change nothing
        #[arg(long)]
        pub dry_run: bool,
        /// Confirm changing functions in a profile marked `confirm = true` (such as production)
        #[arg(long)]
        pub yes: bool,
        /// How long to wait, in seconds, while another run holds the profile's publish lock
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        pub lock_timeout: u64,
        #[command(flatten)]
        pub output: OutputArgs,
    }
}

/// `cargo xtask prune`.
pub mod prune {
    use crate::cmd::args::{OutputArgs, ProfileArgs};

    #[derive(clap::Args, Debug)]
    pub struct Args {
        #[command(flatten)]
        pub profile: ProfileArgs,
        /// How many of the newest versions of each layer to keep (versions a manifest in published/ names or a function attaches are always kept)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        pub keep: u32,
        /// List what would be deleted, and delete nothing
        #[arg(long)]
        pub dry_run: bool,
        /// Confirm deleting from a profile marked `confirm = true` (such as production)
        #[arg(long)]
        pub yes: bool,
        /// How long to wait, in seconds, while another run holds the profile's publish lock
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        pub lock_timeout: u64,
        #[command(flatten)]
        pub output: OutputArgs,
    }
}

/// `cargo xtask unlock`.
pub mod unlock {

    #[derive(clap::Args, Debug)]
    pub struct Args {
        /// Deploy profile whose publish lock is removed (named explicitly: there is no default)
        #[arg(long, value_name = "PROFILE")]
        pub profile: String,
        /// Only this region's lock (default: every region of the profile)
        #[arg(long, value_name = "REGION")]
        pub region: Option<String>,
        /// Remove without asking (a terminal otherwise asks you to type `unlock`)
        #[arg(long)]
        pub yes: bool,
    }
}
