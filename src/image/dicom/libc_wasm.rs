//! What the JPEG 2000 decoder (openjp2, a line-by-line Rust port of OpenJPEG) needs to run in
//! the browser. wasm32-unknown-unknown has no C library, so without `malloc`, `calloc`,
//! `realloc`, `free` and `strcpy` the module would import them from an "env" no page or Node
//! provides; here they stand on Rust's allocator, each block carrying its size in a 16-byte
//! header (C's `malloc` alignment) so that `free` and `realloc` can rebuild its layout. And
//! openjp2 hands Rust's `dealloc` the null pointer of a code block it never decoded (with a
//! zeroed layout): the system allocator of native targets ignores it, wasm's dlmalloc traps
//! ("memory access out of bounds"), so the global allocator here ignores it too.

use std::alloc::{GlobalAlloc, Layout, System, alloc, alloc_zeroed, dealloc, realloc as grow};

/// The system allocator, but a null pointer handed back is ignored as C's `free` ignores it.
struct NullSafe;

// SAFETY: every call goes to `System` with the caller's arguments, except a null dealloc.
unsafe impl GlobalAlloc for NullSafe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's arguments, passed on as `GlobalAlloc` received them.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's arguments, passed on as `GlobalAlloc` received them.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !ptr.is_null() {
            // SAFETY: the caller's arguments, passed on as `GlobalAlloc` received them.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        // SAFETY: the caller's arguments, passed on as `GlobalAlloc` received them.
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static ALLOCATOR: NullSafe = NullSafe;

const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

/// Writes the size into the header of a fresh block and returns the user's pointer.
unsafe fn finish(base: *mut u8, size: usize) -> *mut u8 {
    if base.is_null() {
        return base;
    }
    // SAFETY: `base` starts a block of at least HEADER bytes, aligned to HEADER.
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER)
    }
}

/// SAFETY: C's contract; the result is freed only by `free` or `realloc` below.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut u8 {
    match layout(size) {
        // SAFETY: the layout has a non-zero size (the header).
        Some(l) => unsafe { finish(alloc(l), size) },
        None => std::ptr::null_mut(),
    }
}

/// SAFETY: as `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut u8 {
    match count.checked_mul(size).and_then(|n| Some((n, layout(n)?))) {
        // SAFETY: as in `malloc`.
        Some((n, l)) => unsafe { finish(alloc_zeroed(l), n) },
        None => std::ptr::null_mut(),
    }
}

/// SAFETY: `ptr` is null or came from these functions and was not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the header before `ptr` holds the size this block was made with.
    unsafe {
        let base = ptr.sub(HEADER);
        let size = base.cast::<usize>().read();
        dealloc(base, layout(size).expect("made with this layout"));
    }
}

/// SAFETY: as `free` for `ptr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() {
        // SAFETY: C's realloc of null is malloc.
        return unsafe { malloc(size) };
    }
    let Some(new) = layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: as in `free`; the new size is non-zero and fits the layout's rules.
    unsafe {
        let base = ptr.sub(HEADER);
        let old = base.cast::<usize>().read();
        let moved = grow(
            base,
            layout(old).expect("made with this layout"),
            new.size(),
        );
        finish(moved, size)
    }
}

/// SAFETY: `src` is a NUL-terminated string and `dst` has room for it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strcpy(dst: *mut u8, src: *const u8) -> *mut u8 {
    let mut i = 0;
    // SAFETY: the caller's contract.
    unsafe {
        loop {
            let c = src.add(i).read();
            dst.add(i).write(c);
            if c == 0 {
                return dst;
            }
            i += 1;
        }
    }
}
