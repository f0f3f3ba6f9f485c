#!/usr/bin/env python3
"""measure.py NAME -- CMD...: runs CMD, then prints one line with its wall time and the peak resident memory of its
largest child process (ru_maxrss of the children; it counts the mapped checkpoint pages a process touched, so it is an
upper bound of "host memory beyond the mmap"). Exits with CMD's status."""
import resource, subprocess, sys, time

name = sys.argv[1]
cmd = sys.argv[sys.argv.index("--") + 1:]
t0 = time.time()
rc = subprocess.run(cmd).returncode
dt = time.time() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024  # KiB -> GiB
print(f"measure {name}: {dt:.1f} s wall, peak RSS of one process {peak:.2f} GiB (mapped checkpoint pages included), exit {rc}")
sys.exit(rc)
