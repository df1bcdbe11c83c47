#!/usr/bin/env python3
"""Side-by-side training-step times: tensorgrad vs PyTorch eager (CPU), on the workloads of
../shared/WORKLOADS.md, in one run on this machine.

For each round and each workload it runs, alternately, in separate processes:
  ours      cargo's `bench_workloads` example (release build)        --only ID --secs S
  torch x1  benches/torch_ref_threads.py 1 ID   (torch_ref.py's models and time_it, 1 thread)
  torch x2  benches/torch_ref_threads.py 2 ID   (2 threads, torch_ref.py's own setting)
and prints: id, ours ms, torch 1-thread ms, torch 2-thread ms, ratio ours / min(torch 1, torch 2).
Each cell is the median ms/step of one process; with --rounds R > 1, the best (lowest) of the R medians,
for ours and PyTorch alike. Also prints the load average before and after.

Usage: python3 benches/compare_torch.py [--only ID ...] [--secs 3] [--rounds 1]
Exits 0 with a message when PyTorch is not importable."""
import argparse, os, subprocess, sys

IDS = ["mlp-seed", "mlp-wide", "lenet", "char-lstm", "gpt-mini"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def parse_ms(out, wid):
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == wid:
            return float(parts[1])
    raise RuntimeError(f"no timing line for {wid} in:\n{out}")

def run(cmd, wid, env=None):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout
    return parse_ms(out, wid), out

def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=IDS)
    ap.add_argument("--secs", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed (python3 -c 'import torch' fails): nothing to compare against.")
        return 0
    ids = a.only or IDS
    print("building the bench_workloads example (release) ...", flush=True)
    subprocess.run(["cargo", "build", "--release", "--example", "bench_workloads"], cwd=ROOT, check=True)
    ours_bin = os.path.join(ROOT, "target", "release", "examples", "bench_workloads")
    torch_py = os.path.join(ROOT, "benches", "torch_ref_threads.py")
    env = dict(os.environ, BENCH_SECS=str(a.secs))
    best = {w: [float("inf")] * 3 for w in ids}
    print(f"load average before: {loadavg()}   (nproc {os.cpu_count()})", flush=True)
    for r in range(a.rounds):
        for w in ids:
            cmds = [[ours_bin, "--only", w, "--secs", str(a.secs)],
                    [sys.executable, torch_py, "1", w],
                    [sys.executable, torch_py, "2", w]]
            for k, cmd in enumerate(cmds):
                ms, out = run(cmd, w, env)
                best[w][k] = min(best[w][k], ms)
                print(f"  round {r + 1} {['ours', 'torch x1', 'torch x2'][k]:8s} {out.strip()}", flush=True)
    print(f"load average after: {loadavg()}\n")
    print(f"| {'id':9s} | {'ours ms':>9s} | {'torch 1t ms':>11s} | {'torch 2t ms':>11s} | {'ours/torch':>10s} |")
    print(f"|{'-' * 11}|{'-' * 11}|{'-' * 13}|{'-' * 13}|{'-' * 12}|")
    for w in ids:
        o, t1, t2 = best[w]
        print(f"| {w:9s} | {o:9.3f} | {t1:11.3f} | {t2:11.3f} | {o / min(t1, t2):10.2f} |")
    return 0

if __name__ == "__main__":
    sys.exit(main())
