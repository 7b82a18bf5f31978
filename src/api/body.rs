//! Response bodies: whole (`full`) or streamed from a bounded channel
//! (`stream`), one type for every route.
//!
//! A streamed body ends when its sender is dropped; an `Err` item aborts
//! the response (the client sees a cut chunked transfer, not a clean end),
//! which is how a query that fails half-way says so.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame};
use tokio::sync::mpsc;

/// Why a streamed body stopped early.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body of the API.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BodyError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

/// A body fed by `rx`; `guard` lives as long as the body (and so as long
/// as the client is connected).
pub fn stream<G: Send + Sync + Unpin + 'static>(
    rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    guard: G,
) -> Body {
    Channel { rx, _guard: guard }.boxed()
}

struct Channel<G> {
    rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    _guard: G,
}

impl<G: Unpin> HttpBody for Channel<G> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}
