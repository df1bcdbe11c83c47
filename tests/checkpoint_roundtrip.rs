//! Checkpoints: bit-exact round trips, strict and non-strict loading, optimizer state and training metadata,
//! and atomic saves that survive a failure midway.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use tensorgrad::io::{
    atomic_write, load_into, load_state_dict, save_state_dict, serialize_state_dict, Checkpoint, CheckpointError,
};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
use tensorgrad::{DType, Tensor};

/// A fresh directory for one test, removed by the guard.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tensorgrad-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t.to_vec::<f32>().iter().map(|x| x.to_bits() as u64).collect(),
        DType::F64 => t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect(),
        DType::I64 => t.to_vec::<i64>().iter().map(|&x| x as u64).collect(),
        DType::Bool => t.to_vec::<bool>().iter().map(|&x| x as u64).collect(),
    }
}

fn assert_bit_exact(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    let b: HashMap<&str, &Tensor> = b.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(a.len(), b.len());
    for (n, t) in a {
        let u = b[n.as_str()];
        assert_eq!((t.dtype(), t.shape()), (u.dtype(), u.shape()), "{n}");
        assert_eq!(bits(t), bits(u), "{n}");
    }
}

fn awkward_state() -> Vec<(String, Tensor)> {
    let special =
        vec![0.0f32, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE / 4.0, f32::MAX, 1.0 / 3.0];
    vec![
        ("layer.weight".into(), Tensor::from_vec(special, &[2, 4])),
        ("layer.weight_t".into(), Tensor::randn(&[3, 5]).t()), // non-contiguous: written row-major
        ("f64".into(), Tensor::from_vec(vec![std::f64::consts::PI, -1e-310, f64::NAN, 1e300], &[4])),
        ("counter".into(), Tensor::from_vec(vec![i64::MIN, -1, 0, i64::MAX], &[2, 2])),
        ("scalar".into(), Tensor::from_vec(vec![7i64], &[])),
        ("mask".into(), Tensor::from_vec(vec![true, false, true], &[3])),
        ("empty".into(), Tensor::zeros(&[0, 3])),
    ]
}

#[test]
fn round_trip_is_bit_exact_for_every_dtype_and_layout() {
    let dir = TempDir::new("roundtrip");
    let path = dir.file("state.safetensors");
    let state = awkward_state();
    let meta: HashMap<String, String> = [("note".to_string(), "ünïcode ✓".to_string())].into();
    save_state_dict(&path, &state, &meta).unwrap();
    let (loaded, loaded_meta) = load_state_dict(&path).unwrap();
    assert_bit_exact(&state, &loaded);
    assert_eq!(loaded_meta, meta);
    assert_eq!(dir.entries(), ["state.safetensors"], "no temporary files left behind");
}

#[test]
fn duplicate_names_are_an_error() {
    let t = Tensor::zeros(&[1]);
    let err = serialize_state_dict(&[("a".into(), t.clone()), ("a".into(), t)], &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("duplicate"), "{err}");
}

#[test]
fn strict_load_reports_every_problem_at_once_and_copies_nothing() {
    let model = vec![
        ("w".to_string(), Tensor::zeros(&[2, 2])),
        ("b".to_string(), Tensor::zeros(&[2])),
        ("gone".to_string(), Tensor::zeros(&[1])),
        ("n".to_string(), Tensor::zeros_dtype(&[], DType::I64)),
        ("ok".to_string(), Tensor::zeros(&[3])),
    ];
    let loaded = vec![
        ("w".to_string(), Tensor::ones(&[2, 3])),
        ("b".to_string(), Tensor::ones_dtype(&[2], DType::F64)),
        ("n".to_string(), Tensor::from_vec(vec![5i64], &[])),
        ("ok".to_string(), Tensor::ones(&[3])),
        ("extra".to_string(), Tensor::ones(&[1])),
    ];
    let err = load_into(&model, &loaded, true).unwrap_err();
    let msg = err.to_string();
    for needle in
        ["missing keys: gone", "unexpected keys: extra", "size mismatch for w", "[2, 3]", "dtype mismatch for b"]
    {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    match err {
        CheckpointError::StateDictMismatch(r) => {
            assert_eq!(r.missing, ["gone"]);
            assert_eq!(r.unexpected, ["extra"]);
            assert_eq!(r.shape_mismatches.len(), 1);
            assert_eq!(r.dtype_mismatches, [("b".to_string(), DType::F32, DType::F64)]);
        }
        other => panic!("{other}"),
    }
    assert_eq!(model[4].1.to_vec::<f32>(), vec![0.0; 3], "strict failure copies nothing");

    let report = load_into(&model, &loaded, false).unwrap();
    assert_eq!(report.loaded, ["n", "ok"]);
    assert_eq!(report.missing, ["gone"]);
    assert_eq!(model[3].1.to_vec::<i64>(), vec![5]);
    assert_eq!(model[4].1.to_vec::<f32>(), vec![1.0; 3]);
    assert_eq!(model[0].1.to_vec::<f32>(), vec![0.0; 4], "mismatched shapes are skipped");
}

#[test]
fn checkpoint_with_optimizer_state_resumes_training_identically() {
    let dir = TempDir::new("resume");
    let path = dir.file("ckpt.safetensors");
    tensorgrad::manual_seed(3);
    let w = Tensor::normal_dtype(&[4, 3], 0.0, 1.0, DType::F64).requires_grad_();
    let b = Tensor::zeros_dtype(&[3], DType::F64).requires_grad_();
    let x = Tensor::normal_dtype(&[5, 4], 0.0, 1.0, DType::F64);
    let cfg = AdamConfig { lr: 0.05, amsgrad: true, ..AdamConfig::adamw() };
    let train = |w: &Tensor, b: &Tensor, opt: &mut Adam, steps: usize| {
        for _ in 0..steps {
            opt.zero_grad();
            (x.matmul(w) + b).tanh().powf(2.0).sum().backward();
            opt.step();
        }
    };
    let mut opt = Adam::new(vec![w.clone(), b.clone()], cfg);
    train(&w, &b, &mut opt, 3);
    opt.set_lr(0.02); // as a scheduler would
    let ckpt = Checkpoint {
        model: vec![("w".into(), w.clone()), ("b".into(), b.clone())],
        optimizer: Some(opt.state_dict()),
        epoch: 2,
        step: 3,
        seed: 3,
        extra: [("run".to_string(), "test".to_string())].into(),
    };
    ckpt.save(&path).unwrap();

    let loaded = Checkpoint::load(&path).unwrap();
    assert_eq!((loaded.epoch, loaded.step, loaded.seed), (2, 3, 3));
    assert_eq!(loaded.extra, ckpt.extra);
    let w2 = Tensor::zeros_dtype(&[4, 3], DType::F64).requires_grad_();
    let b2 = Tensor::zeros_dtype(&[3], DType::F64).requires_grad_();
    let model2 = vec![("w".to_string(), w2.clone()), ("b".to_string(), b2.clone())];
    load_into(&model2, &loaded.model, true).unwrap();
    let mut opt2 = Adam::new(vec![w2.clone(), b2.clone()], cfg);
    opt2.load_state_dict(loaded.optimizer.as_ref().unwrap()).unwrap();
    assert_eq!(opt2.lr(), 0.02);
    assert_eq!(opt2.state()[0].as_ref().unwrap().step, 3);

    train(&w, &b, &mut opt, 4);
    train(&w2, &b2, &mut opt2, 4);
    assert_eq!(bits(&w), bits(&w2));
    assert_eq!(bits(&b), bits(&b2));
}

/// A writer that accepts `left` bytes, then fails like a full disk.
struct FailAfter<'a> {
    inner: &'a mut dyn Write,
    left: usize,
}

impl Write for FailAfter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("no space left on device (simulated)"));
        }
        let n = self.inner.write(&buf[..buf.len().min(self.left)])?;
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn a_save_failing_midway_leaves_the_previous_checkpoint_intact() {
    let dir = TempDir::new("crash");
    let path = dir.file("model.safetensors");
    let old = vec![("w".to_string(), Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]))];
    save_state_dict(&path, &old, &HashMap::new()).unwrap();
    let old_bytes = std::fs::read(&path).unwrap();

    let new = vec![("w".to_string(), Tensor::randn(&[1000])), ("v".to_string(), Tensor::randn(&[10]))];
    let bytes = serialize_state_dict(&new, &HashMap::new()).unwrap();
    // Fail before the first byte, inside the header, inside the data, and one byte short of the end.
    for n in [0, 8, 50, bytes.len() / 2, bytes.len() - 1] {
        let err = atomic_write(&path, |w| FailAfter { inner: w, left: n }.write_all(&bytes)).unwrap_err();
        match &err {
            CheckpointError::Io { path: p, op, .. } => {
                assert_eq!(p, &path);
                assert!(*op == "write" || *op == "flush", "{op}");
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("no space left"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), old_bytes, "failure after {n} bytes changed the old file");
        let (loaded, _) = load_state_dict(&path).unwrap();
        assert_bit_exact(&loaded, &old);
        assert_eq!(dir.entries(), ["model.safetensors"], "temporary file removed after failing at {n}");
    }

    // A process killed between creating its temporary file and renaming it leaves only a stray temporary
    // file: the checkpoint itself still loads, and the next save succeeds.
    std::fs::write(dir.file(".model.safetensors.tmp-99999-0"), &bytes[..bytes.len() / 3]).unwrap();
    assert_bit_exact(&load_state_dict(&path).unwrap().0, &old);
    atomic_write(&path, |w| FailAfter { inner: w, left: usize::MAX }.write_all(&bytes)).unwrap();
    assert_bit_exact(&load_state_dict(&path).unwrap().0, &new);
}

#[test]
fn file_errors_name_the_file_and_the_cause() {
    let dir = TempDir::new("errors");
    let missing = dir.file("nope.safetensors");
    let err = load_state_dict(&missing).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }));
    assert!(err.to_string().contains("nope.safetensors"), "{err}");

    let bad = dir.file("bad.safetensors");
    std::fs::write(&bad, b"definitely not safetensors").unwrap();
    let err = load_state_dict(&bad).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }));
    assert!(err.to_string().contains("bad.safetensors"), "{err}");

    let in_missing_dir = dir.file("no/such/dir/x.safetensors");
    let err = save_state_dict(&in_missing_dir, &[], &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("create temporary file"), "{err}");

    let err = Checkpoint::load(&bad).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }));
    // A plain state dict is not a checkpoint: the progress counters are missing.
    let plain = dir.file("plain.safetensors");
    save_state_dict(&plain, &[("w".into(), Tensor::zeros(&[1]))], &HashMap::new()).unwrap();
    let err = Checkpoint::load(&plain).unwrap_err();
    assert!(err.to_string().contains("tensorgrad.epoch"), "{err}");
}
