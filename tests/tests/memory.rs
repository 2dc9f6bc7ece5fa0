//! Memory stays flat under hostile frame lengths: a frame header announcing 2^63-1 bytes,
//! followed by 4 MiB of its "payload", is refused at once on every adapter, and nothing in
//! the process (server and client share it) allocates more than a few kilobytes for it.
//!
//! A counting global allocator measures the peak of live heap bytes, so the tests in this
//! binary run one after another in a single test function.
#![allow(clippy::unwrap_used)]
// The counting allocator only delegates to the system allocator.
#![allow(unsafe_code)]

use hub_tests::raw::RawWs;
use hub_tests::{Adapter, Server};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tokio::io::AsyncWriteExt;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc`/`realloc`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes of the announced payload the client sends after the header.
const SENT: usize = 4 << 20;

/// Peak live-heap growth while a client announces a 2^63-1 byte frame, sends [`SENT`] bytes of
/// it, and waits for the close.
async fn peak_growth_for_a_huge_frame(adapter: Adapter) -> (usize, u16) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    // FIN+binary, masked, 64-bit length 2^63-1, mask key, then the start of the "payload"
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    bytes.resize(bytes.len() + SENT, 0x55);

    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    // The server may close while this is still being written; a reset is fine.
    let _ = ws.stream.write_all(&bytes).await;
    let code = ws.expect_close().await;
    let growth = PEAK.load(Relaxed).saturating_sub(before);
    (growth, code)
}

/// Peak live-heap growth while a client that negotiated permessage-deflate sends a deflate
/// bomb, and waits for the close.
async fn peak_growth_for_a_deflate_bomb(adapter: Adapter, bomb: &[u8]) -> (usize, u16) {
    use hub_tests::raw::{frame, request, upgrade_head};
    let server = Server::start(adapter).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (status, _, stream) =
        request(server.addr, &upgrade_head(server.addr, "/ws/chat", offer)).await;
    assert_eq!(status, 101);
    let mut ws = RawWs { stream };
    let mut bytes = frame(true, 0x2, bomb, true);
    bytes[0] |= 0x40; // RSV1: compressed

    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let _ = ws.stream.write_all(&bytes).await;
    let code = ws.expect_close().await;
    let growth = PEAK.load(Relaxed).saturating_sub(before);
    (growth, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_pow_63_frame_is_refused_at_once_with_memory_flat_on_every_adapter() {
    // Far below the 4 MiB sent, let alone the 2^63 announced. Measured: ~200 bytes on hyper,
    // warp and actix's lean path; ~300 KB on actix's handler path, where actix-http reads ahead
    // into its own payload buffer before the hub sees the frame (the same at 4 and 16 MiB sent).
    const LIMIT: usize = 512 * 1024;
    for adapter in [
        Adapter::Hyper,
        Adapter::Actix,
        Adapter::ActixNative,
        Adapter::Warp,
    ] {
        let (growth, code) = peak_growth_for_a_huge_frame(adapter).await;
        eprintln!("{adapter:?}: close {code}, peak heap growth {growth} bytes");
        assert!(
            code == 1009 || code == 1002,
            "{adapter:?}: close code {code}"
        );
        assert!(
            growth < LIMIT,
            "{adapter:?}: the heap grew by {growth} bytes for a refused frame"
        );
    }
    // A deflate bomb: ~100 KB that inflates to 100 MB. The server holds the compressed
    // message and at most the 512 KiB limit of its inflated form (plus zlib's state) before it
    // closes with 1009: under 1 MiB however far the bomb would go.
    let bomb = hub_tests::deflate::bomb();
    for adapter in [
        Adapter::Hyper,
        Adapter::Actix,
        Adapter::ActixNative,
        Adapter::Warp,
    ] {
        let (growth, code) = peak_growth_for_a_deflate_bomb(adapter, &bomb).await;
        eprintln!(
            "{adapter:?}: bomb of {} bytes: close {code}, peak heap growth {growth} bytes",
            bomb.len()
        );
        assert_eq!(code, 1009, "{adapter:?}");
        assert!(
            growth < 1 << 20,
            "{adapter:?}: the heap grew by {growth} bytes for a deflate bomb"
        );
    }
}
