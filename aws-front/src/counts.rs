//! The calls seen: by operation, region and fault, and the most open at once per region.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The calls that reached the front since it started or was last reset, faulted or not.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u64,
    /// By `service:Operation`.
    pub operations: BTreeMap<String, u64>,
    /// By the region of the signature.
    pub regions: BTreeMap<String, u64>,
    /// Per region, the most calls open at once (from request to the end of the answer).
    pub max_in_flight: BTreeMap<String, u64>,
    /// By fault kind (`throttle`, `lose`, `stall`, `conflict`, `fail`).
    pub faults: BTreeMap<String, u64>,
}

impl Counts {
    /// The calls of one operation (`lambda:ListLayerVersions`), 0 when none.
    pub fn op(&self, op: &str) -> u64 {
        self.operations.get(op).copied().unwrap_or(0)
    }

    /// The faults of one kind, 0 when none.
    pub fn fault(&self, kind: &str) -> u64 {
        self.faults.get(kind).copied().unwrap_or(0)
    }
}

/// [`Counts`] with the calls open now.
#[derive(Debug, Default)]
pub struct Counter {
    pub counts: Counts,
    open: BTreeMap<String, u64>,
}

impl Counter {
    /// A call starts.
    pub fn begin(&mut self, op: &str, region: &str) {
        let c = &mut self.counts;
        c.total += 1;
        *c.operations.entry(op.to_string()).or_default() += 1;
        *c.regions.entry(region.to_string()).or_default() += 1;
        let open = self.open.entry(region.to_string()).or_default();
        *open += 1;
        let max = c.max_in_flight.entry(region.to_string()).or_default();
        *max = (*max).max(*open);
    }

    /// A call started with [`Counter::begin`] ends (answered, lost or abandoned).
    pub fn end(&mut self, region: &str) {
        if let Some(open) = self.open.get_mut(region) {
            *open = open.saturating_sub(1);
        }
    }

    pub fn fault(&mut self, kind: &str) {
        *self.counts.faults.entry(kind.to_string()).or_default() += 1;
    }

    /// Counts to zero; calls open now stay open (they end later).
    pub fn reset(&mut self) {
        self.counts = Counts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_peaks_per_region() {
        let mut c = Counter::default();
        c.begin("s3:PutObject", "a");
        c.begin("s3:PutObject", "a");
        c.end("a");
        c.begin("s3:GetObject", "a");
        c.begin("s3:GetObject", "b");
        assert_eq!(c.counts.max_in_flight["a"], 2);
        assert_eq!(c.counts.max_in_flight["b"], 1);
        assert_eq!((c.counts.total, c.counts.op("s3:PutObject"), c.counts.regions["a"]), (4, 2, 3));
    }
}
