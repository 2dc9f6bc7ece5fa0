//! permessage-deflate from the client's side, with flate2 as the independent implementation:
//! what a client sends (raw deflate, sync flush, tail removed; RFC 7692 §7.2.1) and a bomb.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// Raw deflate of one message, as an RFC 7692 client sends it.
pub fn compress(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 1024);
    loop {
        let done = c.total_in() as usize;
        c.compress_vec(&payload[done..], &mut out, FlushCompress::Sync)
            .expect("deflate");
        if c.total_in() as usize == payload.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(64 * 1024);
    }
    out.truncate(out.len() - 4);
    out
}

/// Inflates one compressed message the server sent, with a window of `window_bits`.
pub fn inflate(data: &[u8], window_bits: u8) -> Vec<u8> {
    let mut d = Decompress::new_with_window_bits(false, window_bits);
    let mut input = data.to_vec();
    input.extend([0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("inflate");
    assert_eq!(d.total_in() as usize, input.len(), "inflated in one go");
    out
}

/// A compressed message of about 100 KB that inflates to 100 MB of zeros.
pub fn bomb() -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut bomb = Vec::with_capacity(256 * 1024);
    for _ in 0..100 {
        let start = c.total_in();
        while c.total_in() - start < zeros.len() as u64 {
            let done = (c.total_in() - start) as usize;
            c.compress_vec(&zeros[done..], &mut bomb, FlushCompress::None)
                .expect("deflate");
            if bomb.capacity() - bomb.len() < 1024 {
                bomb.reserve(64 * 1024);
            }
        }
    }
    c.compress_vec(&[], &mut bomb, FlushCompress::Sync)
        .expect("deflate");
    bomb.truncate(bomb.len() - 4);
    bomb
}
