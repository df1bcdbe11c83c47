//! PyTorch interop at the state-dict level: a file written by `safetensors.torch.save_file(model.state_dict())`
//! (small MLP + CNN with BatchNorm + float64 LSTM) loads here with the same names, shapes, dtypes and exact
//! values; a file written here is the committed `from_tensorgrad.safetensors`, which
//! `gen_checkpoint.py --verify` loads in PyTorch (strict) bit for bit.

mod common;

use std::collections::HashMap;
use tensorgrad::io::{load_from_bytes, load_into, load_state_dict, serialize_state_dict};
use tensorgrad::{DType, Tensor};

/// A fixture tensor rebuilt from its bit patterns (floats) so the comparison is exact.
fn exact_tensor(v: &serde_json::Value) -> Tensor {
    let t = common::tensor(v);
    let bits: Vec<u64> = match v.get("bits") {
        Some(b) => b.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect(),
        None => return t,
    };
    match t.dtype() {
        DType::F32 => Tensor::from_vec(bits.iter().map(|&b| f32::from_bits(b as u32)).collect::<Vec<_>>(), t.shape()),
        _ => Tensor::from_vec(bits.iter().map(|&b| f64::from_bits(b)).collect::<Vec<_>>(), t.shape()),
    }
}

fn expected() -> (Vec<(String, Tensor)>, HashMap<String, String>) {
    let fx = common::load_fixture("checkpoint/expected.json");
    let tensors = fx["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = n.as_str().unwrap().to_string();
            (n.clone(), exact_tensor(&fx["tensors"][&n]))
        })
        .collect();
    let meta =
        fx["metadata"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    (tensors, meta)
}

/// Same names, dtypes, shapes and bit patterns.
fn assert_same(got: &[(String, Tensor)], want: &[(String, Tensor)]) {
    let got: HashMap<&str, &Tensor> = got.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(got.len(), want.len());
    for (name, w) in want {
        let g = got.get(name.as_str()).unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!(g.dtype(), w.dtype(), "{name}: dtype");
        assert_eq!(g.shape(), w.shape(), "{name}: shape");
        let bits = |t: &Tensor| -> Vec<u64> {
            match t.dtype() {
                DType::F32 => t.to_vec::<f32>().iter().map(|x| x.to_bits() as u64).collect(),
                DType::F64 => t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect(),
                DType::I64 => t.to_vec::<i64>().iter().map(|&x| x as u64).collect(),
                DType::Bool => t.to_vec::<bool>().iter().map(|&x| x as u64).collect(),
            }
        };
        assert_eq!(bits(g), bits(w), "{name}: values");
    }
}

#[test]
fn pytorch_state_dict_file_loads_with_exact_names_shapes_and_values() {
    let (tensors, meta) = load_state_dict(common::fixture_path("checkpoint/torch_model.safetensors")).unwrap();
    let (want, want_meta) = expected();
    assert_same(&tensors, &want);
    assert_eq!(meta, want_meta);
    let dtypes: Vec<DType> = want.iter().map(|(_, t)| t.dtype()).collect();
    assert!(dtypes.contains(&DType::F32) && dtypes.contains(&DType::F64) && dtypes.contains(&DType::I64));
}

#[test]
fn pytorch_state_dict_loads_strictly_into_a_model_of_the_same_architecture() {
    let (loaded, _) = load_state_dict(common::fixture_path("checkpoint/torch_model.safetensors")).unwrap();
    let (want, _) = expected();
    // The model side: tensors with the PyTorch names, shapes and dtypes (what Module::state_dict returns).
    let model: Vec<(String, Tensor)> =
        want.iter().map(|(n, t)| (n.clone(), Tensor::zeros_dtype(t.shape(), t.dtype()))).collect();
    let report = load_into(&model, &loaded, true).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.loaded.len(), 15);
    assert_same(&model, &want);
}

/// The state with every float doubled and the int64 counter plus one (what gen_checkpoint.py --verify expects).
fn transformed() -> Vec<(String, Tensor)> {
    expected()
        .0
        .into_iter()
        .map(|(n, t)| {
            let t = match t.dtype() {
                DType::I64 => Tensor::from_vec(t.to_vec::<i64>().iter().map(|x| x + 1).collect::<Vec<_>>(), t.shape()),
                DType::F32 => {
                    Tensor::from_vec(t.to_vec::<f32>().iter().map(|x| x * 2.0).collect::<Vec<_>>(), t.shape())
                }
                _ => Tensor::from_vec(t.to_vec::<f64>().iter().map(|x| x * 2.0).collect::<Vec<_>>(), t.shape()),
            };
            (n, t)
        })
        .collect()
}

#[test]
fn file_written_here_is_the_committed_file_pytorch_verified() {
    let meta: HashMap<String, String> =
        [("format", "pt"), ("writer", "tensorgrad")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let bytes = serialize_state_dict(&transformed(), &meta).unwrap();
    let path = common::fixture_path("checkpoint/from_tensorgrad.safetensors");
    if std::env::var_os("TENSORGRAD_REGEN_FIXTURES").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let (ours, ours_meta) = load_from_bytes(&bytes).unwrap();
    let (committed, committed_meta) = load_state_dict(&path).unwrap();
    assert_same(&ours, &committed);
    assert_eq!(ours_meta, committed_meta);
    assert_eq!(bytes.len(), std::fs::metadata(&path).unwrap().len() as usize);
}
