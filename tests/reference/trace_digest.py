#!/usr/bin/env python3
"""trace_digest.py TRACE_DIR: one line per .npy file (sha256 of its bytes) and per chapter's printed lines (sha256 of
the lines with the trace directory replaced by OUT and wall-clock timings dropped), sorted. Two runs of the same code on
the same model and prompt give the same list; a refactor that must not change results is checked against a list
stored from the commit before it (tests/golden/demo_cpu_digests.txt, checked by tests/test_digest.sh)."""
import hashlib, json, os, re, sys

# wall-clock lines, by chapter: 16_generate's cost sweep rows (a position, then milliseconds)
TIMING = {'16_generate': [re.compile(r'^\s*\d+(\s+([\d.]+|-))+\s*$')]}

def main():
    if len(sys.argv) != 2 or not os.path.isfile(os.path.join(sys.argv[1], 'trace.json')):
        sys.exit('usage: trace_digest.py TRACE_DIR (a directory with trace.json)')
    d = sys.argv[1].rstrip('/')
    out = []
    for root, _, files in os.walk(d):
        for f in files:
            if f.endswith('.npy'):
                p = os.path.join(root, f)
                out.append('npy %s %s' % (os.path.relpath(p, d), hashlib.sha256(open(p, 'rb').read()).hexdigest()))
    t = json.load(open(os.path.join(d, 'trace.json')))
    for st in t['steps']:
        timing = TIMING.get(st['id'], [])
        lines = [l.replace(d + '/', 'OUT/') for l in st['lines'] if not any(r.match(l) for r in timing)]
        out.append('lines %s %s' % (st['id'], hashlib.sha256('\n'.join(lines).encode()).hexdigest()))
    print('\n'.join(sorted(out)))

main()
