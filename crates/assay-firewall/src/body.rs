//! A response body fed from a channel, so a task can scan a stream and send what it
//! releases as it goes.

use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A body and the sender that feeds it.
pub fn channel(capacity: usize) -> (mpsc::Sender<Bytes>, axum::body::Body) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, axum::body::Body::new(ChannelBody(rx)))
}
