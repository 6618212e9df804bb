//! A global allocator that counts this thread's allocations, so a bench can
//! check that a hot path allocates nothing (criterion's own threads do not
//! disturb the count). Included by each bench with `#[path]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// How many allocations `f` made on this thread.
pub fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Panics unless the counter sees an allocation: a zero from
/// [`allocations_during`] then means nothing was allocated, not that the
/// counter is not installed.
pub fn assert_counting() {
    let seen = allocations_during(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(16))));
    assert!(seen > 0, "the counting allocator saw no allocation");
}
