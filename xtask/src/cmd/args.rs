//! The flags several subcommands share, declared once as clap groups and flattened into
//! each command (as cargo-lambda does): the deploy profile, the images, the output and
//! the unit filter. Values are parsed into their types here, so a bad `--runtime` or
//! `--arch` is clap's one-line error listing the valid values.

use crate::runtime::{Arch, Runtime};
use crate::unit::UnitFilter;

/// `--profile`: the deploy profile, staging unless named.
#[derive(clap::Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Deploy profile from layers.toml; no other profile than staging is ever used unless named here
    #[arg(long, default_value = "staging", value_name = "PROFILE")]
    pub profile: String,
}

/// `--image`: the build image of this run.
#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    /// Use this build image for this run instead of the configured one
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
}

/// `--image` and `--check-image`, for the commands that build and then check.
#[derive(clap::Args, Debug, Clone)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub build: ImageArgs,
    /// Import layers in this image instead of the configured `check_image`
    #[arg(long, value_name = "IMAGE")]
    pub check_image: Option<String>,
}

/// `--json`: machine output on stdout.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Print JSON on stdout, one object per line (human output stays on stderr)
    #[arg(long)]
    pub json: bool,
}

/// `--runtime` and `--arch`: only some units of the named layers.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Only the units of this runtime, e.g. python3.13
    #[arg(long, value_name = "RUNTIME", value_parser = Runtime::parse)]
    pub runtime: Option<Runtime>,
    /// Only the units of this architecture: x86_64 or arm64
    #[arg(long, value_name = "ARCH", value_parser = Arch::parse)]
    pub arch: Option<Arch>,
}

impl TargetArgs {
    pub fn filter(&self) -> UnitFilter {
        UnitFilter { runtime: self.runtime, arch: self.arch }
    }
}
