//! A `PackedB` packed for one kernel tier and used after the tier changed (through the hidden test switch
//! `force_isa`): still correct, through the panel-by-panel fallback. A separate test binary with a single
//! test, since the switch is process-wide.

mod gemm_common;

use gemm_common::*;
use tensorgrad_kernels::gemm::{detected_isa, force_isa, gemm_reference, sgemm_packed_b, Isa, PackedB};

#[test]
fn packed_b_survives_a_tier_change() {
    force_isa(None);
    let mut rng = Rng(80);
    // Above SMALL_MNK (the packed driver, where the panel width matters) and below it.
    for (m, k, n) in [(150, 300, 70), (9, 20, 45)] {
        let a: Vec<f32> = random(&mut rng, m * k);
        let b: Vec<f32> = random(&mut rng, k * n);
        let packed = PackedB::new(k, n, &b, 1, k);
        let mut want = vec![0.0f32; m * n];
        gemm_reference(m, k, n, 1.0, &a, k, 1, &b, 1, k, 0.0, &mut want, n, 1);
        for cap in [Isa::Avx2, Isa::Portable] {
            force_isa(Some(cap));
            let mut got = vec![f32::NAN; m * n];
            sgemm_packed_b(m, 1.0, &a, k, 1, &packed, 0.0, &mut got, n, 1);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{cap:?} from {:?}: {g} vs {w}", detected_isa());
            }
        }
        force_isa(None);
    }
}
