//! What a profile holds compared with the repo, per unit and region: the rows `status`
//! prints and `changed --remote` reads. The lookup itself needs AWS and lives in the
//! xtask-aws crate (publish/status.rs).

use serde::Serialize;

/// A unit in a region compared with what the profile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compared {
    /// The newest version carries the local fingerprint.
    Unchanged,
    /// The newest version carries another fingerprint.
    Changed,
    /// No version yet.
    New,
    /// The lookup (or the plan) failed; the row's `error` says why.
    Failed,
}

impl Compared {
    pub fn as_str(&self) -> &'static str {
        match self {
            Compared::Unchanged => "unchanged",
            Compared::Changed => "changed",
            Compared::New => "new",
            Compared::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Compared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    pub layer: String,
    /// None for a layer that could not be planned into units.
    pub runtime: Option<crate::runtime::Runtime>,
    pub arch: Option<crate::runtime::Arch>,
    pub region: Option<String>,
    pub layer_name: Option<String>,
    pub fingerprint: Option<String>,
    pub status: Compared,
    pub version: Option<i64>,
    pub arn: Option<String>,
    pub error: Option<String>,
    /// For a `changed` row: what publishing would change against the newest version, from
    /// its SBOM (absent when that version has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::profile::changes::Changes>,
}
