"""Runs ../shared/reference/torch_ref.py's workloads with a chosen number of PyTorch threads.
Usage: python3 torch_ref_threads.py THREADS [workload ...]
torch_ref.py itself fixes 2 threads at import; this imports it (its __main__ block does not run), then sets
torch.set_num_threads(THREADS) and times exactly as its __main__ does (same models, step_fn and time_it).
torch_ref.py is found via $TORCH_REF, else ../shared/reference/ or ../../shared/reference/ from the repo root."""
import os, sys, importlib.util

def find_torch_ref():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cands = [os.environ.get("TORCH_REF", "")] + [os.path.join(root, up, "shared", "reference", "torch_ref.py") for up in ("..", os.path.join("..", ".."))]
    for c in cands:
        if c and os.path.isfile(c):
            return c
    sys.exit("torch_ref.py not found: set TORCH_REF=/path/to/torch_ref.py")

if __name__ == "__main__":
    threads = int(sys.argv[1])
    spec = importlib.util.spec_from_file_location("torch_ref", find_torch_ref())
    ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
    ref.torch.set_num_threads(threads)
    secs = float(os.environ.get("BENCH_SECS", "3"))
    for name in sys.argv[2:] or list(ref.workloads()):
        ref.torch.manual_seed(0)
        model, xf, yf, opt = ref.workloads()[name]
        n = sum(p.numel() for p in model.parameters())
        print(f"{name} {ref.time_it(ref.step_fn(model, xf, yf, opt), secs):.3f}  params={n} threads={threads}", flush=True)
