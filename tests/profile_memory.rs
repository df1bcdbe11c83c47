//! Memory statistics. The counters are process-wide, so this binary holds a single test: nothing else
//! allocates tensors while it measures deltas.

use tensorgrad::profile::{memory_stats, reset_peak};
use tensorgrad::{DType, Tensor};

#[test]
fn live_bytes_track_allocations_views_drops_and_peak() {
    let before = memory_stats();

    // An allocation: exactly its bytes, one allocation.
    let a = Tensor::zeros(&[10, 100]); // 1000 f32
    let s = memory_stats();
    assert_eq!(s.live_bytes - before.live_bytes, 4000);
    assert_eq!(s.allocations - before.allocations, 1);
    assert_eq!(a.storage_bytes(), 4000);

    // Views share the storage: nothing new.
    let v = a.reshape([1000]).transpose(0, 0).narrow(0, 10, 20);
    assert_eq!(memory_stats().live_bytes - before.live_bytes, 4000);

    // Other dtypes count their element size.
    let b = Tensor::zeros_dtype(&[7], DType::F64);
    let i = Tensor::zeros_dtype(&[3], DType::I64);
    let m = Tensor::zeros_dtype(&[5], DType::Bool);
    assert_eq!(memory_stats().live_bytes - before.live_bytes, 4000 + 56 + 24 + 5);

    // The storage lives while a view does.
    drop(a);
    assert_eq!(memory_stats().live_bytes - before.live_bytes, 4000 + 56 + 24 + 5);
    drop(v);
    assert_eq!(memory_stats().live_bytes - before.live_bytes, 56 + 24 + 5);
    drop((b, i, m));
    assert_eq!(memory_stats().live_bytes, before.live_bytes);

    // The peak: reset to what is live, raised by a temporary, kept after it drops.
    reset_peak();
    assert_eq!(memory_stats().peak_bytes, before.live_bytes);
    let big = Tensor::ones(&[256, 256]);
    let doubled = &big * 2.0;
    drop((big, doubled));
    let after = memory_stats();
    assert_eq!(after.live_bytes, before.live_bytes);
    assert_eq!(after.peak_bytes, before.live_bytes + 2 * 256 * 256 * 4);

    // A graph keeps its saved tensors until backward frees them.
    let w = Tensor::ones(&[64, 64]).requires_grad_(); // 16 KiB
    let base = memory_stats().live_bytes;
    let y = w.exp(); // output 16 KiB; the node keeps w and (a view of) y
    let loss = y.sum(); // 4 bytes
    assert_eq!(memory_stats().live_bytes - base, 16384 + 4);
    loss.backward(); // w.grad: 16 KiB; the seed and intermediate gradients are gone
    drop((y, loss));
    assert_eq!(memory_stats().live_bytes - base, 16384);
    drop(w);
    assert_eq!(memory_stats().live_bytes, base - 16384);
}
