//! The S3 + Lambda emulator seen through the real SDK clients, for tests that check what
//! the tool left there (xtask-aws's tests only: xtask's tests do not link the SDK).

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use serde_json::Value;

/// The SDK's hyper + rustls client on ring, as xtask's (the SDK's `default-https-client`
/// feature is off, so every client is handed one); plain http to the emulator.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The emulator seen through the real Lambda SDK client.
pub struct Emulator {
    pub rt: tokio::runtime::Runtime,
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Emulator {
    pub fn new(endpoint: &str, region: &str) -> Emulator {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http_client())
            .region(Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http_client())
            .region(Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Emulator { rt, lambda: aws_sdk_lambda::Client::from_conf(conf), s3: aws_sdk_s3::Client::from_conf(s3) }
    }

    /// Every version number of a layer, ascending.
    pub fn versions(&self, layer_name: &str) -> Vec<i64> {
        let out = self.rt.block_on(self.lambda.list_layer_versions().layer_name(layer_name).send()).unwrap();
        let mut v: Vec<i64> = out.layer_versions().iter().map(|v| v.version()).collect();
        v.sort();
        v
    }

    pub fn version(
        &self,
        layer_name: &str,
        version: i64,
    ) -> aws_sdk_lambda::operation::get_layer_version::GetLayerVersionOutput {
        self.rt.block_on(self.lambda.get_layer_version().layer_name(layer_name).version_number(version).send()).unwrap()
    }

    /// The policy of a version, or None when it has none.
    pub fn policy(&self, layer_name: &str, version: i64) -> Option<Value> {
        let res = self
            .rt
            .block_on(self.lambda.get_layer_version_policy().layer_name(layer_name).version_number(version).send());
        match res {
            Ok(o) => Some(serde_json::from_str(o.policy().unwrap()).unwrap()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => None,
            Err(e) => panic!("GetLayerVersionPolicy {layer_name}:{version}: {e:?}"),
        }
    }

    /// Layer names starting with `prefix`.
    pub fn layers_named(&self, prefix: &str) -> Vec<String> {
        let out = self.rt.block_on(self.lambda.list_layers().send()).unwrap();
        out.layers()
            .iter()
            .filter_map(|l| l.layer_name())
            .filter(|n| n.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }
}
