//! Which call a request is: the service and region of its SigV4 credential scope and the
//! operation its method, path, query, `X-Amz-Target` or form `Action` names, as
//! `service:Operation` (an unknown one as `service:METHOD path-shape`).

/// A request identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub region: String,
    /// The operation without the service (`PublishLayerVersion`).
    pub name: String,
}

impl Call {
    /// `service:Operation`, the key of the counts and of the rules.
    pub fn op(&self) -> String {
        format!("{}:{}", self.service, self.name)
    }
}

/// The service and region of `Credential=AKID/DATE/REGION/SERVICE/aws4_request`, from the
/// `Authorization` header or a presigned URL's `X-Amz-Credential` (`unknown` when neither).
pub fn scope(authorization: Option<&str>, query: &str) -> (String, String) {
    let credential = authorization
        .and_then(|a| a.split_once("Credential=").map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or("")))
        .map(str::to_string)
        .or_else(|| query_param(query, "X-Amz-Credential"));
    let parts: Vec<&str> = credential.as_deref().unwrap_or("").split('/').collect();
    match parts.as_slice() {
        [_, _, region, service, ..] => (service.to_string(), region.to_string()),
        _ => ("unknown".into(), "unknown".into()),
    }
}

/// The call a request makes.
pub fn identify(
    method: &str,
    path: &str,
    query: &str,
    authorization: Option<&str>,
    target: Option<&str>,
    copy_source: bool,
    body: &[u8],
) -> Call {
    let (service, region) = scope(authorization, query);
    let name = match service.as_str() {
        "lambda" => lambda(method, path),
        "s3" => s3(method, path, query, copy_source),
        _ => None,
    }
    .or_else(|| target.and_then(|t| t.rsplit_once('.')).map(|(_, op)| op.to_string()))
    .or_else(|| query_param(query, "Action"))
    .or_else(|| form_action(body))
    .unwrap_or_else(|| match service.as_str() {
        "s3" => format!("{method} {}", s3_shape(path, query)),
        _ => format!("{method} {}", shape(path)),
    });
    Call { service, region, name }
}

/// A path with every segment but the first two (a Lambda API date and a collection) and
/// the literal words of Lambda's paths replaced by `{}`.
pub fn shape(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| if i <= 2 || s.is_empty() || i % 2 == 0 { s.to_string() } else { "{}".into() })
        .collect::<Vec<_>>()
        .join("/")
}

/// An S3 path-style path as `/{bucket}/{key}` with the query's parameter names.
fn s3_shape(path: &str, query: &str) -> String {
    let rest = path.trim_start_matches('/');
    let base = match rest.split_once('/') {
        Some((_, k)) if !k.is_empty() => "/{bucket}/{key}",
        _ if rest.is_empty() => "/",
        _ => "/{bucket}",
    };
    let names: Vec<&str> =
        query.split('&').filter(|kv| !kv.is_empty()).map(|kv| kv.split('=').next().unwrap_or("")).collect();
    if names.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", names.join("&"))
    }
}

/// A Lambda REST operation by method and path (None: not one this front knows).
pub fn lambda(method: &str, path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let name = match (method, segs.as_slice()) {
        ("GET", ["2018-10-31", "layers"]) => "ListLayers",
        ("GET", ["2018-10-31", "layers", _, "versions"]) => "ListLayerVersions",
        ("POST", ["2018-10-31", "layers", _, "versions"]) => "PublishLayerVersion",
        ("GET", ["2018-10-31", "layers", _, "versions", _]) => "GetLayerVersion",
        ("DELETE", ["2018-10-31", "layers", _, "versions", _]) => "DeleteLayerVersion",
        ("GET", ["2018-10-31", "layers", _, "versions", _, "policy"]) => "GetLayerVersionPolicy",
        ("POST", ["2018-10-31", "layers", _, "versions", _, "policy"]) => "AddLayerVersionPermission",
        ("DELETE", ["2018-10-31", "layers", _, "versions", _, "policy", _]) => "RemoveLayerVersionPermission",
        ("GET", ["2015-03-31", "functions"]) => "ListFunctions",
        ("POST", ["2015-03-31", "functions"]) => "CreateFunction",
        ("GET", ["2015-03-31", "functions", _]) => "GetFunction",
        ("DELETE", ["2015-03-31", "functions", _]) => "DeleteFunction",
        ("GET", ["2015-03-31", "functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", ["2015-03-31", "functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", ["2015-03-31", "functions", _, "code"]) => "UpdateFunctionCode",
        ("POST", ["2015-03-31", "functions", _, "versions"]) => "PublishVersion",
        ("GET", ["2015-03-31", "functions", _, "versions"]) => "ListVersionsByFunction",
        ("GET", ["2015-03-31", "functions", _, "policy"]) => "GetPolicy",
        ("POST", ["2015-03-31", "functions", _, "invocations"]) => "Invoke",
        ("GET", ["2016-08-19", "account-settings"]) => "GetAccountSettings",
        _ => return None,
    };
    Some(name.to_string())
}

/// An S3 operation by method, path-style bucket and key, query sub-resource and, for a PUT,
/// whether it copies (None: not one this front knows).
pub fn s3(method: &str, path: &str, query: &str, copy: bool) -> Option<String> {
    let rest = path.trim_start_matches('/');
    let (bucket, key) = match rest.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b, Some(k)),
        Some((b, _)) => (b, None),
        None => (rest, None),
    };
    let has = |p: &str| query.split('&').any(|kv| kv == p || kv.starts_with(&format!("{p}=")));
    let name = match (method, bucket.is_empty(), key.is_some()) {
        ("GET", true, _) => "ListBuckets".into(),
        (_, false, false) => {
            const SUB: &[(&str, &str)] = &[
                ("versioning", "BucketVersioning"),
                ("policy", "BucketPolicy"),
                ("lifecycle", "BucketLifecycleConfiguration"),
                ("tagging", "BucketTagging"),
                ("encryption", "BucketEncryption"),
                ("publicAccessBlock", "PublicAccessBlock"),
                ("ownershipControls", "BucketOwnershipControls"),
                ("acl", "BucketAcl"),
                ("cors", "BucketCors"),
                ("location", "BucketLocation"),
                ("notification", "BucketNotificationConfiguration"),
                ("object-lock", "ObjectLockConfiguration"),
            ];
            if let Some((_, noun)) = SUB.iter().find(|(q, _)| has(q)) {
                let verb = match method {
                    "GET" => "Get",
                    "PUT" => "Put",
                    "DELETE" => "Delete",
                    _ => return None,
                };
                format!("{verb}{noun}")
            } else {
                match method {
                    "GET" if has("list-type") => "ListObjectsV2".into(),
                    "GET" if has("versions") => "ListObjectVersions".into(),
                    "GET" if has("uploads") => "ListMultipartUploads".into(),
                    "GET" => "ListObjects".into(),
                    "HEAD" => "HeadBucket".into(),
                    "PUT" => "CreateBucket".into(),
                    "DELETE" => "DeleteBucket".into(),
                    "POST" if has("delete") => "DeleteObjects".into(),
                    _ => return None,
                }
            }
        }
        (_, false, true) => match method {
            "PUT" if has("tagging") => "PutObjectTagging".into(),
            "PUT" if has("partNumber") => "UploadPart".into(),
            "PUT" if copy => "CopyObject".into(),
            "PUT" => "PutObject".into(),
            "GET" if has("tagging") => "GetObjectTagging".into(),
            "GET" if has("attributes") => "GetObjectAttributes".into(),
            "GET" if has("uploadId") => "ListParts".into(),
            "GET" => "GetObject".into(),
            "HEAD" => "HeadObject".into(),
            "DELETE" if has("uploadId") => "AbortMultipartUpload".into(),
            "DELETE" => "DeleteObject".into(),
            "POST" if has("uploads") => "CreateMultipartUpload".into(),
            "POST" if has("uploadId") => "CompleteMultipartUpload".into(),
            _ => return None,
        },
        _ => return None,
    };
    Some(name)
}

/// `Action=X` of a form body (STS, IAM and the other query protocols).
fn form_action(body: &[u8]) -> Option<String> {
    query_param(std::str::from_utf8(body).ok()?, "Action")
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// `%XX` and `+` of a query value decoded (invalid escapes kept as written).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query value percent-encoded (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAMBDA: &str =
        "AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x";
    const S3: &str =
        "AWS4-HMAC-SHA256 Credential=AKID/20261203/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=x";

    fn op(method: &str, path: &str, query: &str, auth: &str) -> String {
        identify(method, path, query, Some(auth), None, false, b"").op()
    }

    #[test]
    fn lambda_operations() {
        assert_eq!(op("GET", "/2018-10-31/layers", "", LAMBDA), "lambda:ListLayers");
        assert_eq!(op("GET", "/2018-10-31/layers/a/versions", "MaxItems=2", LAMBDA), "lambda:ListLayerVersions");
        assert_eq!(op("POST", "/2018-10-31/layers/a/versions", "", LAMBDA), "lambda:PublishLayerVersion");
        assert_eq!(op("GET", "/2018-10-31/layers/a/versions/3", "", LAMBDA), "lambda:GetLayerVersion");
        assert_eq!(op("DELETE", "/2018-10-31/layers/a/versions/3", "", LAMBDA), "lambda:DeleteLayerVersion");
        assert_eq!(op("GET", "/2018-10-31/layers/a/versions/3/policy", "", LAMBDA), "lambda:GetLayerVersionPolicy");
        assert_eq!(
            op("POST", "/2018-10-31/layers/a/versions/3/policy", "", LAMBDA),
            "lambda:AddLayerVersionPermission"
        );
        assert_eq!(op("GET", "/2015-03-31/functions/", "", LAMBDA), "lambda:ListFunctions");
        assert_eq!(op("GET", "/2015-03-31/functions/f/configuration", "", LAMBDA), "lambda:GetFunctionConfiguration");
        assert_eq!(
            op("PUT", "/2015-03-31/functions/f/configuration", "", LAMBDA),
            "lambda:UpdateFunctionConfiguration"
        );
        assert_eq!(op("GET", "/2015-03-31/functions/f", "", LAMBDA), "lambda:GetFunction");
        assert_eq!(op("GET", "/2016-08-19/account-settings/", "", LAMBDA), "lambda:GetAccountSettings");
        assert_eq!(op("GET", "/2017-03-31/tags/arn", "", LAMBDA), "lambda:GET /2017-03-31/tags/{}");
    }

    #[test]
    fn s3_operations() {
        assert_eq!(op("PUT", "/b/k/x.zip", "x-id=PutObject", S3), "s3:PutObject");
        assert_eq!(op("GET", "/b/k", "", S3), "s3:GetObject");
        assert_eq!(op("HEAD", "/b/k", "", S3), "s3:HeadObject");
        assert_eq!(op("DELETE", "/b/k", "", S3), "s3:DeleteObject");
        assert_eq!(op("POST", "/b", "delete", S3), "s3:DeleteObjects");
        assert_eq!(op("POST", "/b/", "delete=", S3), "s3:DeleteObjects");
        assert_eq!(op("GET", "/b", "list-type=2&prefix=a", S3), "s3:ListObjectsV2");
        assert_eq!(op("HEAD", "/b", "", S3), "s3:HeadBucket");
        assert_eq!(op("PUT", "/b", "", S3), "s3:CreateBucket");
        assert_eq!(op("PUT", "/b", "versioning", S3), "s3:PutBucketVersioning");
        assert_eq!(op("POST", "/b/k", "x=1", S3), "s3:POST /{bucket}/{key}?x");
        assert_eq!(identify("GET", "/b/k", "", Some(S3), None, false, b"").region, "eu-west-1");
    }

    #[test]
    fn query_protocols_and_targets() {
        let sts = "AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/sts/aws4_request, SignedHeaders=host";
        assert_eq!(
            identify("POST", "/", "", Some(sts), None, false, b"Action=GetCallerIdentity&Version=2011-06-15").op(),
            "sts:GetCallerIdentity"
        );
        let ssm = "AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/ssm/aws4_request, SignedHeaders=host";
        assert_eq!(
            identify("POST", "/", "", Some(ssm), Some("AmazonSSM.GetParameter"), false, b"{}").op(),
            "ssm:GetParameter"
        );
        assert_eq!(identify("GET", "/x", "", None, None, false, b"").op(), "unknown:GET /x");
    }

    #[test]
    fn percent_coding_round_trips() {
        assert_eq!(percent_decode("a%2Fb+c%zz"), "a/b c%zz");
        assert_eq!(percent_decode(&percent_encode("x/y z=1&")), "x/y z=1&");
    }
}
