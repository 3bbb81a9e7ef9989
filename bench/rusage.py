#!/usr/bin/env python3
"""rusage.py OUT CMD...: run CMD; append "WALL_US MAXRSS_KIB EXIT" to OUT.
The wall time is taken around the child alone, the peak resident memory
is the child's (wait4), where /usr/bin/time may not be installed."""
import os
import sys
import time

out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
rc = os.waitstatus_to_exitcode(status)
with open(out, "a") as f:
    f.write(f"{wall * 1e6:.0f} {ru.ru_maxrss} {rc}\n")
sys.exit(rc)
