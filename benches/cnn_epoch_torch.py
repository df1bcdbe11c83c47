#!/usr/bin/env python3
"""Training-step speed of example 06's CNN: PyTorch eager (CPU) vs tensorgrad, side by side in one run.

The network, optimizer and batch are those of examples/06_fashion_mnist_cnn.rs:
  Conv2d(1, 32, 3, padding 1) - BatchNorm2d(32) - ReLU - MaxPool2d(2)
  Conv2d(32, 64, 3, padding 1) - BatchNorm2d(64) - ReLU - MaxPool2d(2)
  Flatten - Dropout(0.25) - Linear(3136, 10); cross-entropy; Adam lr 1e-3; batch 128; training mode.
PyTorch trains on a fixed random batch (standardized-pixel-like N(0, 1) inputs, random labels), timing
zero_grad + forward + loss + backward + step; tensorgrad runs the example itself with `--steps N` (one
epoch of N steps on the real data, `--test-samples 500`) and reports the samples/s it prints for the
training loop (which includes its data loading and the per-step loss.item()).

For each round: tensorgrad, then PyTorch with 1 thread, then with 2 threads (each in its own process), and
prints steps/s, samples/s and the projected seconds per 60,000-image epoch (469 steps). Also prints the
load average before and after: the machine is shared, compare within one run.

Usage: python3 benches/cnn_epoch_torch.py [--steps 30] [--rounds 1] [--torch-only]
       python3 benches/cnn_epoch_torch.py --worker THREADS STEPS   (internal: one PyTorch measurement)
"""
import argparse, os, re, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, EPOCH_IMAGES = 128, 60000


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def torch_worker(threads, steps):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(3136, 10))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    secs = time.perf_counter() - t
    print(f"steps_per_s {steps / secs:.4f}")


def run_torch(threads, steps):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", str(threads), str(steps)],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"steps_per_s ([0-9.]+)", out).group(1))


def run_ours(steps):
    exe = os.path.join(ROOT, "target", "release", "examples", "06_fashion_mnist_cnn")
    with tempfile.TemporaryDirectory() as run_dir:
        out = subprocess.run([exe, "--epochs", "1", "--steps", str(steps), "--test-samples", "500",
                              "--run-dir", run_dir], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    m = re.search(r"([0-9.]+) samples/s", out)
    if not m:
        raise RuntimeError(f"no samples/s in the example's output:\n{out}")
    return float(m.group(1)) / BATCH


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--torch-only", action="store_true")
    ap.add_argument("--worker", nargs=2, type=int, metavar=("THREADS", "STEPS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        torch_worker(*a.worker)
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed (python3 -c 'import torch' fails): nothing to compare against.")
        return 0
    if not a.torch_only:
        print("building example 06 (release) ...", flush=True)
        subprocess.run(["cargo", "build", "--release", "--example", "06_fashion_mnist_cnn"], cwd=ROOT, check=True)
    print(f"load average before: {loadavg()}   (nproc {os.cpu_count()}, {a.steps} steps of batch {BATCH})")
    rows = {"tensorgrad": [], "torch 1 thread": [], "torch 2 threads": []}
    for r in range(a.rounds):
        if not a.torch_only:
            rows["tensorgrad"].append(run_ours(a.steps))
        rows["torch 1 thread"].append(run_torch(1, a.steps))
        rows["torch 2 threads"].append(run_torch(2, a.steps))
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} steps/s" for k, v in rows.items() if v), flush=True)
    print(f"load average after: {loadavg()}\n")
    print(f"| {'who':15s} | {'steps/s':>8s} | {'samples/s':>9s} | {'s / 60k epoch':>13s} |")
    print(f"|{'-' * 17}|{'-' * 10}|{'-' * 11}|{'-' * 15}|")
    for who, v in rows.items():
        if v:
            best = max(v)
            print(f"| {who:15s} | {best:8.2f} | {best * BATCH:9.0f} | {EPOCH_IMAGES / BATCH / best:13.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
