//! Per-client-app throttling, as Dynamics 365's user-based limits do it: requests over a sliding
//! window and requests running at once, per app and per node, in memory. Over a limit the
//! answer is `429 Too Many Requests` with `Retry-After` in whole seconds (RIS parses it with
//! `int.Parse` and retries a 429 as often as it takes) and Dynamics' message for the reason.
//!
//! The bearer middleware (`auth.rs`) admits every authenticated request here after its token
//! is verified; the [`Permit`] it gets is held until the answer's last byte is handed over, so a
//! long download or a slow streamed upload counts as running for as long as it runs. The
//! arithmetic is in `limiter.rs`; this is the shell that reads the monotonic clock and counts.

mod limiter;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::response::Response;
use ferry_domain::ThrottleSettings;
use http_body::{Frame, SizeHint};

use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::ops::HTTP_THROTTLED_TOTAL;
use limiter::{Admission, Limiter};

/// The limits of one node and what every app uses of them.
#[derive(Debug)]
pub(crate) struct Throttle {
    settings: ThrottleSettings,
    /// Time zero of the limiter's arithmetic.
    started: Instant,
    limiter: Arc<Mutex<Limiter>>,
    /// The minute (since `started`) of the last warning that an app went untracked, plus one.
    untracked_warned: AtomicU64,
}

impl Throttle {
    pub(crate) fn new(settings: ThrottleSettings) -> Throttle {
        Throttle { settings, started: Instant::now(), limiter: Arc::default(), untracked_warned: AtomicU64::new(0) }
    }

    /// Lets a request of `client_id` in, with the permit to hold until its answer is sent, or
    /// answers the 429.
    pub(crate) fn admit(&self, client_id: &str) -> ApiResult<Permit> {
        if !self.settings.enabled {
            return Ok(Permit::free());
        }
        let limits = self.settings.limits_for(client_id);
        let now = self.started.elapsed();
        let admitted = lock(&self.limiter).admit(client_id, &limits, now);
        match admitted {
            Ok(Admission::Tracked) => Ok(Permit { held: Some((Arc::clone(&self.limiter), client_id.to_owned())) }),
            Ok(Admission::Untracked) => {
                // At most once a minute: it happens to every request while the table is full.
                let minute = now.as_secs() / 60 + 1;
                if self.untracked_warned.swap(minute, Ordering::Relaxed) != minute {
                    tracing::warn!(client_id, "too many busy client apps to track; some requests are not throttled");
                }
                Ok(Permit::free())
            }
            Err(refusal) => {
                let reason = refusal.reason();
                metrics::counter!(HTTP_THROTTLED_TOTAL, "client_id" => client_id.to_owned(), "reason" => reason)
                    .increment(1);
                let retry_after_secs = refusal.retry_after_secs();
                tracing::debug!(client_id, reason, retry_after_secs, "request throttled");
                Err(ApiError::new(ErrorKind::TooManyRequests, refusal.message()).with_retry_after(retry_after_secs))
            }
        }
    }
}

/// The limiter, even if a thread panicked holding it (its counts stay consistent: every
/// change is a few integer steps that cannot panic half-way).
fn lock(limiter: &Mutex<Limiter>) -> MutexGuard<'_, Limiter> {
    limiter.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running request's place among its app's concurrent requests; dropping it frees the place.
#[derive(Debug)]
#[must_use = "the request counts as running only while its permit is held"]
pub(crate) struct Permit {
    held: Option<(Arc<Mutex<Limiter>>, String)>,
}

impl Permit {
    /// A permit that holds no place (throttling is off, or the route is not throttled).
    pub(crate) fn free() -> Permit {
        Permit { held: None }
    }

    /// `response`, holding this permit until its body has been handed over (or dropped).
    pub(crate) fn hold_until_sent(self, response: Response) -> Response {
        if self.held.is_none() || response.body().is_end_stream() {
            return response;
        }
        response.map(|inner| Body::new(PermitBody { inner, permit: Some(self) }))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((limiter, client_id)) = self.held.take() {
            lock(&limiter).release(&client_id);
        }
    }
}

/// A response body that lets go of its request's permit as it yields its last frame, before
/// the client can have read it: a client that got a whole answer may send its next request
/// at once.
struct PermitBody {
    inner: Body,
    permit: Option<Permit>,
}

impl HttpBody for PermitBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let last = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if last {
            this.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
