//! The subcommands: each file declares its flags (the shared ones are in `args.rs`), runs
//! the stages, which live in the modules at the crate root, and prints what they return
//! through `output.rs`. The commands that talk to AWS declare their flags in `remote.rs`
//! and run in the xtask-aws crate.

pub mod args;
pub mod bench;
pub mod bench_compile;
pub mod changed;
pub mod check;
pub mod layer;
pub mod list;
pub mod lock;
pub mod new;
pub mod remote;
pub mod size;
pub mod stack;
pub mod why;
