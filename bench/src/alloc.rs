//! A counting global allocator: the system allocator plus a running count of live heap bytes, so that the memory
//! measure can say what a ready bot costs (live bytes after N bots − live bytes before, divided by N).
//!
//! The one place in the bench that needs `unsafe`: `GlobalAlloc` is an unsafe trait, and forwarding to
//! [`System`] means calling its unsafe methods. The crate denies unsafe code everywhere else.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting. One relaxed atomic add per allocation and per free: a few nanoseconds, paid
/// equally by both sides of every comparison in the bench.
#[derive(Debug)]
pub(crate) struct Counting;

/// Bytes allocated and not yet freed, process-wide. Signed: a block allocated before a reset and freed after
/// would otherwise underflow (there is no reset, but a signed count costs nothing).
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Live heap bytes now.
pub(crate) fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the `GlobalAlloc` contract
// is `System`'s; the count is a side effect that never touches memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        new
    }
}
