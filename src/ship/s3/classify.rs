//! SDK errors -> [`ShipError`]: is it worth retrying soon, and what should a
//! person do about it?
//!
//! Transient: timeouts, connection refused/reset, truncated responses, 5xx,
//! 429, and the throttling/timeout codes S3 sends with other statuses.
//! Everything else (403, 400 BadDigest, 404 NoSuchBucket, ...) is a
//! rejection that will not fix itself; the uploader retries it slowly.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::ship::ShipError;

/// Codes that mean "try again" whatever the status says.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestTimeTooSkewed",
];

pub(super) fn ship_error<E>(op: &str, key: &str, err: SdkError<E, HttpResponse>) -> ShipError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) => ShipError::soon(format!("{op} {key}: timed out ({detail})")),
        SdkError::DispatchFailure(d) if d.is_user() => ShipError::slowly(format!(
            "{op} {key}: request could not be sent ({detail}); check bucket.endpoint"
        )),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ShipError::soon(format!("{op} {key}: connection failed ({detail})"))
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let code = s.err().code().unwrap_or("");
            let message = s.err().message().unwrap_or("");
            let what = format!("{op} {key}: HTTP {status} {code} {message}");
            if status >= 500 || status == 429 || status == 408 || TRANSIENT_CODES.contains(&code) {
                ShipError::soon(what)
            } else {
                ShipError::slowly(format!("{what}; {}", hint(status, code)))
            }
        }
        _ => ShipError::slowly(format!("{op} {key}: {detail}")),
    }
}

/// What a person should check for a rejection.
fn hint(status: u16, code: &str) -> &'static str {
    match (status, code) {
        (_, "BadDigest") | (_, "InvalidDigest") => {
            "the bytes received did not match Content-MD5 (corrupted in transit: it is sent again; or the sealed file changed on disk: it is compressed again at the next start)"
        }
        (_, "NoSuchBucket") | (404, _) => {
            "the bucket does not exist; check bucket.bucket and bucket.endpoint/account_id"
        }
        (_, "InvalidAccessKeyId") | (_, "SignatureDoesNotMatch") => {
            "the credentials are wrong; check bucket.access_key_id and bucket.secret_access_key"
        }
        (403, _) => {
            "access denied; check the credentials and that the token may write to this bucket"
        }
        _ => "the store rejected the request; see the message",
    }
}

/// HEAD of an absent key: 404 (HEAD responses carry no error body).
pub(super) fn is_not_found(
    err: &SdkError<aws_sdk_s3::operation::head_object::HeadObjectError, HttpResponse>,
) -> bool {
    match err {
        SdkError::ServiceError(s) => s.err().is_not_found() || s.raw().status().as_u16() == 404,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;
    use crate::ship::Retry;

    fn service(status: u16, code: &str) -> ShipError {
        let raw = HttpResponse::new(status.try_into().expect("valid status"), SdkBody::empty());
        let err = PutObjectError::generic(ErrorMetadata::builder().code(code).build());
        ship_error("PUT", "k", SdkError::service_error(err, raw))
    }

    #[test]
    fn transient_statuses_retry_soon() {
        for (status, code) in [
            (500, "InternalError"),
            (503, "SlowDown"),
            (429, ""),
            (400, "RequestTimeout"),
        ] {
            assert_eq!(service(status, code).retry, Retry::Soon, "{status} {code}");
        }
    }

    #[test]
    fn rejections_retry_slowly_with_a_hint() {
        let e = service(400, "BadDigest");
        assert_eq!(e.retry, Retry::Slowly);
        assert!(e.message.contains("Content-MD5"), "{e}");
        let e = service(403, "SignatureDoesNotMatch");
        assert_eq!(e.retry, Retry::Slowly);
        assert!(e.message.contains("secret_access_key"), "{e}");
        assert_eq!(service(404, "NoSuchBucket").retry, Retry::Slowly);
    }

    #[test]
    fn timeouts_and_connection_failures_retry_soon() {
        let t: SdkError<PutObjectError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(ship_error("PUT", "k", t).retry, Retry::Soon);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let d: SdkError<PutObjectError, HttpResponse> =
            SdkError::dispatch_failure(aws_sdk_s3::error::ConnectorError::io(Box::new(io)));
        assert_eq!(ship_error("PUT", "k", d).retry, Retry::Soon);
    }
}
