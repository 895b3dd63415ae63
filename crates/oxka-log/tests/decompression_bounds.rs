//! Validating a compressed batch costs bounded memory whatever it
//! decompresses to: the payload is streamed, never inflated whole. A
//! counting global allocator measures the peak of live heap bytes during
//! validation (deterministic, no timing): before streaming, a 300 MiB gzip
//! bomb (about 300 KiB on the wire) cost 256 MiB before it was refused.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use oxka_log::builder::RecordBatchBuilder;
use oxka_log::record_batch::{validate_batches, validate_batches_limited};
use oxka_log::LogError;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// One measurement at a time (tests run on parallel threads).
static MEASURE: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak live heap bytes above the level when `f` started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(start))
}

const MIB: usize = 1 << 20;

#[test]
fn a_gzip_bomb_is_refused_in_bounded_memory() {
    // first: the counter is process-wide, another test building its
    // batch meanwhile would count
    let _one = MEASURE.lock().unwrap();
    let bomb = RecordBatchBuilder::gzip_zeros_batch(300 * MIB, 1_000);
    assert!(bomb.len() < MIB, "{} bytes on the wire", bomb.len());
    let (res, peak) = peak_during(|| validate_batches(&bomb));
    assert!(
        matches!(res, Err(LogError::CorruptRecord(ref m)) if m.contains("decompresses to more than")),
        "{res:?}"
    );
    assert!(peak < 4 * MIB, "validation held {peak} bytes");
}

#[test]
fn a_large_record_within_the_bounds_is_validated_in_bounded_memory() {
    // first: the counter is process-wide, another test building its
    // batch meanwhile would count
    let _one = MEASURE.lock().unwrap();
    let batch = RecordBatchBuilder::gzip_zeros_batch(64 * MIB, 1_000);
    let (res, peak) = peak_during(|| validate_batches(&batch));
    assert_eq!(res.unwrap().len(), 1);
    assert!(peak < 4 * MIB, "validation held {peak} bytes");
}

/// Kafka's `max.decompressed.message.bytes`: a compressed record over it
/// is INVALID_RECORD, found from its length prefix before its bytes.
#[test]
fn max_decompressed_message_bytes_refuses_a_larger_compressed_record() {
    let _one = MEASURE.lock().unwrap();
    let batch = RecordBatchBuilder::gzip_zeros_batch(MIB, 1_000);
    assert!(validate_batches_limited(&batch, None, 2 * MIB as u32).is_ok());
    let err = validate_batches_limited(&batch, None, 512 * 1024).unwrap_err();
    assert!(matches!(err, LogError::InvalidRecord(_)), "{err:?}");
}
