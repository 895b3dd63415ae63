//! `queued.max.request.bytes`: the bytes of requests being read and handled
//! across all connections, as Kafka's `SimpleMemoryPool` bounds them.
//!
//! A connection reserves a frame's declared size once the size prefix is
//! read and before reading the body, and gives it back when the request has
//! been handled. As in Kafka (non-strict pool), a reservation goes through
//! whenever some budget is left, so a frame never waits half-read for
//! budget (which could deadlock connections holding parts of the budget);
//! the total in use stays below the budget plus one frame. While nothing is
//! left, connections wait before reading their next frame's body: the
//! bytes stay in the socket and TCP slows the senders down.
//!
//! Kafka's default (-1) is no bound; oxka's default is twice
//! `socket.request.max.bytes`, so one client declaring the largest frame
//! and sending it slowly cannot stop every other connection.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

pub struct MemoryPool {
    capacity: usize,
    /// Bytes reserved now; may exceed `capacity` by less than one frame.
    in_use: Mutex<usize>,
    freed: Notify,
}

/// Bytes of one frame, returned to the pool on drop.
pub struct Reservation {
    pool: Arc<MemoryPool>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        {
            let mut used = self.pool.in_use.lock();
            *used = used.saturating_sub(self.bytes);
        }
        self.pool.freed.notify_waiters();
    }
}

impl MemoryPool {
    /// A pool of `capacity` bytes (`usize::MAX`: no bound).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(MemoryPool {
            capacity,
            in_use: Mutex::new(0),
            freed: Notify::new(),
        })
    }

    /// The pool `queued.max.request.bytes` asks for: its value when
    /// positive, else twice `socket.request.max.bytes`.
    pub fn from_config(
        queued_max_request_bytes: i64,
        socket_request_max_bytes: usize,
    ) -> Arc<Self> {
        let capacity = if queued_max_request_bytes > 0 {
            usize::try_from(queued_max_request_bytes).unwrap_or(usize::MAX)
        } else {
            socket_request_max_bytes.saturating_mul(2)
        };
        Self::new(capacity)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        *self.in_use.lock()
    }

    /// Waits until some budget is left, then reserves `bytes`.
    pub async fn reserve(self: &Arc<Self>, bytes: usize) -> Reservation {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut used = self.in_use.lock();
                if *used < self.capacity {
                    *used = used.saturating_add(bytes);
                    return Reservation {
                        pool: self.clone(),
                        bytes,
                    };
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_ready<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn reservations_wait_while_the_budget_is_spent() {
        let pool = MemoryPool::new(100);
        let a = is_ready(pool.reserve(60)).expect("budget left");
        // non-strict: goes through while anything is left, overshooting
        let b = is_ready(pool.reserve(60)).expect("budget left");
        assert_eq!(pool.in_use(), 120);
        assert!(is_ready(pool.reserve(1)).is_none(), "nothing left: waits");
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.reserve(10).await }
        });
        drop(a);
        let c = waiting.await.unwrap();
        assert_eq!(pool.in_use(), 70);
        drop((b, c));
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn default_is_twice_the_largest_request() {
        assert_eq!(MemoryPool::from_config(-1, 100).capacity(), 200);
        assert_eq!(MemoryPool::from_config(5000, 100).capacity(), 5000);
    }
}
