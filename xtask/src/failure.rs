//! An error kept to be reported more than once (a docker connection every unit asks for,
//! a bucket check every upload of a region waits on, a failed detection shown on several
//! rows), with its cause chain intact: `anyhow::Error` is not `Clone`, and flattening it
//! into a `String` would lose the chain.

use std::fmt;
use std::sync::Arc;

/// A failure shared by several consumers; `anyhow::Error::from` it to report it again.
#[derive(Debug, Clone)]
pub struct Failure(Arc<anyhow::Error>);

impl Failure {
    pub fn new(e: anyhow::Error) -> Failure {
        Failure(Arc::new(e))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let inner: &(dyn std::error::Error + Send + Sync + 'static) = &**self.0;
        inner.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_shared_failure_keeps_its_whole_chain() {
        let e = Err::<(), _>(std::io::Error::other("connection refused")).context("cannot reach docker").unwrap_err();
        let shared = Failure::new(e);
        let again = anyhow::Error::from(shared.clone());
        assert_eq!(format!("{again:#}"), "cannot reach docker: connection refused");
        assert_eq!(format!("{:#}", anyhow::Error::from(shared)), "cannot reach docker: connection refused");
    }
}
