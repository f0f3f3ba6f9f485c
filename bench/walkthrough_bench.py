#!/usr/bin/env python3
"""The walkthrough's own performance (issue: the 32-layer walkthrough at 8B shape with the CPU reference and every
picture in <= 3 minutes, and in <= 20 s with the CUDA path alone (--no-compare); host memory beyond the mmap <= 1 GB).

walkthrough_bench.py MODEL_DIR OUT_JSON [--device cuda|cpu] [--no-compare] [--only 00,...] [--commit SHA]
Runs build/bin/walkthrough on MODEL_DIR, samples every chapter process's /proc/PID/status every 20 ms for its peak
anonymous resident memory (RssAnon: memory beyond the memory-mapped checkpoint, whose pages count as RssFile), and
writes the wall time, the per-chapter timings from trace.json and that peak to OUT_JSON."""
import argparse, datetime, json, os, subprocess, sys, tempfile, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("out")
ap.add_argument("--device", default="cuda"); ap.add_argument("--only", default="")
ap.add_argument("--no-compare", action="store_true",
                help="the walkthrough's --no-compare: one path alone (with cuda: no CPU reference), nothing compared")
ap.add_argument("--commit", default=os.environ.get("GIT_COMMIT", ""))
a = ap.parse_args()
trace = tempfile.mkdtemp(prefix="wbench.")
cmd = ["build/bin/walkthrough", "--model", a.model, "--device", a.device, "--out", trace, "--quiet"]
if a.no_compare:
    cmd += ["--no-compare"]
if a.only:
    cmd += ["--only", a.only]

def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                out += kids; todo += kids
        except OSError:
            pass
    return out

peak = {"anon_kib": 0, "rss_kib": 0}
def sample(root, stop):
    while not stop.is_set():
        for p in [root] + descendants(root):
            try:
                with open(f"/proc/{p}/status") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            peak["anon_kib"] = max(peak["anon_kib"], int(line.split()[1]))
                        elif line.startswith("VmRSS:"):
                            peak["rss_kib"] = max(peak["rss_kib"], int(line.split()[1]))
            except OSError:
                pass
        time.sleep(0.02)

t0 = time.time()
proc = subprocess.Popen(cmd)
stop = threading.Event()
th = threading.Thread(target=sample, args=(proc.pid, stop)); th.start()
rc = proc.wait(); wall = time.time() - t0
stop.set(); th.join()
steps = json.load(open(os.path.join(trace, "trace.json")))["steps"]
result = {
    "what": "build/bin/walkthrough " + " ".join(cmd[1:]).replace(trace, "TRACE"),
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": a.commit, "exit_status": rc, "wall_s": round(wall, 2),
    "mode": "no-compare (one path alone, nothing compared)" if a.no_compare else "CUDA path and CPU reference, compared"
            if a.device == "cuda" else "CPU reference",
    "peak_rss_anon_gib": round(peak["anon_kib"] / 2**20, 3), "peak_rss_gib": round(peak["rss_kib"] / 2**20, 3),
    "gpu": subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                          text=True).stdout.strip() if a.device == "cuda" else "none",
    "chapters": {s["id"]: s.get("timings", {}) for s in steps},
}
with open(a.out, "w") as f:
    json.dump(result, f, indent=1)
print(f"walkthrough: {len(steps)} chapters, exit {rc}, {wall:.1f} s wall; peak RssAnon {result['peak_rss_anon_gib']} GiB, "
      f"peak RSS {result['peak_rss_gib']} GiB (mapped checkpoint pages included)")
for s in steps:
    t = s.get("timings", {})
    print(f"  {s['id']:14s} total {t.get('total_ms', 0)/1e3:7.1f} s  cpu {t.get('cpu_ms', 0)/1e3:7.1f} s  cuda {t.get('cuda_ms', 0)/1e3:6.1f} s")
sys.exit(rc)
