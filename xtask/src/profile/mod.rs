//! A deploy profile's side of the repo that needs no AWS: the Lambda layer names it gives
//! each unit ([`naming`]), the record of what was published to it ([`manifest`], and the
//! [`journal`] a run appends to before folding it in), and the rows comparing the two
//! ([`status`]), with what a publish would change in packages and size ([`changes`]). Reading and writing AWS itself is the xtask-aws crate's.

pub mod changes;
pub mod journal;
pub mod manifest;
pub mod naming;
pub mod status;
