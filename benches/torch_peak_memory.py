#!/usr/bin/env python3
"""Peak bytes of live PyTorch tensor storage during one training step of a workload of
../shared/reference/torch_ref.py, measured the way `examples/bench_workloads.rs` measures ours (`peak_MiB`:
the most bytes of tensor storage alive at any moment of one step, parameters, gradients and optimizer state
included, after warm-up steps).

Usage: python3 benches/torch_peak_memory.py [workload ...]      (default: gpt-mini)

Method. PyTorch's CPU allocator reports every allocation and free to the profiler when it runs with
`profile_memory=True`: each `[memory]` event carries the signed size and "Total Allocated", the running net
bytes of all CPU storage allocated *while memory profiling was on* (a block allocated before the profiler
started is unknown to it, and its free is not reported). So the profiler is started before the model is
built: then every tensor of the run is counted and "Total Allocated" is the live CPU tensor storage of the
process. We run 3 warm-up steps (so the optimizer state exists, as in ours), then one step inside a
`record_function` range, export the trace and take the maximum "Total Allocated" over the memory events
inside that range (and the value just before it, the live bytes at the step's start). Threads: 2, as
torch_ref.py sets.
"""
import json, os, sys, tempfile, importlib.util


def find_torch_ref():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cands = [os.environ.get("TORCH_REF", "")] + [
        os.path.join(root, up, "shared", "reference", "torch_ref.py") for up in ("..", os.path.join("..", ".."))
    ]
    for c in cands:
        if c and os.path.isfile(c):
            return c
    sys.exit("torch_ref.py not found: set TORCH_REF=/path/to/torch_ref.py")


def peak_of(ref, name):
    torch = ref.torch
    from torch.profiler import profile, ProfilerActivity, record_function

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        torch.manual_seed(0)
        model, xf, yf, opt = ref.workloads()[name]
        step = ref.step_fn(model, xf, yf, opt)
        for _ in range(3):
            step()
        with record_function("measured_step"):
            step()
    path = tempfile.mktemp(suffix=".json")
    prof.export_chrome_trace(path)
    with open(path) as f:
        events = json.load(f)["traceEvents"]
    os.unlink(path)
    rng = [e for e in events if e.get("name") == "measured_step" and e.get("ph") == "X"][0]
    t0, t1 = rng["ts"], rng["ts"] + rng["dur"]
    mem = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    before = [e["args"]["Total Allocated"] for e in mem if e["ts"] < t0]
    during = [e["args"]["Total Allocated"] for e in mem if t0 <= e["ts"] <= t1]
    live0 = before[-1] if before else 0
    return max([live0] + during), live0


if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("torch_ref", find_torch_ref())
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    ref.torch.set_num_threads(2)
    mib = lambda b: b / (1024 * 1024)
    for name in sys.argv[1:] or ["gpt-mini"]:
        peak, live0 = peak_of(ref, name)
        print(f"{name} torch peak_MiB={mib(peak):.2f} (live before step {mib(live0):.2f})", flush=True)
