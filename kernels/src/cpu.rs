//! CPU feature detection and the one-time "SIMD unused" warning.
//!
//! The `wide` SIMD paths pick their instruction set at **compile time**: built without
//! `-C target-cpu=x86-64-v3` (or `-C target-feature=+avx2,+fma`), `wide::f32x8` falls back to two SSE
//! halves and every elementwise kernel runs several times slower. Nothing fails; it is just slow. So the
//! elementwise entry points call [`warn_if_simd_unused`], which prints one line to stderr, once per process,
//! when the build lacks AVX2 but the running CPU has it. The check costs one atomic load after the first call.

use std::sync::Once;

static WARN_ONCE: Once = Once::new();

/// True when this build's `wide` paths were compiled with AVX2 and FMA enabled.
pub const fn simd_compiled_with_avx2() -> bool {
    cfg!(all(target_feature = "avx2", target_feature = "fma"))
}

/// True when the running CPU supports AVX2 and FMA (always false on non-x86 targets).
pub fn cpu_has_avx2_fma() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    {
        false
    }
}

/// Prints one warning to stderr (once per process) when the SIMD kernels were compiled without AVX2/FMA
/// on a CPU that has them. Cheap enough to call from every kernel entry point.
#[inline]
pub fn warn_if_simd_unused() {
    if simd_compiled_with_avx2() {
        return;
    }
    WARN_ONCE.call_once(|| {
        if cpu_has_avx2_fma() {
            eprintln!(
                "tensorgrad-kernels: warning: the elementwise SIMD kernels were compiled without AVX2/FMA \
                 but this CPU has them, so they run several times slower. Build with \
                 `-C target-cpu=x86-64-v3` (see .cargo/config.toml; a RUSTFLAGS variable replaces it)."
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_is_callable_many_times() {
        for _ in 0..3 {
            warn_if_simd_unused();
        }
        // The workspace builds with x86-64-v3, so on x86_64 the SIMD paths must be AVX2.
        #[cfg(target_arch = "x86_64")]
        assert!(simd_compiled_with_avx2() || !cpu_has_avx2_fma() || std::env::var_os("RUSTFLAGS").is_some());
    }
}
