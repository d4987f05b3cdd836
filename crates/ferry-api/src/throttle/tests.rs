//! The shell around the limiter: off lets everything in, a 429 carries the reason and an
//! integer `Retry-After`, and a permit is held for as long as the answer's body is being sent.

use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_domain::{ThrottleLimits, ThrottleSettings};

use super::{Permit, Throttle};

fn throttle(enabled: bool, requests: u32, concurrent: u32) -> Throttle {
    let limits = ThrottleLimits { requests, window: Duration::from_secs(300), concurrent };
    Throttle::new(ThrottleSettings { enabled, limits, app_limits: Vec::new() })
}

#[test]
fn off_lets_everything_in() {
    let throttle = throttle(false, 1, 1);
    let permits: Vec<Permit> = (0..10).map(|_| throttle.admit("a").expect("let in")).collect();
    assert!(permits.iter().all(|p| p.held.is_none()));
}

#[tokio::test]
async fn a_refusal_is_a_429_with_the_reason_and_whole_seconds() {
    let throttle = throttle(true, 1, 5);
    let _first = throttle.admit("a").expect("let in");
    let response = throttle.admit("a").expect_err("over the limit").into_response();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = response.headers()["retry-after"].to_str().unwrap().parse::<u32>().expect("whole seconds");
    assert!((1..=305).contains(&retry_after), "{retry_after}");
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(
        body["error"]["message"],
        "Number of requests exceeded the limit of 1 over the time window of 300 seconds."
    );
}

type Chunk = Result<Bytes, std::io::Error>;

/// A body whose chunks come from `rx`; it ends when every sender is dropped.
fn channel_body(rx: tokio::sync::mpsc::Receiver<Chunk>) -> Body {
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) }))
}

#[tokio::test]
async fn the_permit_is_held_until_the_body_is_sent() {
    let throttle = throttle(true, 100, 1);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let response = throttle.admit("a").expect("let in").hold_until_sent(Response::new(channel_body(rx)));
    let busy = throttle.admit("a").expect_err("one is running").into_response();
    assert_eq!(busy.headers()["retry-after"], "1");
    tx.send(Ok(Bytes::from_static(b"part one, "))).await.unwrap();
    tx.send(Ok(Bytes::from_static(b"part two"))).await.unwrap();
    drop(tx);
    let sent = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    assert_eq!(sent, "part one, part two");
    drop(throttle.admit("a").expect("the body is sent: its place is free"));

    // A body dropped before it is sent (the client went away) frees its place too.
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let response = throttle.admit("a").expect("let in").hold_until_sent(Response::new(channel_body(rx)));
    assert!(throttle.admit("a").is_err());
    drop(response);
    drop(throttle.admit("a").expect("dropped: its place is free"));

    // A whole body frees the place as its one frame is taken; an empty one at once.
    let response = throttle.admit("a").expect("let in").hold_until_sent("whole".into_response());
    assert!(throttle.admit("a").is_err());
    let mut body = response.into_body();
    let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
    assert!(frame.is_some());
    drop(throttle.admit("a").expect("the last frame is taken: its place is free"));
    let _response = throttle.admit("a").expect("let in").hold_until_sent(StatusCode::NO_CONTENT.into_response());
    drop(throttle.admit("a").expect("nothing to send: its place is free at once"));
}
