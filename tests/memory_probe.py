"""Peak resident memory of this process, for tests that measure a child process.

`ru_maxrss` does not do there: Linux carries the largest RSS over an exec, so a child forked from a pytest
process that has grown to 2 GiB reports at least 2 GiB whatever it does itself. VmHWM is the peak of the
address space exec made, the child's own."""

from __future__ import annotations


def peak_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM")
