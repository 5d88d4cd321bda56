//! The one fixture of the AWS tests: a layer repo (`common::Fixture`) whose Lambda layer
//! names start with a prefix of its own (the emulator is shared by every test and every
//! run), the emulator seen through the SDK, and what the tests do there: read the
//! manifest, forge and inspect the publish lock, create functions attaching layers (their
//! role made in the emulator's IAM), publish layers of another owner.

use std::io::{Read, Write};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, FunctionCode, LayerVersionContentInput, Runtime};
use serde_json::Value;

use crate::common::{Fixture, TestEnv};
use crate::emulator::Emulator;

pub const ROLE: &str = "arn:aws:iam::123456789012:role/xtask-rollout-test";

pub struct Repo {
    pub f: Fixture,
    /// The layer names' prefix: `{tag}<unique>`.
    pub prefix: String,
    /// The emulator's us-east-1.
    pub emu: Emulator,
    pub endpoint: String,
}

impl Repo {
    /// A fixture whose layer names start with `tag` and a unique suffix; no bucket yet.
    pub fn new(env: &TestEnv, layers: &[(&str, &str)], tag: &str) -> Repo {
        let f = Fixture::new(env, layers);
        let prefix = f.prefix_layer_names(tag);
        let endpoint = env.endpoint.clone().expect("the emulator (require_emulator!)");
        Repo { f, prefix, emu: Emulator::new(&endpoint, "us-east-1"), endpoint }
    }
}

/// A [`Repo`] for functions: the role made and the staging bucket bootstrapped.
pub fn repo(env: &TestEnv, layers: &[(&str, &str)]) -> Repo {
    let r = Repo::new(env, layers, "r");
    create_role(&r.endpoint);
    r.f.run(&["bootstrap"]).ok();
    r
}

/// CreateRole in the emulator's IAM (moto refuses a function whose role does not exist),
/// as a plain HTTP request: the tests need no IAM SDK. A role that exists already is fine.
pub fn create_role(endpoint: &str) {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
    let body =
        format!("Action=CreateRole&Version=2010-05-08&RoleName=xtask-rollout-test&AssumeRolePolicyDocument={policy}");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("CreateRoleResponse") || answer.contains("EntityAlreadyExists"), "{answer}");
}

/// A zip holding `app.py` and `extra` bytes of incompressible data (the function's size).
pub fn code_zip(extra: usize) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("app.py", stored).unwrap();
    z.write_all(b"def handler(event, context):\n    return 1\n").unwrap();
    if extra > 0 {
        let mut state: u64 = 0x9E3779B97F4A7C15;
        let data: Vec<u8> = (0..extra)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        z.start_file("data.bin", stored).unwrap();
        z.write_all(&data).unwrap();
    }
    z.finish().unwrap().into_inner()
}

impl Repo {
    pub fn layer_name(&self, layer: &str) -> String {
        format!("{}-{layer}-py313-x86_64", self.prefix)
    }

    pub fn arn(&self, layer: &str, version: i64) -> String {
        format!("arn:aws:lambda:us-east-1:123456789012:layer:{}:{version}", self.layer_name(layer))
    }

    /// Publishes `layer` with these requirements (checks skipped: they have their own tests).
    pub fn publish(&self, layer: &str, reqs: &str) {
        self.f.write(&format!("layers/{layer}/requirements.txt"), reqs);
        self.f.run(&["publish", layer, "--no-check"]).ok();
    }

    /// A layer version published straight through the SDK (another owner's layer, or a
    /// version of a repo layer name the repo did not build).
    pub fn publish_direct(&self, layer_name: &str, description: &str, arch: Architecture) -> String {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file("python/other_owner.py", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(b"X = 1\n").unwrap();
        let bytes = z.finish().unwrap().into_inner();
        let out = self
            .emu
            .rt
            .block_on(
                self.emu
                    .lambda
                    .publish_layer_version()
                    .layer_name(layer_name)
                    .description(description)
                    .content(LayerVersionContentInput::builder().zip_file(Blob::new(bytes)).build())
                    .compatible_runtimes(Runtime::Python313)
                    .compatible_architectures(arch)
                    .send(),
            )
            .unwrap();
        out.layer_version_arn().unwrap().to_string()
    }

    pub fn create_function(&self, name: &str, layers: &[String], arch: Architecture, extra: usize) -> String {
        let name = format!("{}-{name}", self.prefix);
        self.emu
            .rt
            .block_on(
                self.emu
                    .lambda
                    .create_function()
                    .function_name(&name)
                    .runtime(Runtime::Python313)
                    .role(ROLE)
                    .handler("app.handler")
                    .architectures(arch)
                    .code(FunctionCode::builder().zip_file(Blob::new(code_zip(extra))).build())
                    .set_layers(Some(layers.to_vec()))
                    .send(),
            )
            .unwrap();
        name
    }

    /// The layer ARNs a function attaches, in order.
    pub fn layers_of(&self, function: &str) -> Vec<String> {
        let out = self.emu.rt.block_on(self.emu.lambda.get_function().function_name(function).send()).unwrap();
        out.configuration().unwrap().layers().iter().map(|l| l.arn().unwrap().to_string()).collect()
    }

    /// `published/<profile>.json`.
    pub fn manifest(&self, profile: &str) -> Value {
        let text = std::fs::read_to_string(self.f.path(&format!("published/{profile}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The manifest's ARN of a layer (python3.13 x86_64 us-east-1).
    pub fn manifest_arn(&self, profile: &str, layer: &str) -> String {
        let m = self.manifest(profile);
        let e = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["layer"] == layer)
            .unwrap_or_else(|| panic!("{layer} not in {m:#}"));
        e["layer_version_arn"].as_str().unwrap().to_string()
    }

    /// The staging profile's bucket.
    pub fn bucket(&self) -> String {
        let text = std::fs::read_to_string(self.f.path("layers.toml")).unwrap();
        let at = text.find("bucket = \"").unwrap() + 10;
        text[at..].split('"').next().unwrap().to_string()
    }

    /// The key of the staging profile's publish lock in us-east-1.
    pub const LOCK_KEY: &'static str = "layers/.locks/staging/us-east-1.json";

    /// Writes the staging lock as a run on another machine would have, with `lease_left` seconds.
    pub fn forge_lock(&self, lease_left: i64) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let holder = serde_json::json!({"who": "ghost@elsewhere", "pid": 4242, "run": "github run 77 attempt 1",
            "command": "publish-all", "since": "2026-01-01T00:00:00Z", "expires_at": now + lease_left});
        let body = aws_sdk_s3::primitives::ByteStream::from(serde_json::to_vec(&holder).unwrap());
        let put = self.emu.s3.put_object().bucket(self.bucket()).key(Self::LOCK_KEY).body(body);
        self.emu.rt.block_on(put.send()).unwrap();
    }

    /// The staging lock object, or None when there is none.
    pub fn lock_object(&self) -> Option<Value> {
        let get = self.emu.s3.get_object().bucket(self.bucket()).key(Self::LOCK_KEY);
        let out = self.emu.rt.block_on(get.send()).ok()?;
        let bytes = self.emu.rt.block_on(out.body.collect()).unwrap().into_bytes();
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// Whether a staging lock object is in the bucket.
    pub fn lock_held(&self) -> bool {
        self.emu.rt.block_on(self.emu.s3.head_object().bucket(self.bucket()).key(Self::LOCK_KEY).send()).is_ok()
    }

    /// Removes the staging lock object.
    pub fn drop_lock(&self) {
        self.emu.rt.block_on(self.emu.s3.delete_object().bucket(self.bucket()).key(Self::LOCK_KEY).send()).unwrap();
    }
}
