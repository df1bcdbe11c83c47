//! 2-d convolution (NCHW, PyTorch semantics) by im2col + GEMM; conv1d is conv2d with `h = 1`, `kh = 1`.
//!
//! # Math
//! Input `x: [N, C, H, W]`, weight `w: [O, C/G, KH, KW]`, groups `G` (channel block `g` of the input feeds
//! output block `g`), stride `s`, padding `p`, dilation `d`:
//! ```text
//! OH = (H + 2·ph - dh·(KH-1) - 1)/sh + 1            (likewise OW)
//! y[n,o,oy,ox] = b[o] + Σ_{c,i,j} w[o,c,i,j] · x[n, g·C/G + c, oy·sh - ph + i·dh, ox·sw - pw + j·dw]
//! ```
//! (out-of-range input positions read as 0). With `col[(c,i,j), (oy,ox)]` = that input value (im2col,
//! `K = C/G·KH·KW` rows, `OH·OW` columns), per image and group:
//! - forward:        `Y_g = W_g · col`                      (`[O/G, K]·[K, OH·OW]`)
//! - input grad:     `col = W_gᵀ · dY_g`, then col2im scatters (adds) each column entry back to its pixel
//! - weight grad:    `dW_gᵀ = Σ_n col · dY_{n,g}ᵀ`          (`[K, OH·OW]·[OH·OW, O/G]`), `db[o] = Σ_{n,oy,ox} dy`
//!
//! A 1×1 kernel with stride 1, no padding is used without im2col (`col` is the input itself).
//!
//! # Threads and determinism
//! Forward and input-gradient run chunks of images in parallel (each image computed by one task, in that
//! task's im2col buffer, the same way whatever the chunking); the weight gradient sums its images in
//! [`WGRAD_CHUNKS`] chunks fixed by the batch size and adds the partial sums in chunk order. The GEMMs are
//! per image and small (the unpacked path, one thread). Results are therefore identical for any thread count.
//!
//! # Conv1d
//! A conv1d over `[N, C, L]` with kernel `K` is [`Conv2dGeometry`] with `h = 1, w = L, kh = 1, kw = K`,
//! `stride = (1, s)`, `padding = (0, p)`, `dilation = (1, d)`; the memory layout is identical.

use rayon::prelude::*;

use crate::elementwise::{check_len, Float};

/// Geometry of a 2-d convolution (all sizes in elements; PyTorch's `Conv2d` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Batch size `N`.
    pub n: usize,
    /// Input channels `C`.
    pub in_c: usize,
    /// Input height `H`.
    pub h: usize,
    /// Input width `W`.
    pub w: usize,
    /// Output channels `O`.
    pub out_c: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// `(sh, sw)`, each ≥ 1.
    pub stride: (usize, usize),
    /// `(ph, pw)` zero padding on both sides.
    pub padding: (usize, usize),
    /// `(dh, dw)`, each ≥ 1.
    pub dilation: (usize, usize),
    /// Groups `G` (divides `in_c` and `out_c`).
    pub groups: usize,
}

impl Conv2dGeometry {
    /// A geometry with stride 1, no padding, dilation 1, one group.
    pub fn new(n: usize, in_c: usize, h: usize, w: usize, out_c: usize, kh: usize, kw: usize) -> Self {
        Conv2dGeometry { n, in_c, h, w, out_c, kh, kw, stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1 }
    }

    /// Checks the geometry; `Err` names the problem.
    pub fn validate(&self) -> Result<(), String> {
        let (sh, sw) = self.stride;
        let (dh, dw) = self.dilation;
        if sh == 0 || sw == 0 {
            return Err(format!("stride must be ≥ 1, got {:?}", self.stride));
        }
        if dh == 0 || dw == 0 {
            return Err(format!("dilation must be ≥ 1, got {:?}", self.dilation));
        }
        if self.kh == 0 || self.kw == 0 {
            return Err(format!("kernel must be at least 1x1, got {}x{}", self.kh, self.kw));
        }
        if self.groups == 0 || !self.in_c.is_multiple_of(self.groups) || !self.out_c.is_multiple_of(self.groups) {
            return Err(format!(
                "groups = {} must divide in_c = {} and out_c = {}",
                self.groups, self.in_c, self.out_c
            ));
        }
        let eh = dh * (self.kh - 1) + 1;
        let ew = dw * (self.kw - 1) + 1;
        if self.h + 2 * self.padding.0 < eh || self.w + 2 * self.padding.1 < ew {
            return Err(format!(
                "padded input {}x{} is smaller than the dilated kernel {eh}x{ew}",
                self.h + 2 * self.padding.0,
                self.w + 2 * self.padding.1
            ));
        }
        Ok(())
    }

    #[track_caller]
    fn check(&self, kernel: &str) {
        if let Err(e) = self.validate() {
            panic!("{kernel}: invalid geometry {self:?}: {e}");
        }
    }

    /// Output height `(H + 2ph - dh(KH-1) - 1)/sh + 1`.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding.0 - self.dilation.0 * (self.kh - 1) - 1) / self.stride.0 + 1
    }

    /// Output width `(W + 2pw - dw(KW-1) - 1)/sw + 1`.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding.1 - self.dilation.1 * (self.kw - 1) - 1) / self.stride.1 + 1
    }

    /// `N·C·H·W`.
    pub fn input_len(&self) -> usize {
        self.n * self.in_c * self.h * self.w
    }

    /// `O·(C/G)·KH·KW`.
    pub fn weight_len(&self) -> usize {
        self.out_c * self.col_rows()
    }

    /// `N·O·OH·OW`.
    pub fn output_len(&self) -> usize {
        self.n * self.out_c * self.out_h() * self.out_w()
    }

    /// Rows of one im2col matrix: `K = (C/G)·KH·KW`.
    pub fn col_rows(&self) -> usize {
        self.in_c / self.groups * self.kh * self.kw
    }

    /// Columns of one im2col matrix: `OH·OW`.
    pub fn col_cols(&self) -> usize {
        self.out_h() * self.out_w()
    }

    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == (1, 1) && self.padding == (0, 0)
    }
}

/// `[lo, hi)`: output positions `o < out` whose input index `o·s + off - pad` lies in `[0, len)`.
fn valid_range(out: usize, s: usize, off: usize, pad: usize, len: usize) -> (usize, usize) {
    // o·s + off ≥ pad  and  o·s + off < pad + len
    let lo = if off >= pad { 0 } else { (pad - off).div_ceil(s) };
    let hi = if pad + len > off { ((pad + len - off - 1) / s + 1).min(out) } else { 0 };
    (lo.min(hi), hi)
}

/// Stores 8 values into `dst[..8]` as one fixed-size write.
#[inline(always)]
fn store8<T: Copy>(dst: &mut [T], v: [T; 8]) {
    let d: &mut [T; 8] = (&mut dst[..8]).try_into().expect("8 lanes");
    *d = v;
}

/// `dst.copy_from_slice(src)` for `len >= 8` as 8-wide blocks and one overlapping last block (no call).
#[inline(always)]
fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    let len = dst.len();
    debug_assert!(len >= 8 && src.len() == len);
    let mut k = 0;
    while k + 8 <= len {
        store8(&mut dst[k..], src[k..k + 8].try_into().expect("8 lanes"));
        k += 8;
    }
    if k < len {
        store8(&mut dst[len - 8..], src[len - 8..].try_into().expect("8 lanes"));
    }
}

/// im2col of one image and one group: `input` is `[C/G, H, W]`, `col` is `[K, OH·OW]` (fully written).
///
/// # Panics
/// On a length mismatch or an invalid geometry.
#[track_caller]
pub fn im2col<T: Float>(g: &Conv2dGeometry, input: &[T], col: &mut [T]) {
    g.check("im2col");
    let cg = g.in_c / g.groups;
    check_len("im2col", "input", input.len(), cg * g.h * g.w);
    check_len("im2col", "col", col.len(), g.col_rows() * g.col_cols());
    let (oh, ow) = (g.out_h(), g.out_w());
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let (dh, dw) = g.dilation;
    let mut rows = col.chunks_exact_mut(oh * ow);
    for c in 0..cg {
        let plane = &input[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (ylo, yhi) = valid_range(oh, sh, i * dh, ph, g.h);
            for j in 0..g.kw {
                let row = rows.next().expect("K rows");
                let (xlo, xhi) = valid_range(ow, sw, j * dw, pw, g.w);
                if xlo >= xhi || ylo >= yhi {
                    row.fill(T::ZERO);
                    continue;
                }
                // Rows of the padding band: one fill each side.
                row[..ylo * ow].fill(T::ZERO);
                row[yhi * ow..].fill(T::ZERO);
                let ix0 = xlo * sw + j * dw - pw;
                if sw == 1 && xhi - xlo >= 8 && xlo <= 8 && ow - xhi <= 8 {
                    // Short rows (LeNet's are 10-28 wide): fixed-size 8-wide stores instead of a memset and
                    // a memcpy call per row. The zero blocks go first; the copy overwrites what they overlap.
                    let len = xhi - xlo;
                    for (oy, out) in row.chunks_exact_mut(ow).enumerate().take(yhi).skip(ylo) {
                        let iy = oy * sh + i * dh - ph;
                        let src = &plane[iy * g.w + ix0..iy * g.w + ix0 + len];
                        if xlo > 0 {
                            store8(&mut out[..8], [T::ZERO; 8]);
                        }
                        if xhi < ow {
                            store8(&mut out[ow - 8..], [T::ZERO; 8]);
                        }
                        copy_short(&mut out[xlo..xhi], src);
                    }
                    continue;
                }
                for (oy, out) in row.chunks_exact_mut(ow).enumerate().take(yhi).skip(ylo) {
                    let iy = oy * sh + i * dh - ph;
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    out[..xlo].fill(T::ZERO);
                    out[xhi..].fill(T::ZERO);
                    if sw == 1 {
                        out[xlo..xhi].copy_from_slice(&src[ix0..ix0 + (xhi - xlo)]);
                    } else {
                        for (k, o) in out[xlo..xhi].iter_mut().enumerate() {
                            *o = src[ix0 + k * sw];
                        }
                    }
                }
            }
        }
    }
}

/// col2im of one image and one group: **adds** every entry of `col` (`[K, OH·OW]`) into the input pixel it
/// was gathered from (`grad_input` is `[C/G, H, W]`).
///
/// # Panics
/// On a length mismatch or an invalid geometry.
#[track_caller]
pub fn col2im<T: Float>(g: &Conv2dGeometry, col: &[T], grad_input: &mut [T]) {
    g.check("col2im");
    let cg = g.in_c / g.groups;
    check_len("col2im", "grad_input", grad_input.len(), cg * g.h * g.w);
    check_len("col2im", "col", col.len(), g.col_rows() * g.col_cols());
    let (oh, ow) = (g.out_h(), g.out_w());
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let (dh, dw) = g.dilation;
    let mut rows = col.chunks_exact(oh * ow);
    for c in 0..cg {
        let plane = &mut grad_input[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (ylo, yhi) = valid_range(oh, sh, i * dh, ph, g.h);
            for j in 0..g.kw {
                let row = rows.next().expect("K rows");
                let (xlo, xhi) = valid_range(ow, sw, j * dw, pw, g.w);
                if xlo >= xhi {
                    continue;
                }
                for oy in ylo..yhi {
                    let iy = oy * sh + i * dh - ph;
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let src = &row[oy * ow + xlo..oy * ow + xhi];
                    let ix0 = xlo * sw + j * dw - pw;
                    for (k, &v) in src.iter().enumerate() {
                        dst[ix0 + k * sw] += v;
                    }
                }
            }
        }
    }
}

/// `C = alpha·A·B + beta·C` (A `m×k`, B `k×n`, C `m×n`, strides in elements; `beta = 0` never reads C).
/// The one place convolution calls a GEMM.
#[allow(clippy::too_many_arguments)]
fn gemm_for_conv<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    csb: usize,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
) {
    if let (Some(a), Some(b)) = (T::as_f32(a), T::as_f32(b)) {
        let c = T::as_f32_mut(c).expect("same type as A");
        crate::gemm::sgemm(m, k, n, alpha.to_f64() as f32, a, rsa, csa, b, rsb, csb, beta.to_f64() as f32, c, rsc, csc);
    } else {
        let (a, b) = (T::as_f64(a).expect("f32 or f64"), T::as_f64(b).expect("f32 or f64"));
        let c = T::as_f64_mut(c).expect("same type as A");
        crate::gemm::dgemm(m, k, n, alpha.to_f64(), a, rsa, csa, b, rsb, csb, beta.to_f64(), c, rsc, csc);
    }
}

/// Work (multiply-adds) above which images are processed in parallel.
pub const CONV_PAR_THRESHOLD: usize = 1 << 20;

/// The weight gradient sums its images in this many fixed batch chunks (fewer when the batch is smaller),
/// one partial sum per chunk, added in chunk order: the chunks depend on the batch size only, so the result
/// is bitwise the same for any number of threads.
pub const WGRAD_CHUNKS: usize = 8;

fn work(g: &Conv2dGeometry) -> usize {
    g.output_len() * g.col_rows()
}

/// True when the images of `g` should be spread over threads.
fn parallel(g: &Conv2dGeometry) -> bool {
    work(g) >= CONV_PAR_THRESHOLD && g.n > 1 && rayon::current_num_threads() > 1
}

/// Runs `body(first_image, chunk)` over `out` (`g.n` images of `img_len` elements each), in chunks of
/// whole images: a few chunks per thread when [`parallel`], one chunk otherwise. Each image is computed
/// the same way whatever its chunk, so the result does not depend on the chunking.
fn for_image_chunks<T: Float>(
    g: &Conv2dGeometry,
    out: &mut [T],
    img_len: usize,
    body: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if img_len == 0 || g.n == 0 {
        return;
    }
    if parallel(g) {
        // Several chunks per thread so that a thread slowed by other work does not hold up the call.
        let per = g.n.div_ceil(4 * rayon::current_num_threads()).max(1);
        out.par_chunks_mut(per * img_len).enumerate().for_each(|(t, o)| body(t * per, o));
    } else {
        body(0, out);
    }
}

/// Convolution forward: `output = conv2d(input, weight) + bias`.
///
/// Per image and group, `Y_g = W_g · im2col(x_g)`; with a bias the output planes are first filled with
/// `b[o]` and the product is accumulated onto them (no second pass over the output).
///
/// # Shapes
/// `input: [N, C, H, W]`, `weight: [O, C/G, KH, KW]`, `bias: [O]`, `output: [N, O, OH, OW]`.
///
/// # Panics
/// On an invalid geometry or a length mismatch.
#[track_caller]
pub fn conv2d_forward<T: Float>(g: &Conv2dGeometry, input: &[T], weight: &[T], bias: Option<&[T]>, output: &mut [T]) {
    g.check("conv2d_forward");
    check_len("conv2d_forward", "input", input.len(), g.input_len());
    check_len("conv2d_forward", "weight", weight.len(), g.weight_len());
    check_len("conv2d_forward", "output", output.len(), g.output_len());
    if let Some(b) = bias {
        check_len("conv2d_forward", "bias", b.len(), g.out_c);
    }
    if output.is_empty() {
        return;
    }
    let (k, p) = (g.col_rows(), g.col_cols());
    let (cg, og) = (g.in_c / g.groups, g.out_c / g.groups);
    let (in_img, out_img, in_grp) = (g.in_c * g.h * g.w, g.out_c * p, cg * g.h * g.w);
    for_image_chunks(g, output, out_img, |first, out| {
        let mut col = if g.is_pointwise() { Vec::new() } else { vec![T::ZERO; k * p] };
        for (i, y) in out.chunks_exact_mut(out_img).enumerate() {
            let x = &input[(first + i) * in_img..(first + i + 1) * in_img];
            let beta = match bias {
                Some(b) => {
                    for (plane, &bo) in y.chunks_exact_mut(p).zip(b) {
                        plane.fill(bo);
                    }
                    T::ONE
                }
                None => T::ZERO,
            };
            for grp in 0..g.groups {
                let xg = &x[grp * in_grp..(grp + 1) * in_grp];
                let bmat: &[T] = if g.is_pointwise() {
                    xg
                } else {
                    im2col(g, xg, &mut col);
                    &col
                };
                let wg = &weight[grp * og * k..(grp + 1) * og * k];
                let yg = &mut y[grp * og * p..(grp + 1) * og * p];
                gemm_for_conv(og, k, p, T::ONE, wg, k, 1, bmat, p, 1, beta, yg, p, 1);
            }
        }
    });
}

/// Convolution input gradient: `grad_input = ∂L/∂input` given `grad_output` (overwrites `grad_input`).
///
/// Per image and group, `col = W_gᵀ · dY_g` then col2im (a 1×1 stride-1 kernel writes `grad_input` directly).
///
/// # Shapes
/// `grad_output: [N, O, OH, OW]`, `weight: [O, C/G, KH, KW]`, `grad_input: [N, C, H, W]`.
///
/// # Panics
/// On an invalid geometry or a length mismatch.
#[track_caller]
pub fn conv2d_backward_input<T: Float>(g: &Conv2dGeometry, grad_output: &[T], weight: &[T], grad_input: &mut [T]) {
    g.check("conv2d_backward_input");
    check_len("conv2d_backward_input", "grad_output", grad_output.len(), g.output_len());
    check_len("conv2d_backward_input", "weight", weight.len(), g.weight_len());
    check_len("conv2d_backward_input", "grad_input", grad_input.len(), g.input_len());
    if grad_input.is_empty() {
        return;
    }
    let (k, p) = (g.col_rows(), g.col_cols());
    let (cg, og) = (g.in_c / g.groups, g.out_c / g.groups);
    let (in_img, out_img, in_grp) = (g.in_c * g.h * g.w, g.out_c * p, cg * g.h * g.w);
    for_image_chunks(g, grad_input, in_img, |first, gx_chunk| {
        let mut col = if g.is_pointwise() { Vec::new() } else { vec![T::ZERO; k * p] };
        for (i, gx) in gx_chunk.chunks_exact_mut(in_img).enumerate() {
            let dy = &grad_output[(first + i) * out_img..(first + i + 1) * out_img];
            if !g.is_pointwise() {
                gx.fill(T::ZERO);
            }
            for grp in 0..g.groups {
                let wg = &weight[grp * og * k..(grp + 1) * og * k];
                let dyg = &dy[grp * og * p..(grp + 1) * og * p];
                let gxg = &mut gx[grp * in_grp..(grp + 1) * in_grp];
                // col[K, P] = W_gᵀ[K, O/G] · dY_g[O/G, P]
                if g.is_pointwise() {
                    gemm_for_conv(k, og, p, T::ONE, wg, 1, k, dyg, p, 1, T::ZERO, gxg, p, 1);
                } else {
                    gemm_for_conv(k, og, p, T::ONE, wg, 1, k, dyg, p, 1, T::ZERO, &mut col, p, 1);
                    col2im(g, &col, gxg);
                }
            }
        }
    });
}

/// Convolution weight (and bias) gradient; overwrites `grad_weight` and `grad_bias`.
///
/// Per image and group, `dW_gᵀ[K, O/G] += im2col(x_g)[K, P] · dY_gᵀ[P, O/G]`: the reduction runs along
/// im2col's contiguous rows and a small transposed copy of `dY_g`, so the GEMM reads both operands in place
/// (no packing of the `K x P` matrix). Images are summed in [`WGRAD_CHUNKS`] fixed chunks (in parallel for
/// large problems), whose partial sums are then added in chunk order; `db[o] = Σ dy` likewise per chunk.
///
/// # Shapes
/// `input: [N, C, H, W]`, `grad_output: [N, O, OH, OW]`, `grad_weight: [O, C/G, KH, KW]`, `grad_bias: [O]`.
///
/// # Panics
/// On an invalid geometry or a length mismatch.
#[track_caller]
pub fn conv2d_backward_weight<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
) {
    g.check("conv2d_backward_weight");
    check_len("conv2d_backward_weight", "input", input.len(), g.input_len());
    check_len("conv2d_backward_weight", "grad_output", grad_output.len(), g.output_len());
    check_len("conv2d_backward_weight", "grad_weight", grad_weight.len(), g.weight_len());
    if let Some(db) = &grad_bias {
        check_len("conv2d_backward_weight", "grad_bias", db.len(), g.out_c);
    }
    let (k, p) = (g.col_rows(), g.col_cols());
    let (cg, og) = (g.in_c / g.groups, g.out_c / g.groups);
    let (in_img, out_img, in_grp) = (g.in_c * g.h * g.w, g.out_c * p, cg * g.h * g.w);
    let with_bias = grad_bias.is_some();
    // One partial per chunk: dWᵀ per group ([G][K][O/G]) followed by db ([O]).
    let part = g.weight_len() + g.out_c;
    let chunks = g.n.clamp(1, WGRAD_CHUNKS);
    let per = g.n.div_ceil(chunks).max(1);
    let mut partials = vec![T::ZERO; part * g.n.div_ceil(per).max(1)];
    let chunk = |c: usize, acc: &mut [T]| {
        let (dwt, db) = acc.split_at_mut(g.weight_len());
        let mut col = if g.is_pointwise() { Vec::new() } else { vec![T::ZERO; k * p] };
        let mut dyt = vec![T::ZERO; og * p];
        for nimg in c * per..((c + 1) * per).min(g.n) {
            let x = &input[nimg * in_img..(nimg + 1) * in_img];
            let dy = &grad_output[nimg * out_img..(nimg + 1) * out_img];
            if with_bias {
                for (d, plane) in db.iter_mut().zip(dy.chunks_exact(p)) {
                    *d += crate::reduce::sum(plane);
                }
            }
            for grp in 0..g.groups {
                let xg = &x[grp * in_grp..(grp + 1) * in_grp];
                let dyg = &dy[grp * og * p..(grp + 1) * og * p];
                // dY_gᵀ [P, O/G]
                for (o, plane) in dyg.chunks_exact(p).enumerate() {
                    for (j, &v) in plane.iter().enumerate() {
                        dyt[j * og + o] = v;
                    }
                }
                let amat: &[T] = if g.is_pointwise() {
                    xg
                } else {
                    im2col(g, xg, &mut col);
                    &col
                };
                let dwg = &mut dwt[grp * k * og..(grp + 1) * k * og];
                // dW_gᵀ[K, O/G] += col[K, P] · dY_gᵀ[P, O/G]
                gemm_for_conv(k, p, og, T::ONE, amat, p, 1, &dyt, og, 1, T::ONE, dwg, og, 1);
            }
        }
    };
    if p > 0 {
        if parallel(g) {
            partials.par_chunks_mut(part).enumerate().for_each(|(c, acc)| chunk(c, acc));
        } else {
            partials.chunks_mut(part).enumerate().for_each(|(c, acc)| chunk(c, acc));
        }
    }
    // Sum the partials in chunk order, transposing dWᵀ back to [O, K] per group.
    let mut sums = partials.chunks_exact(part);
    let mut total = sums.next().expect("at least one chunk").to_vec();
    for s in sums {
        for (t, &v) in total.iter_mut().zip(s) {
            *t += v;
        }
    }
    let (dwt, db) = total.split_at(g.weight_len());
    for grp in 0..g.groups {
        for o in 0..og {
            for kk in 0..k {
                grad_weight[(grp * og + o) * k + kk] = dwt[(grp * k + kk) * og + o];
            }
        }
    }
    if let Some(gb) = grad_bias {
        gb.copy_from_slice(db);
    }
}
