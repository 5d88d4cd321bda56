//! The answers the front makes up instead of forwarding: each service's error in its own
//! protocol (Lambda's REST JSON with `x-amzn-errortype`, S3's XML `<Error>`, the query
//! protocols' `<ErrorResponse>` (STS, IAM), JSON 1.x `__type` (SSM)), and plain answers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

pub type Answer = Response<Full<Bytes>>;

/// How a service writes its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    RestJson,
    S3,
    Query,
    Json,
}

impl Protocol {
    pub fn of(service: &str, has_target: bool) -> Protocol {
        match service {
            "lambda" => Protocol::RestJson,
            "s3" => Protocol::S3,
            _ if has_target => Protocol::Json,
            _ => Protocol::Query,
        }
    }
}

/// The error the service answers when it throttles.
pub fn throttle(p: Protocol, head: bool) -> Answer {
    match p {
        Protocol::RestJson => error(p, 429, "TooManyRequestsException", "Rate exceeded", head),
        Protocol::S3 => error(p, 503, "SlowDown", "Please reduce your request rate.", head),
        Protocol::Query => error(p, 400, "Throttling", "Rate exceeded", head),
        Protocol::Json => error(p, 400, "ThrottlingException", "Rate exceeded", head),
    }
}

/// The service's conflict error with this message.
pub fn conflict(p: Protocol, message: &str, head: bool) -> Answer {
    match p {
        Protocol::RestJson => error(p, 409, "ResourceConflictException", message, head),
        Protocol::S3 => error(p, 409, "OperationAborted", message, head),
        Protocol::Query => error(p, 400, "ConcurrentModification", message, head),
        Protocol::Json => error(p, 400, "ConflictException", message, head),
    }
}

/// The service's error of this HTTP status.
pub fn fail(p: Protocol, status: u16, head: bool) -> Answer {
    let code = match (p, status) {
        (Protocol::RestJson, 500..) => "ServiceException",
        (Protocol::RestJson, 404) => "ResourceNotFoundException",
        (Protocol::RestJson, 403) => "AccessDeniedException",
        (Protocol::RestJson, 429) => "TooManyRequestsException",
        (Protocol::RestJson, 409) => "ResourceConflictException",
        (Protocol::RestJson, _) => "InvalidParameterValueException",
        (Protocol::S3, 503) => "ServiceUnavailable",
        (Protocol::S3, 500..) => "InternalError",
        (Protocol::S3, 404) => "NoSuchKey",
        (Protocol::S3, 403) => "AccessDenied",
        (Protocol::S3, _) => "InvalidRequest",
        (Protocol::Query, 503) => "ServiceUnavailable",
        (Protocol::Query, 500..) => "InternalFailure",
        (Protocol::Query, 403) => "AccessDenied",
        (Protocol::Query, _) => "InvalidParameterValue",
        (Protocol::Json, 500..) => "InternalServerError",
        (Protocol::Json, _) => "ValidationException",
    };
    error(p, status, code, &format!("aws-front: injected HTTP {status}"), head)
}

/// An error answer: `status`, `code` and `message` in the protocol's shape (no body for a
/// HEAD request, as S3 answers one).
pub fn error(p: Protocol, status: u16, code: &str, message: &str, head: bool) -> Answer {
    let message = escape(message);
    let (content_type, body) = match p {
        Protocol::RestJson => {
            let kind = if status >= 500 { "Service" } else { "User" };
            ("application/json", serde_json::json!({"Type": kind, "message": message}).to_string())
        }
        Protocol::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
                 <RequestId>aws-front</RequestId><HostId>aws-front</HostId></Error>"
            ),
        ),
        Protocol::Query => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>aws-front</RequestId></ErrorResponse>",
                if status >= 500 { "Receiver" } else { "Sender" }
            ),
        ),
        Protocol::Json => {
            ("application/x-amz-json-1.1", serde_json::json!({"__type": code, "message": message}).to_string())
        }
    };
    let mut b = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "aws-front")
        .header("x-amz-request-id", "aws-front");
    if p == Protocol::RestJson {
        b = b.header("x-amzn-errortype", code);
    }
    if code == "TooManyRequestsException" {
        b = b.header("retry-after", "1");
    }
    let body = if head { Bytes::new() } else { Bytes::from(body) };
    b = b.header("content-length", body.len());
    b.body(Full::new(body)).expect("a valid error answer")
}

/// A plain answer of the front itself (control endpoints, its own failures).
pub fn plain(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Answer {
    let body = body.into();
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(Full::new(body))
        .expect("a valid answer")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_throttles_in_its_own_shape() {
        let l = throttle(Protocol::RestJson, false);
        assert_eq!(l.status(), 429);
        assert_eq!(l.headers()["x-amzn-errortype"], "TooManyRequestsException");
        assert_eq!(l.headers()["retry-after"], "1");
        assert_eq!(throttle(Protocol::S3, false).status(), 503);
        assert_eq!(throttle(Protocol::Query, false).status(), 400);
        assert_eq!(throttle(Protocol::S3, true).headers()["content-length"], "0");
        assert_eq!(fail(Protocol::RestJson, 500, false).headers()["x-amzn-errortype"], "ServiceException");
    }
}
