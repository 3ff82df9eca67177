#!/usr/bin/env python3
"""Runs a GLib test program (TAP) so that one failing case cannot take the
rest of the binary with it: an assertion aborts the process, so after a
crash the case that was running is reported as failed and the program is
started again, skipping every case already reported (-s), until all have
run. The TAP it prints is renumbered into one stream.

VLM_TEST_WRAPPER, when set, is a command line the program runs under (the
valgrind and zen3 test setups of meson.build): a wrapper given to meson
itself would run this script under it, not the program. A run that exits
non-zero after reporting every case ok (valgrind's --error-exitcode) fails.

Each run gets a TMPDIR of its own, removed when it ends, so what a case
that died left in g_dir_make_tmp's folders does not pile up in /tmp.

Usage: run-isolated.py PROGRAM [ARGS...]"""
import os
import shlex
import signal
import subprocess
import sys
import tempfile

tmp = tempfile.TemporaryDirectory(prefix=os.path.basename(sys.argv[1]) + "-")
env = dict(os.environ, TMPDIR=tmp.name)
listing = subprocess.run(sys.argv[1:] + ["-l"], capture_output=True, text=True, env=env)
prog = shlex.split(os.environ.get("VLM_TEST_WRAPPER", "")) + sys.argv[1:]
cases = [line.strip() for line in listing.stdout.splitlines() if line.startswith("/")]
reported = []   # paths in the order they finished
n = 0
failed = False
while True:
    skips = [arg for path in reported for arg in ("-s", path)]
    proc = subprocess.Popen(prog + ["--tap"] + skips, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    bailed = False
    for line in proc.stdout:
        line = line.rstrip("\n")
        words = line.split()
        if line.startswith("ok ") or line.startswith("not ok "):
            status = "not ok" if line.startswith("not ok") else "ok"
            rest = words[3:] if status == "not ok" else words[2:]
            n += 1
            failed |= status == "not ok"
            if rest and rest[0].startswith("/"):
                reported.append(rest[0])
            print(f"{status} {n} {' '.join(rest)}", flush=True)
        elif line.startswith("1.."):
            continue   # the plan comes once, at the end
        elif line.startswith("Bail out!"):
            bailed = True
            print("# " + line, flush=True)
        else:
            print(line if line.startswith("#") else "# " + line, flush=True)
    rc = proc.wait()
    if rc == 0:
        break
    if rc == 1 and not bailed:
        if not failed:   # every case ok, yet the run failed: the wrapper's verdict
            n += 1
            failed = True
            print(f"not ok {n} {os.path.basename(sys.argv[1])} # exit status 1 after every case passed: {' '.join(prog[:-len(sys.argv) + 1]) or 'the program'}'s verdict, see the log above", flush=True)
        break
    left = [c for c in cases if c not in reported]
    if not left:
        break
    why = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
    n += 1
    failed = True
    reported.append(left[0])
    print(f"not ok {n} {left[0]} # the program died in this case ({why}); the cases after it run in a new process",
          flush=True)
print(f"1..{n}")
tmp.cleanup()
sys.exit(1 if failed else 0)
