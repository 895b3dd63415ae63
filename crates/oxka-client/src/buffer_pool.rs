//! `buffer.memory` as Kafka's Java producer keeps it: every batch takes
//! its whole buffer from the budget when it opens (not its records one by
//! one), and buffers of the usual batch capacity are kept for the next
//! batch instead of being freed.
//!
//! Counting capacity rather than records is what bounds real memory: a
//! batch's buffer is allocated once at its full capacity, so it never
//! grows (no copy of the records already in it), and a reused buffer has
//! no fresh pages to fault in. A free buffer in the pool still holds its
//! share of the budget; whoever waits for memory is served from the pool
//! first, and while anyone waits, returned buffers go back to the budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::Semaphore;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AllocError {
    /// Nothing came free within the time allowed.
    Timeout,
    /// The pool was closed.
    Closed,
    /// More than a semaphore can count (the producer's own checks keep
    /// records below `buffer.memory`, itself a `u32`).
    TooLarge,
}

pub(crate) struct BufferPool {
    /// Capacity of the buffers that are kept.
    poolable: usize,
    /// Budget not held by any buffer, in bytes.
    available: Semaphore,
    free: Mutex<Vec<BytesMut>>,
    waiters: AtomicUsize,
}

/// One registered waiter, until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl BufferPool {
    /// `total` bytes in all (`buffer.memory`); buffers of exactly
    /// `poolable` bytes (the batch capacity) are reused.
    pub fn new(total: usize, poolable: usize) -> BufferPool {
        assert!(poolable > 0 && poolable <= total, "poolable within total");
        BufferPool {
            poolable,
            available: Semaphore::new(total.min(Semaphore::MAX_PERMITS)),
            free: Mutex::new(Vec::new()),
            waiters: AtomicUsize::new(0),
        }
    }

    /// Whether a caller is waiting for memory: the sender then sends what
    /// it has at once rather than after `linger.ms` (Java's "exhausted").
    pub fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Acquire) > 0
    }

    /// Budget neither in use nor held by free buffers.
    #[cfg(test)]
    pub fn unallocated(&self) -> usize {
        self.available.available_permits()
    }

    /// Budget not in use by batches (free buffers count as available).
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.available.available_permits() + self.lock_free().len() * self.poolable
    }

    fn lock_free(&self) -> std::sync::MutexGuard<'_, Vec<BytesMut>> {
        match self.free.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A buffer with room for `size` bytes, taking `size` from the budget;
    /// waits until `deadline` when the budget is spent.
    pub async fn allocate(&self, size: usize, deadline: Instant) -> Result<BytesMut, AllocError> {
        if let Some(b) = self.try_allocate(size)? {
            return Ok(b);
        }
        let n = u32::try_from(size).map_err(|_| AllocError::TooLarge)?;
        // Register as a waiter under the free-list lock: a buffer returned
        // after this point goes to the budget, one returned before is found.
        {
            let mut free = self.lock_free();
            if size == self.poolable {
                if let Some(b) = free.pop() {
                    return Ok(b);
                }
            } else {
                self.release_free(&mut free);
            }
            self.waiters.fetch_add(1, Ordering::AcqRel);
        }
        // counted out again even if the caller's future is dropped here
        let _waiting = Waiting(&self.waiters);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let got = tokio::time::timeout(remaining, self.available.acquire_many(n)).await;
        match got {
            Ok(Ok(p)) => {
                p.forget();
                Ok(BytesMut::with_capacity(size))
            }
            Ok(Err(_)) => Err(AllocError::Closed),
            Err(_) => Err(AllocError::Timeout),
        }
    }

    /// As [`BufferPool::allocate`] without waiting: `None` if the budget
    /// is spent right now.
    pub fn try_allocate(&self, size: usize) -> Result<Option<BytesMut>, AllocError> {
        if size == self.poolable {
            if let Some(b) = self.lock_free().pop() {
                return Ok(Some(b));
            }
        }
        let Ok(n) = u32::try_from(size) else {
            return Err(AllocError::TooLarge);
        };
        match self.available.try_acquire_many(n) {
            Ok(p) => {
                p.forget();
                Ok(Some(BytesMut::with_capacity(size)))
            }
            Err(tokio::sync::TryAcquireError::Closed) => Err(AllocError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                if size != self.poolable {
                    // free buffers may hold what a larger record needs
                    let mut free = self.lock_free();
                    if !free.is_empty() {
                        self.release_free(&mut free);
                        drop(free);
                        return self.try_allocate(size);
                    }
                }
                Ok(None)
            }
        }
    }

    /// Gives `size` bytes back; `buf`, if it is a whole poolable buffer and
    /// nobody waits for memory, is kept for the next batch.
    pub fn deallocate(&self, buf: Option<BytesMut>, size: usize) {
        if size == self.poolable {
            if let Some(mut b) = buf.filter(|b| b.capacity() >= self.poolable) {
                let mut free = self.lock_free();
                if !self.has_waiters() {
                    b.clear();
                    free.push(b);
                    return;
                }
            }
        }
        self.available.add_permits(size);
    }

    /// Frees the pooled buffers back to the budget.
    fn release_free(&self, free: &mut Vec<BytesMut>) {
        let n = free.len();
        free.clear();
        if n > 0 {
            self.available.add_permits(n * self.poolable);
        }
    }

    /// Wakes every waiter with `Closed`; later allocations fail.
    pub fn close(&self) {
        self.available.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn a_returned_batch_buffer_is_reused_with_its_pages() {
        let pool = BufferPool::new(4096, 1024);
        let mut a = pool.allocate(1024, later(10)).await.unwrap();
        a.extend_from_slice(&[7; 1000]);
        let ptr = a.as_ptr();
        assert_eq!(pool.available(), 3072);
        pool.deallocate(Some(a), 1024);
        assert_eq!(pool.available(), 4096);
        assert_eq!(pool.unallocated(), 3072, "the free buffer keeps its share");
        let b = pool.allocate(1024, later(10)).await.unwrap();
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.is_empty() && b.capacity() >= 1024);
    }

    #[tokio::test]
    async fn the_budget_is_never_exceeded_and_waiters_time_out() {
        let pool = BufferPool::new(3000, 1000);
        let held: Vec<_> = (0..3)
            .map(|_| pool.try_allocate(1000).unwrap().unwrap())
            .collect();
        assert!(pool.try_allocate(1000).unwrap().is_none());
        assert!(pool.try_allocate(1).unwrap().is_none());
        assert_eq!(
            pool.allocate(1000, later(50)).await.unwrap_err(),
            AllocError::Timeout
        );
        assert!(!pool.has_waiters());
        drop(held);
        // dropped without deallocate: the budget is still spent
        assert_eq!(pool.available(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_memory_returned_while_it_waits() {
        let pool = std::sync::Arc::new(BufferPool::new(2000, 1000));
        let a = pool.try_allocate(1000).unwrap().unwrap();
        let b = pool.try_allocate(1000).unwrap().unwrap();
        let p = pool.clone();
        let waiter = tokio::spawn(async move { p.allocate(1000, later(5_000)).await });
        while !pool.has_waiters() {
            tokio::task::yield_now().await;
        }
        // returned while someone waits: to the budget, not the free list
        pool.deallocate(Some(a), 1000);
        let got = waiter.await.unwrap().unwrap();
        assert!(got.capacity() >= 1000);
        pool.deallocate(Some(b), 1000);
        pool.deallocate(Some(got), 1000);
        assert_eq!(pool.available(), 2000);
    }

    #[tokio::test]
    async fn a_large_record_takes_back_what_free_buffers_hold() {
        let pool = BufferPool::new(3000, 1000);
        let bufs: Vec<_> = (0..3)
            .map(|_| pool.try_allocate(1000).unwrap().unwrap())
            .collect();
        for b in bufs {
            pool.deallocate(Some(b), 1000);
        }
        assert_eq!(pool.unallocated(), 0);
        let big = pool.allocate(2500, later(10)).await.unwrap();
        assert!(big.capacity() >= 2500);
        assert_eq!(pool.available(), 500);
        pool.deallocate(Some(big), 2500);
        assert_eq!(pool.available(), 3000);
    }

    #[tokio::test]
    async fn a_cancelled_wait_is_no_longer_counted() {
        let pool = BufferPool::new(1000, 1000);
        let held = pool.try_allocate(1000).unwrap().unwrap();
        let r = tokio::time::timeout(Duration::from_millis(20), pool.allocate(1000, later(5_000)))
            .await;
        assert!(r.is_err(), "the wait was cancelled");
        assert!(!pool.has_waiters());
        // so buffers are kept for reuse again
        pool.deallocate(Some(held), 1000);
        assert_eq!(pool.unallocated(), 0);
        assert_eq!(pool.available(), 1000);
    }

    #[tokio::test]
    async fn closing_wakes_waiters() {
        let pool = std::sync::Arc::new(BufferPool::new(1000, 1000));
        let _held = pool.try_allocate(1000).unwrap().unwrap();
        let p = pool.clone();
        let waiter = tokio::spawn(async move { p.allocate(1000, later(5_000)).await });
        while !pool.has_waiters() {
            tokio::task::yield_now().await;
        }
        pool.close();
        assert_eq!(waiter.await.unwrap().unwrap_err(), AllocError::Closed);
    }
}
