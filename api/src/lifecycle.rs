//! Readiness and shutdown shared by the roles in one process.
//!
//! Order on shutdown: readiness turns false (health answers 503), front ends stop accepting and
//! drain, producers flush, the processor finishes its batch and commits, then the process exits.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

/// Shared by every role of a process.
#[derive(Clone, Default)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Roles that are not ready yet.
    pending: AtomicUsize,
    draining: AtomicBool,
    shutdown: CancellationToken,
    /// What the process is waiting for while it starts.
    waiting: Mutex<Option<String>>,
}

/// A role's claim on readiness: the process is ready once every claim is released with
/// [`NotReady::ready`]. A claim dropped without it keeps the process unready.
pub struct NotReady {
    inner: Arc<Inner>,
}

impl NotReady {
    /// This role is ready.
    pub fn ready(self) {
        self.inner.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Lifecycle {
    /// A new lifecycle: ready (nothing pending), not shutting down.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a role that must become ready before the process is.
    pub fn not_ready(&self) -> NotReady {
        self.inner.pending.fetch_add(1, Ordering::SeqCst);
        NotReady {
            inner: self.inner.clone(),
        }
    }

    /// Whether `/health/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.inner.pending.load(Ordering::SeqCst) == 0
            && !self.inner.draining.load(Ordering::SeqCst)
    }

    /// Starts shutting down: readiness turns false first, then the token is cancelled.
    pub fn shutdown(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.shutdown.cancel();
    }

    /// Says what the process waits for while it is not ready (for example "Kafka at
    /// 10.0.0.5:9092 is unreachable; retrying"); `None` once it waits for nothing.
    pub fn waiting_for(&self, what: Option<String>) {
        *self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner()) = what;
    }

    /// Why `/health/ready` answers 503, or `None` when it answers 200.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.inner.draining.load(Ordering::SeqCst) {
            return Some("shutting down".into());
        }
        if self.inner.pending.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let waiting = self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner());
        Some(waiting.clone().unwrap_or_else(|| "starting".into()))
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Resolves when shutdown begins.
    pub async fn stopped(&self) {
        self.inner.shutdown.cancelled().await
    }

    /// The cancellation token behind [`Lifecycle::stopped`].
    pub fn token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_role_is_and_not_while_draining() {
        let lc = Lifecycle::new();
        let a = lc.not_ready();
        let b = lc.not_ready();
        assert!(!lc.is_ready());
        a.ready();
        assert!(!lc.is_ready());
        b.ready();
        assert!(lc.is_ready());
        let gave_up = lc.not_ready();
        drop(gave_up);
        assert!(
            !lc.is_ready(),
            "a role that never became ready keeps the process unready"
        );
        let lc = Lifecycle::new();
        lc.shutdown();
        assert!(!lc.is_ready() && lc.is_shutting_down());
    }
}
