//! What the front remembers of the calls it relayed, for the behaviours that depend on
//! them: the layer versions published (list lag, storage) and the functions updated
//! (update in progress), and the rewriting of the answers those behaviours change.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A layer version published through the front.
#[derive(Debug, Clone)]
pub struct Published {
    pub arn: String,
    pub at: Instant,
    pub code_size: u64,
}

#[derive(Debug, Default)]
pub struct Memory {
    pub published: Vec<Published>,
    /// (region, function name) -> when its last update was relayed, and its ARN.
    pub updates: HashMap<(String, String), (Instant, String)>,
}

impl Memory {
    /// The ARNs of the versions published less than `lag` ago.
    pub fn hidden(&self, lag: Duration, now: Instant) -> HashSet<String> {
        self.published.iter().filter(|p| now.duration_since(p.at) < lag).map(|p| p.arn.clone()).collect()
    }
}

/// The ARN of a version from the layer's ARN or name, the region and the version number,
/// as DeleteLayerVersion names it (`arn:aws:lambda:REGION:ACCOUNT:layer:NAME:N`).
pub fn version_arn_matches(arn: &str, region: &str, layer: &str, version: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let name = layer.rsplit(':').next().unwrap_or(layer);
    matches!(parts.as_slice(), [_, _, _, r, _, "layer", n, v] if *r == region && *n == name && *v == version)
}

/// A ListLayerVersions answer without the hidden versions.
pub fn hide_versions(whole: &mut Value, hidden: &HashSet<String>) {
    if let Some(Value::Array(items)) = whole.get_mut("LayerVersions") {
        items.retain(|v| v["LayerVersionArn"].as_str().is_none_or(|a| !hidden.contains(a)));
    }
}

/// Whether a ListLayers item shows a hidden version (moto's `{}` shows none).
pub fn shows_hidden(layer: &Value, hidden: &HashSet<String>) -> bool {
    layer["LatestMatchingVersion"]["LayerVersionArn"].as_str().is_some_and(|a| hidden.contains(a))
}

/// The newest version of a ListLayerVersions answer that is not hidden.
pub fn newest_visible(versions: &Value, hidden: &HashSet<String>) -> Option<Value> {
    versions["LayerVersions"]
        .as_array()?
        .iter()
        .filter(|v| v["LayerVersionArn"].as_str().is_some_and(|a| !hidden.contains(a)))
        .max_by_key(|v| v["Version"].as_i64().unwrap_or(0))
        .cloned()
}

/// A function's configuration while an update is in progress.
pub fn mark_in_progress(config: &mut Value) {
    if let Value::Object(map) = config {
        map.insert("LastUpdateStatus".into(), "InProgress".into());
        map.insert("State".into(), "Pending".into());
    }
}

/// The function name of a path segment: a name, or a function ARN (qualifier dropped).
pub fn function_name(segment: &str) -> String {
    let parts: Vec<&str> = segment.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name.to_string(),
        [_account, "function", name, ..] => name.to_string(),
        _ => segment.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A1: &str = "arn:aws:lambda:us-east-1:123456789012:layer:a:1";
    const A2: &str = "arn:aws:lambda:us-east-1:123456789012:layer:a:2";

    #[test]
    fn lagged_versions_are_hidden_until_the_lag_passes() {
        let t0 = Instant::now();
        let mut m = Memory::default();
        m.published.push(Published { arn: A2.into(), at: t0, code_size: 1 });
        assert!(m.hidden(Duration::from_secs(5), t0 + Duration::from_secs(4)).contains(A2));
        assert!(m.hidden(Duration::from_secs(5), t0 + Duration::from_secs(5)).is_empty());
        let hidden = m.hidden(Duration::from_secs(5), t0);
        let versions =
            json!({"LayerVersions": [{"LayerVersionArn": A2, "Version": 2}, {"LayerVersionArn": A1, "Version": 1}]});
        assert_eq!(newest_visible(&versions, &hidden).unwrap()["Version"], 1);
        let mut listed = versions.clone();
        hide_versions(&mut listed, &hidden);
        assert_eq!(listed, json!({"LayerVersions": [{"LayerVersionArn": A1, "Version": 1}]}));
        assert!(shows_hidden(&json!({"LatestMatchingVersion": {"LayerVersionArn": A2}}), &hidden));
        assert!(!shows_hidden(&json!({}), &hidden));
    }

    #[test]
    fn names_and_arns() {
        assert!(version_arn_matches(A2, "us-east-1", "a", "2"));
        assert!(version_arn_matches(A2, "us-east-1", "arn:aws:lambda:us-east-1:123456789012:layer:a", "2"));
        assert!(!version_arn_matches(A2, "eu-west-1", "a", "2"));
        assert_eq!(function_name("arn:aws:lambda:us-east-1:1:function:f:3"), "f");
        assert_eq!(function_name("f"), "f");
    }
}
