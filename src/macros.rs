//! Dtype dispatch: run one generic body for the tensor's element type.

/// `dispatch_all!(dtype, T => body)` runs `body` with `T` bound to the Rust type of `dtype`.
#[doc(hidden)]
#[macro_export]
macro_rules! dispatch_all {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            $crate::DType::I64 => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            $crate::DType::Bool => {
                #[allow(dead_code)]
                type $T = bool;
                $body
            }
        }
    };
}

/// `dispatch_float!(dtype, "op", T => body)`: like `dispatch_all!` for `f32`/`f64`, panicking with a message
/// naming the op for other dtypes.
#[doc(hidden)]
#[macro_export]
macro_rules! dispatch_float {
    ($dtype:expr, $op:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            other => $crate::error::panic_msg(format!("{}: expected a float tensor, got dtype {}", $op, other)),
        }
    };
}
