//! Kernel selection: runtime CPU detection (cached once), the test-only tier cap, and the per-type hooks
//! (`Sealed`) through which the generic driver reaches the right microkernel and small-shape kernel.

use std::sync::atomic::{AtomicU8, Ordering};

use super::driver::{gemm_packed, gemm_prepacked, Problem};
use super::kernel::Kernel;
use super::kernel::{PortableF32, PortableF64};
#[cfg(target_arch = "x86_64")]
use super::x86;
use super::GemmScalar;

/// Per-type hooks of the driver: which microkernel and small-shape kernel to run.
pub trait Sealed: Sized {
    /// Runs the packed BLIS driver with the best microkernel for this CPU on `threads` threads of the
    /// current rayon pool.
    ///
    /// # Safety
    ///
    /// `p` must describe valid, in-bounds matrices (see [`Problem`]) with `m, n, k > 0`, non-overlapping
    /// `C`, and `C` not aliased by `A` or `B`.
    unsafe fn packed(p: &Problem<Self>, threads: usize);

    /// Runs the unpacked small-shape kernel if one applies (SIMD present, `csb == 1`); returns whether
    /// it ran.
    ///
    /// # Safety
    ///
    /// Same as [`Sealed::packed`].
    unsafe fn small(p: &Problem<Self>) -> bool;

    /// The column-panel width (`NR`) of the microkernel the next packed call will use: the layout a
    /// [`PackedB`](super::PackedB) is packed in.
    fn panel_width() -> usize;

    /// Runs the packed driver on a `B` packed ahead of time in panels of width `nr` (see
    /// [`PackedB`](super::PackedB)); returns `false` (doing nothing) if the current microkernel's `NR` is
    /// not `nr` (the tier was changed with [`force_isa`] since packing).
    ///
    /// # Safety
    ///
    /// As [`Sealed::packed`] for A and C; `b` holds `ceil(n / nr) * nr * k` packed elements.
    unsafe fn prepacked(p: &Problem<Self>, b: &[Self], nr: usize, threads: usize) -> bool;
}

macro_rules! impl_sealed {
    ($t:ty, $avx512:ident, $avx2:ident, $portable:ident, $d512:ident, $d2:ident) => {
        impl Sealed for $t {
            unsafe fn packed(p: &Problem<$t>, threads: usize) {
                match isa() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX-512F was detected at run time; the caller upholds the contract.
                    Isa::Avx512 => unsafe { gemm_packed::<$t, x86::$avx512>(p, threads) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX2+FMA was detected at run time; the caller upholds the contract.
                    Isa::Avx2 => unsafe { gemm_packed::<$t, x86::$avx2>(p, threads) },
                    // SAFETY: forwarded caller contract; the portable kernel needs no CPU feature.
                    _ => unsafe { gemm_packed::<$t, $portable>(p, threads) },
                }
            }

            fn panel_width() -> usize {
                match isa() {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => <x86::$avx512 as Kernel<$t>>::NR,
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => <x86::$avx2 as Kernel<$t>>::NR,
                    _ => <$portable as Kernel<$t>>::NR,
                }
            }

            unsafe fn prepacked(p: &Problem<$t>, b: &[$t], nr: usize, threads: usize) -> bool {
                if nr != Self::panel_width() {
                    return false;
                }
                match isa() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX-512F was detected at run time; NR matches; the caller upholds the contract.
                    Isa::Avx512 => unsafe { gemm_prepacked::<$t, x86::$avx512>(p, b, threads) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX2+FMA was detected at run time; NR matches; the caller upholds the contract.
                    Isa::Avx2 => unsafe { gemm_prepacked::<$t, x86::$avx2>(p, b, threads) },
                    // SAFETY: NR matches; forwarded caller contract; the portable kernel needs no CPU feature.
                    _ => unsafe { gemm_prepacked::<$t, $portable>(p, b, threads) },
                }
                true
            }

            unsafe fn small(p: &Problem<$t>) -> bool {
                if p.csb != 1 {
                    return false;
                }
                match isa() {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        // SAFETY: AVX-512F detected; caller contract; csb == 1 as required.
                        unsafe {
                            x86::$d512(
                                p.m, p.k, p.n, p.alpha, p.a, p.rsa, p.csa, p.b, p.rsb, p.beta, p.c.0, p.rsc, p.csc,
                            )
                        };
                        true
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        // SAFETY: AVX2+FMA detected; caller contract; csb == 1 as required.
                        unsafe {
                            x86::$d2(p.m, p.k, p.n, p.alpha, p.a, p.rsa, p.csa, p.b, p.rsb, p.beta, p.c.0, p.rsc, p.csc)
                        };
                        true
                    }
                    _ => false,
                }
            }
        }
    };
}

impl_sealed!(f32, Avx512F32, Avx2F32, PortableF32, avx512_direct_f32, avx2_direct_f32);
impl_sealed!(f64, Avx512F64, Avx2F64, PortableF64, avx512_direct_f64, avx2_direct_f64);

/// Instruction-set tier of the GEMM kernels, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust kernels (what runs on non-x86 CPUs; LLVM vectorizes them for the target).
    Portable,
    /// AVX2+FMA: 6x16 `f32` / 6x8 `f64` microkernels.
    Avx2,
    /// AVX-512F: 12x32 `f32` / 12x16 `f64` microkernels.
    Avx512,
}

/// Cap set by [`force_isa`]: 0 = none, else `Isa as u8 + 1`.
static FORCED: AtomicU8 = AtomicU8::new(0);
/// Detected tier: 0 = not yet, else `Isa as u8 + 1`.
static DETECTED: AtomicU8 = AtomicU8::new(0);

fn isa_from(v: u8) -> Isa {
    match v {
        1 => Isa::Portable,
        2 => Isa::Avx2,
        _ => Isa::Avx512,
    }
}

/// The best kernel tier this CPU supports (runtime detection, cached after the first call).
pub fn detected_isa() -> Isa {
    match DETECTED.load(Ordering::Relaxed) {
        0 => detect(),
        v => isa_from(v),
    }
}

#[cold]
fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    let isa = if is_x86_feature_detected!("avx512f") {
        Isa::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Isa::Avx2
    } else {
        Isa::Portable
    };
    #[cfg(not(target_arch = "x86_64"))]
    let isa = Isa::Portable;
    DETECTED.store(isa as u8 + 1, Ordering::Relaxed);
    isa
}

/// The tier the next call will use: [`detected_isa`], capped by [`force_isa`].
pub fn isa() -> Isa {
    let best = detected_isa();
    match FORCED.load(Ordering::Relaxed) {
        0 => best,
        v => best.min(isa_from(v)),
    }
}

/// Test/benchmark switch: cap the kernel tier for every later call in this process (`None` = no cap).
/// `force_isa(Some(Isa::Portable))` is how the fallback that runs on non-x86 CPUs is tested on x86.
/// A cap above what the CPU supports has no effect.
#[doc(hidden)]
pub fn force_isa(cap: Option<Isa>) {
    FORCED.store(cap.map_or(0, |i| i as u8 + 1), Ordering::Relaxed);
}

/// Name of the microkernel the next call with element type `T` will use, for reports.
pub fn kernel_name<T: GemmScalar>() -> &'static str {
    let f32 = std::mem::size_of::<T>() == 4;
    match (isa(), f32) {
        (Isa::Avx512, true) => "avx512f 12x32 f32",
        (Isa::Avx512, false) => "avx512f 12x16 f64",
        (Isa::Avx2, true) => "avx2+fma 6x16 f32",
        (Isa::Avx2, false) => "avx2+fma 6x8 f64",
        (Isa::Portable, true) => "portable 8x8 f32",
        (Isa::Portable, false) => "portable 4x8 f64",
    }
}
