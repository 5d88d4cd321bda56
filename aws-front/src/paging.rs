//! Pages of a list with real markers: the front fetches the whole list from the emulator
//! and answers one page of it. Items are ordered by a key (a layer or function name, a
//! version newest first, an S3 key); a marker names the last key answered and how many
//! items of that key were, so a page resumes right after it even when items were added or
//! deleted in between. Lambda's lists (`MaxItems`, `Marker`, `NextMarker`) and S3
//! ListObjectsV2 (`max-keys`, `continuation-token`, `NextContinuationToken`, `IsTruncated`,
//! `KeyCount`) keep the shape of AWS's answers.

use serde_json::Value;

/// Where the next page starts: after the `n`-th item whose key is `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub key: String,
    pub n: usize,
}

const PREFIX: &str = "front1.";

impl Marker {
    /// The opaque text handed to the client.
    pub fn encode(&self) -> String {
        let hex: String = self.key.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}.{}", self.n)
    }

    /// A marker this front handed out (None: not one of them).
    pub fn decode(text: &str) -> Option<Marker> {
        let (hex, n) = text.strip_prefix(PREFIX)?.rsplit_once('.')?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
        Some(Marker { key: String::from_utf8(bytes?).ok()?, n: n.parse().ok()? })
    }
}

/// One page of `items` (sorted here by key, stably): at most `max` from `marker` on, and
/// the marker of the next page when more remain.
pub fn page<T>(mut items: Vec<(String, T)>, marker: Option<&Marker>, max: usize) -> (Vec<T>, Option<Marker>) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match marker {
        None => 0,
        Some(m) => {
            let before = items.iter().take_while(|(k, _)| *k < m.key).count();
            let same = items[before..].iter().take_while(|(k, _)| *k == m.key).count();
            before + m.n.min(same)
        }
    };
    let end = (start + max.max(1)).min(items.len());
    let next = (end < items.len()).then(|| {
        let key = items[end - 1].0.clone();
        let n = items[..end].iter().filter(|(k, _)| *k == key).count();
        Marker { key, n }
    });
    (items.into_iter().skip(start).take(end - start).map(|(_, t)| t).collect(), next)
}

/// Which Lambda list an answer is: the array's name and its items' order key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaList {
    Layers,
    LayerVersions,
    Functions,
}

impl LambdaList {
    pub fn field(self) -> &'static str {
        match self {
            LambdaList::Layers => "Layers",
            LambdaList::LayerVersions => "LayerVersions",
            LambdaList::Functions => "Functions",
        }
    }

    /// Layers and functions by name; versions newest first, as AWS answers them. An item
    /// without its name (moto's `{}` for a layer whose versions were all deleted) keys "".
    fn key(self, item: &Value) -> String {
        match self {
            LambdaList::Layers => item["LayerName"].as_str().unwrap_or("").to_string(),
            LambdaList::Functions => item["FunctionName"].as_str().unwrap_or("").to_string(),
            LambdaList::LayerVersions => format!("{:020}", i64::MAX - item["Version"].as_i64().unwrap_or(0)),
        }
    }
}

/// A Lambda list answer (the whole list) cut to one page: `{"Layers": [...], "NextMarker":
/// "..."}` with `NextMarker` only when more remain; its other fields kept.
pub fn lambda_page(list: LambdaList, mut whole: Value, marker: Option<&Marker>, max: usize) -> Value {
    let items = match whole.get_mut(list.field()).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let keyed = items.into_iter().map(|i| (list.key(&i), i)).collect();
    let (items, next) = page(keyed, marker, max);
    if let Value::Object(map) = &mut whole {
        map.insert(list.field().into(), Value::Array(items));
        map.remove("NextMarker");
        if let Some(next) = next {
            map.insert("NextMarker".into(), Value::String(next.encode()));
        }
    }
    whole
}

/// The `<tag>...</tag>` blocks of an XML text and the text without them.
fn take_blocks(xml: &str, tag: &str) -> (Vec<String>, String) {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut blocks = Vec::new();
    let mut rest = String::with_capacity(xml.len());
    let mut s = xml;
    while let Some(i) = s.find(&open) {
        let Some(j) = s[i..].find(&close) else { break };
        rest.push_str(&s[..i]);
        blocks.push(s[i..i + j + close.len()].to_string());
        s = &s[i + j + close.len()..];
    }
    rest.push_str(s);
    (blocks, rest)
}

/// The text of the first `<tag>` of an XML text.
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let i = xml.find(&open)? + open.len();
    let j = xml[i..].find(&format!("</{tag}>"))?;
    Some(&xml[i..i + j])
}

/// Every `<Contents>` and `<CommonPrefixes>` of S3 ListObjectsV2 answers (the emulator's
/// pages of one listing), and the first answer without them and without its paging
/// elements, to [`s3_page`] from.
pub struct S3Listing {
    skeleton: String,
    contents: Vec<String>,
    prefixes: Vec<String>,
}

impl S3Listing {
    pub fn new(first: &str) -> S3Listing {
        let mut l = S3Listing { skeleton: String::new(), contents: Vec::new(), prefixes: Vec::new() };
        let mut rest = l.absorb(first);
        for tag in ["IsTruncated", "KeyCount", "MaxKeys", "NextContinuationToken", "ContinuationToken"] {
            let (_, without) = take_blocks(&rest, tag);
            rest = without;
        }
        l.skeleton = rest;
        l
    }

    /// Takes the items of a further page of the emulator's; the rest of it is returned.
    pub fn absorb(&mut self, xml: &str) -> String {
        let (contents, rest) = take_blocks(xml, "Contents");
        let (prefixes, rest) = take_blocks(&rest, "CommonPrefixes");
        self.contents.extend(contents);
        self.prefixes.extend(prefixes);
        rest
    }

    /// One page in S3's shape, keys and common prefixes together in key order.
    pub fn page(self, marker: Option<&Marker>, token: Option<&str>, max: usize) -> String {
        let contents = self.contents.into_iter().map(|b| (xml_text(&b, "Key").unwrap_or("").to_string(), b));
        let prefixes = self.prefixes.into_iter().map(|b| (xml_text(&b, "Prefix").unwrap_or("").to_string(), b));
        let (items, next) = page(contents.chain(prefixes).collect(), marker, max);
        let mut paging = format!(
            "<IsTruncated>{}</IsTruncated><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys>",
            next.is_some(),
            items.len()
        );
        if let Some(t) = token {
            paging.push_str(&format!("<ContinuationToken>{t}</ContinuationToken>"));
        }
        if let Some(n) = &next {
            paging.push_str(&format!("<NextContinuationToken>{}</NextContinuationToken>", n.encode()));
        }
        let body: String = items.concat();
        match self.skeleton.rfind("</ListBucketResult>") {
            Some(i) => format!("{}{paging}{body}{}", &self.skeleton[..i], &self.skeleton[i..]),
            None => self.skeleton,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_visit_every_item_once_across_deletions() {
        let items = |names: &[&str]| names.iter().map(|n| (n.to_string(), n.to_string())).collect::<Vec<_>>();
        let (p1, m) = page(items(&["c", "a", "b", "d", "e"]), None, 2);
        assert_eq!(p1, ["a", "b"]);
        let m = Marker::decode(&m.unwrap().encode()).unwrap();
        // "b" deleted and "bb" added before the next page: it resumes after "b" all the same.
        let (p2, m) = page(items(&["a", "bb", "c", "d", "e"]), Some(&m), 2);
        assert_eq!(p2, ["bb", "c"]);
        let (p3, m) = page(items(&["a", "bb", "c", "d", "e"]), m.as_ref(), 2);
        assert_eq!((p3, m), (vec!["d".to_string(), "e".to_string()], None));
    }

    #[test]
    fn equal_keys_are_counted_not_skipped() {
        let items = vec![("".to_string(), 1), ("".into(), 2), ("".into(), 3), ("a".into(), 4)];
        let (p1, m) = page(items.clone(), None, 2);
        let (p2, m2) = page(items, m.as_ref(), 2);
        assert_eq!((p1, p2, m2), (vec![1, 2], vec![3, 4], None));
    }

    #[test]
    fn markers_are_opaque_and_checked() {
        let m = Marker { key: "x/ y".into(), n: 2 };
        assert_eq!(Marker::decode(&m.encode()), Some(m));
        assert_eq!(Marker::decode("7"), None);
        assert_eq!(Marker::decode("front1.zz.1"), None);
    }

    #[test]
    fn layer_versions_newest_first_with_next_marker() {
        let whole = json!({"LayerVersions": [{"Version": 1}, {"Version": 3}, {"Version": 2}], "NextMarker": null});
        let p1 = lambda_page(LambdaList::LayerVersions, whole.clone(), None, 2);
        assert_eq!(p1["LayerVersions"], json!([{"Version": 3}, {"Version": 2}]));
        let m = Marker::decode(p1["NextMarker"].as_str().unwrap()).unwrap();
        let p2 = lambda_page(LambdaList::LayerVersions, whole, Some(&m), 2);
        assert_eq!(p2, json!({"LayerVersions": [{"Version": 1}]}));
    }

    #[test]
    fn s3_page_keeps_the_shape() {
        let xml = "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><Prefix>p/</Prefix><MaxKeys>1000</MaxKeys>\
                   <KeyCount>3</KeyCount><IsTruncated>false</IsTruncated>\
                   <Contents><Key>p/c</Key></Contents><Contents><Key>p/a</Key></Contents><Contents><Key>p/b</Key></Contents>\
                   </ListBucketResult>";
        let p1 = S3Listing::new(xml).page(None, None, 2);
        assert_eq!(
            p1,
            "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><Prefix>p/</Prefix><IsTruncated>true</IsTruncated>\
             <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><NextContinuationToken>front1.702f62.1</NextContinuationToken>\
             <Contents><Key>p/a</Key></Contents><Contents><Key>p/b</Key></Contents></ListBucketResult>"
        );
        let token = xml_text(&p1, "NextContinuationToken").unwrap();
        let p2 = S3Listing::new(xml).page(Marker::decode(token).as_ref(), Some(token), 2);
        assert!(p2.contains("<IsTruncated>false</IsTruncated><KeyCount>1</KeyCount>"), "{p2}");
        assert!(p2.contains("<ContinuationToken>front1.702f62.1</ContinuationToken><Contents><Key>p/c</Key>"), "{p2}");
        assert!(!p2.contains("NextContinuationToken"), "{p2}");
    }
}
