//! The HTTP server: each request identified and counted, a rule's fault applied, the
//! control endpoints (`/__front/...`) answered, everything else relayed to the emulator
//! and the answers the behaviours change rewritten (pages, lag, update in progress,
//! storage).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

use crate::answer::{self, Answer, Protocol};
use crate::counts::Counter;
use crate::faults::{Fault, Faults, Rules};
use crate::lag::{self, Memory, Published};
use crate::operation::{self, percent_encode, query_param, Call};
use crate::paging::{self, LambdaList, Marker, S3Listing};

/// Everything the front knows, behind one lock never held across an await.
#[derive(Default)]
pub struct State {
    pub faults: Faults,
    pub rules: Rules,
    pub counter: Counter,
    pub memory: Memory,
    /// `AccountUsage.TotalCodeSize` now, when `faults.storage` is set.
    pub storage_used: u64,
}

impl State {
    pub fn set(&mut self, faults: Faults) {
        self.rules = Rules::new(&faults.rules);
        self.storage_used = faults.storage.map_or(0, |s| s.used_bytes);
        self.faults = faults;
    }
}

pub type Shared = Arc<Mutex<State>>;

pub fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The emulator, reached through a pooled HTTP/1 client.
#[derive(Clone)]
pub struct Upstream {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// An answer of the emulator, its body whole.
struct Relayed {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The answer is lost: the service fails and hyper closes the connection unanswered.
#[derive(Debug)]
pub struct Lost;

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("aws-front: answer lost on purpose")
    }
}

impl std::error::Error for Lost {}

/// Serves `listener` until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    upstream: String,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let upstream = Upstream { base: upstream, client: Client::builder(TokioExecutor::new()).build_http() };
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let (state, upstream) = (state.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), upstream.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Ends the call in the counts however the answer ends (sent, lost, abandoned).
struct Open(Shared, String);

impl Drop for Open {
    fn drop(&mut self) {
        lock(&self.0).counter.end(&self.1);
    }
}

async fn handle(state: Shared, up: Upstream, req: Request<Incoming>) -> Result<Answer, Lost> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Lost),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    if let Some(what) = path.strip_prefix("/__front/") {
        return Ok(control(&state, &parts.method, what, &body));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let call = operation::identify(
        parts.method.as_str(),
        &path,
        &query,
        header("authorization"),
        header("x-amz-target"),
        parts.headers.contains_key("x-amz-copy-source"),
        &body,
    );
    let protocol = Protocol::of(&call.service, parts.headers.contains_key("x-amz-target"));
    let head = parts.method == Method::HEAD;
    let op = call.op();
    let fault = {
        let mut s = lock(&state);
        s.counter.begin(&op, &call.region);
        let fault = s.rules.hit(&op, &call.region);
        if let Some(f) = &fault {
            s.counter.fault(f.kind());
        }
        fault
    };
    let _open = Open(state.clone(), call.region.clone());
    match fault {
        Some(Fault::Throttle) => return Ok(answer::throttle(protocol, head)),
        Some(Fault::Conflict) => {
            let message = "The operation cannot be performed at this time. (aws-front: injected conflict)";
            return Ok(answer::conflict(protocol, message, head));
        }
        Some(Fault::Fail { status }) => return Ok(answer::fail(protocol, status, head)),
        _ => {}
    }
    let exchange = Exchange { state: &state, up: &up, call: &call, parts: &parts, path: &path, query: &query };
    let answer = match exchange.relay(body).await {
        Ok(a) => a,
        Err(e) => answer::plain(
            StatusCode::BAD_GATEWAY,
            "text/plain",
            format!("aws-front: the emulator at {} did not answer {op}: {e}", up.base),
        ),
    };
    match fault {
        Some(Fault::Lose) => Err(Lost),
        Some(Fault::Stall { seconds }) => {
            tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
            Ok(answer)
        }
        _ => Ok(answer),
    }
}

/// `GET counts`, `POST faults`, `POST reset`.
fn control(state: &Shared, method: &Method, what: &str, body: &[u8]) -> Answer {
    let json = "application/json";
    match (method.as_str(), what) {
        ("GET", "counts") => {
            let counts = lock(state).counter.counts.clone();
            answer::plain(StatusCode::OK, json, serde_json::to_string(&counts).expect("counts serialise"))
        }
        ("POST", "faults") => match serde_json::from_slice::<Faults>(body) {
            Ok(f) => {
                lock(state).set(f);
                answer::plain(StatusCode::OK, json, "{}")
            }
            Err(e) => answer::plain(StatusCode::BAD_REQUEST, "text/plain", format!("aws-front: bad faults JSON: {e}")),
        },
        ("POST", "reset") => {
            let mut s = lock(state);
            s.counter.reset();
            s.set(Faults::default());
            answer::plain(StatusCode::OK, json, "{}")
        }
        _ => answer::plain(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("aws-front: no control endpoint {method} /__front/{what} (GET counts, POST faults, POST reset)"),
        ),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One call being relayed.
struct Exchange<'a> {
    state: &'a Shared,
    up: &'a Upstream,
    call: &'a Call,
    parts: &'a hyper::http::request::Parts,
    path: &'a str,
    query: &'a str,
}

/// Query parameters as written, without the named ones.
fn query_without(query: &str, drop: &[&str]) -> String {
    query
        .split('&')
        .filter(|kv| !kv.is_empty() && !drop.contains(&kv.split('=').next().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("&")
}

fn with_param(query: &str, name: &str, value: &str) -> String {
    let extra = format!("{name}={}", percent_encode(value));
    if query.is_empty() {
        extra
    } else {
        format!("{query}&{extra}")
    }
}

impl Exchange<'_> {
    fn faults(&self) -> Faults {
        lock(self.state).faults.clone()
    }

    /// Sends a request like the client's, with this method, path, query and body.
    async fn send(&self, method: &Method, path: &str, query: &str, body: Bytes) -> Result<Relayed, BoxError> {
        let uri = if query.is_empty() {
            format!("{}{path}", self.up.base)
        } else {
            format!("{}{path}?{query}", self.up.base)
        };
        let mut req = Request::builder().method(method.clone()).uri(uri);
        for (name, value) in &self.parts.headers {
            let n = name.as_str();
            if !matches!(n, "connection" | "keep-alive" | "transfer-encoding" | "expect" | "content-length") {
                req = req.header(name, value);
            }
        }
        let has_body = !body.is_empty() || matches!(*method, Method::POST | Method::PUT);
        if has_body {
            req = req.header("content-length", body.len());
        }
        let res = self.up.client.request(req.body(Full::new(body))?).await?;
        let (parts, body) = res.into_parts();
        Ok(Relayed { status: parts.status, headers: parts.headers, body: body.collect().await?.to_bytes() })
    }

    async fn forward(&self, body: Bytes) -> Result<Relayed, BoxError> {
        self.send(&self.parts.method, self.path, self.query, body).await
    }

    async fn relay(&self, body: Bytes) -> Result<Answer, BoxError> {
        let name = self.call.name.as_str();
        let f = self.faults();
        let now = Instant::now();
        let lagging = f.list_lag_seconds > 0.0;
        match (self.call.service.as_str(), name) {
            ("lambda", "ListLayerVersions") if f.page_size.is_some() || lagging => {
                return self.lambda_list(LambdaList::LayerVersions, &f).await
            }
            ("lambda", "ListLayers") if f.page_size.is_some() || lagging => {
                return self.lambda_list(LambdaList::Layers, &f).await
            }
            ("lambda", "ListFunctions") if f.page_size.is_some() => {
                return self.lambda_list(LambdaList::Functions, &f).await
            }
            ("s3", "ListObjectsV2") if f.page_size.is_some() => return self.s3_list(&f).await,
            ("lambda", "GetAccountSettings") if f.storage.is_some() => return Ok(self.account_settings(&f)),
            ("lambda", "UpdateFunctionConfiguration" | "UpdateFunctionCode") if f.update_seconds > 0.0 => {
                let key = self.function_key();
                let s = lock(self.state);
                if let Some((at, arn)) = s.memory.updates.get(&key) {
                    if now.duration_since(*at) < Duration::from_secs_f64(f.update_seconds) {
                        let m = format!(
                            "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
                        );
                        return Ok(answer::conflict(Protocol::RestJson, &m, false));
                    }
                }
            }
            _ => {}
        }
        let r = self.forward(body).await?;
        if !r.status.is_success() {
            return Ok(relayed(r, None));
        }
        match name {
            "PublishLayerVersion" if self.call.service == "lambda" => {
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                if let Some(arn) = v["LayerVersionArn"].as_str() {
                    let code_size = v["Content"]["CodeSize"].as_u64().unwrap_or(0);
                    let mut s = lock(self.state);
                    s.memory.published.push(Published { arn: arn.to_string(), at: now, code_size });
                    if s.faults.storage.is_some() {
                        s.storage_used += code_size;
                    }
                }
                Ok(relayed(r, None))
            }
            "DeleteLayerVersion" if self.call.service == "lambda" => {
                let segs: Vec<&str> = self.path.trim_matches('/').split('/').collect();
                let (layer, version) = (operation::percent_decode(segs[2]), segs[4]);
                let mut s = lock(self.state);
                let region = &self.call.region;
                if let Some(i) =
                    s.memory.published.iter().position(|p| lag::version_arn_matches(&p.arn, region, &layer, version))
                {
                    let p = s.memory.published.remove(i);
                    if s.faults.storage.is_some() {
                        s.storage_used = s.storage_used.saturating_sub(p.code_size);
                    }
                }
                Ok(relayed(r, None))
            }
            "UpdateFunctionConfiguration" | "UpdateFunctionCode" if self.call.service == "lambda" => {
                let mut v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let arn = v["FunctionArn"].as_str().unwrap_or("").to_string();
                lock(self.state).memory.updates.insert(self.function_key(), (now, arn));
                if f.update_seconds > 0.0 {
                    lag::mark_in_progress(&mut v);
                    return Ok(relayed(r, Some(json_bytes(&v))));
                }
                Ok(relayed(r, None))
            }
            "GetFunctionConfiguration" | "GetFunction" if self.call.service == "lambda" && f.update_seconds > 0.0 => {
                let window = Duration::from_secs_f64(f.update_seconds);
                let key = self.function_key();
                let updating =
                    lock(self.state).memory.updates.get(&key).is_some_and(|(at, _)| now.duration_since(*at) < window);
                if !updating {
                    return Ok(relayed(r, None));
                }
                let mut v: Value = serde_json::from_slice(&r.body)?;
                if name == "GetFunction" {
                    lag::mark_in_progress(&mut v["Configuration"]);
                } else {
                    lag::mark_in_progress(&mut v);
                }
                Ok(relayed(r, Some(json_bytes(&v))))
            }
            _ => Ok(relayed(r, None)),
        }
    }

    /// (region, function name) of a `/2015-03-31/functions/{f}...` path.
    fn function_key(&self) -> (String, String) {
        let seg = self.path.trim_matches('/').split('/').nth(2).unwrap_or("");
        (self.call.region.clone(), lag::function_name(&operation::percent_decode(seg)))
    }

    fn account_settings(&self, f: &Faults) -> Answer {
        let limit = f.storage.map_or(0, |s| s.limit_bytes);
        let used = lock(self.state).storage_used;
        let v = serde_json::json!({
            "AccountLimit": {"TotalCodeSize": limit, "CodeSizeUnzipped": 262_144_000u64, "CodeSizeZipped": 52_428_800u64,
                             "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000},
            "AccountUsage": {"TotalCodeSize": used, "FunctionCount": 0}
        });
        answer::plain(StatusCode::OK, "application/json", json_bytes(&v))
    }

    /// A Lambda list: the whole of it from the emulator (following its own markers), lagged
    /// versions hidden, then one page when pages are on.
    async fn lambda_list(&self, list: LambdaList, f: &Faults) -> Result<Answer, BoxError> {
        let marker = match query_param(self.query, "Marker") {
            None => None,
            Some(m) if f.page_size.is_none() => {
                // Lag alone: the emulator's own marker goes through.
                let _ = m;
                None
            }
            Some(m) => match Marker::decode(&m) {
                Some(m) => Some(m),
                None => {
                    let msg = format!("aws-front: the Marker {m:?} is not one this front handed out");
                    return Ok(answer::error(Protocol::RestJson, 400, "InvalidParameterValueException", &msg, false));
                }
            },
        };
        let (first, mut whole) = if f.page_size.is_some() {
            let base = query_without(self.query, &["MaxItems", "Marker"]);
            let first = self.send(&Method::GET, self.path, &base, Bytes::new()).await?;
            if !first.status.is_success() {
                return Ok(relayed(first, None));
            }
            let mut whole: Value = serde_json::from_slice(&first.body)?;
            let mut next = whole["NextMarker"].as_str().map(str::to_string);
            for _ in 0..1000 {
                let Some(m) = next.take() else { break };
                let more = self.send(&Method::GET, self.path, &with_param(&base, "Marker", &m), Bytes::new()).await?;
                let more: Value = serde_json::from_slice(&more.body)?;
                if let (Some(Value::Array(all)), Some(items)) =
                    (whole.get_mut(list.field()), more[list.field()].as_array())
                {
                    all.extend(items.iter().cloned());
                }
                next = more["NextMarker"].as_str().map(str::to_string);
            }
            (first, whole)
        } else {
            let first = self.forward(Bytes::new()).await?;
            if !first.status.is_success() {
                return Ok(relayed(first, None));
            }
            let whole = serde_json::from_slice(&first.body)?;
            (first, whole)
        };
        let hidden =
            lock(self.state).memory.hidden(Duration::from_secs_f64(f.list_lag_seconds.max(0.0)), Instant::now());
        if !hidden.is_empty() {
            match list {
                LambdaList::LayerVersions => lag::hide_versions(&mut whole, &hidden),
                LambdaList::Layers => self.lag_layers(&mut whole, &hidden).await?,
                LambdaList::Functions => {}
            }
        }
        if let Some(size) = f.page_size {
            let default = if list == LambdaList::Functions { 50 } else { 50 };
            let asked = query_param(self.query, "MaxItems").and_then(|m| m.parse::<usize>().ok()).unwrap_or(default);
            whole = paging::lambda_page(list, whole, marker.as_ref(), size.min(asked));
        }
        Ok(relayed(first, Some(json_bytes(&whole))))
    }

    /// ListLayers: a layer whose newest version is hidden shows the newest visible one, or
    /// is left out when none is.
    async fn lag_layers(&self, whole: &mut Value, hidden: &std::collections::HashSet<String>) -> Result<(), BoxError> {
        let Some(Value::Array(layers)) = whole.get_mut("Layers") else { return Ok(()) };
        let filters = query_without(self.query, &["MaxItems", "Marker"]);
        let mut kept = Vec::with_capacity(layers.len());
        for mut layer in std::mem::take(layers) {
            if !lag::shows_hidden(&layer, hidden) {
                kept.push(layer);
                continue;
            }
            let name = layer["LayerName"].as_str().unwrap_or("").to_string();
            let path = format!("/2018-10-31/layers/{}/versions", percent_encode(&name));
            let versions = self.send(&Method::GET, &path, &filters, Bytes::new()).await?;
            let versions: Value = serde_json::from_slice(&versions.body)?;
            if let Some(v) = lag::newest_visible(&versions, hidden) {
                layer["LatestMatchingVersion"] = v;
                kept.push(layer);
            }
        }
        *layers = kept;
        Ok(())
    }

    /// S3 ListObjectsV2 in pages of the front's size.
    async fn s3_list(&self, f: &Faults) -> Result<Answer, BoxError> {
        let token = query_param(self.query, "continuation-token");
        let marker = match &token {
            None => None,
            Some(t) => match Marker::decode(t) {
                Some(m) => Some(m),
                None => {
                    let msg = "The continuation token provided is incorrect";
                    return Ok(answer::error(Protocol::S3, 400, "InvalidArgument", msg, false));
                }
            },
        };
        let base = query_without(self.query, &["max-keys", "continuation-token"]);
        let first = self.send(&Method::GET, self.path, &base, Bytes::new()).await?;
        if !first.status.is_success() {
            return Ok(relayed(first, None));
        }
        let text = String::from_utf8(first.body.to_vec())?;
        let mut listing = S3Listing::new(&text);
        let mut next = truncated_token(&text);
        for _ in 0..1000 {
            let Some(t) = next.take() else { break };
            let more =
                self.send(&Method::GET, self.path, &with_param(&base, "continuation-token", &t), Bytes::new()).await?;
            let more = String::from_utf8(more.body.to_vec())?;
            listing.absorb(&more);
            next = truncated_token(&more);
        }
        let asked = query_param(self.query, "max-keys").and_then(|m| m.parse::<usize>().ok()).unwrap_or(1000);
        let size = f.page_size.unwrap_or(1000).min(asked);
        let page = listing.page(marker.as_ref(), token.as_deref(), size);
        Ok(relayed(first, Some(Bytes::from(page))))
    }
}

/// The emulator's continuation token when its answer is truncated.
fn truncated_token(xml: &str) -> Option<String> {
    (paging::xml_text(xml, "IsTruncated") == Some("true"))
        .then(|| paging::xml_text(xml, "NextContinuationToken").map(str::to_string))
        .flatten()
}

fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("JSON serialises"))
}

/// The emulator's answer to the client, with `body` instead of its own when rewritten:
/// hop-by-hop headers dropped, Content-Length recomputed (a HEAD keeps the emulator's),
/// and a rewritten body's checksum headers dropped.
fn relayed(r: Relayed, body: Option<Bytes>) -> Answer {
    let rewritten = body.is_some();
    let body = body.unwrap_or(r.body);
    let mut res = Response::new(Full::new(body.clone()));
    *res.status_mut() = r.status;
    let head_len = r.headers.get("content-length").cloned();
    for (name, value) in &r.headers {
        let n = name.as_str();
        let hop = matches!(n, "connection" | "keep-alive" | "transfer-encoding" | "content-length");
        let stale = rewritten && (n.starts_with("x-amz-checksum-") || n == "content-md5" || n == "etag");
        if !hop && !stale {
            res.headers_mut().append(name, value.clone());
        }
    }
    let len = if body.is_empty() { head_len.unwrap_or(HeaderValue::from(0)) } else { HeaderValue::from(body.len()) };
    if r.status != StatusCode::NO_CONTENT && r.status != StatusCode::NOT_MODIFIED {
        res.headers_mut().insert("content-length", len);
    }
    res
}
