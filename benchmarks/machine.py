"""What every speed or quality-per-minute figure needs beside it: the machine."""

import os
import platform
import re


def machine_facts():
    """CPU model, core count, vector extensions (AVX2, FMA, AVX-512 flags) and Python version."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = open("/proc/cpuinfo").read()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        model = found.group(1).strip() if found else model
        flags = set(re.findall(r"\bavx512[a-z0-9_]*", text))
        simd = sorted(set(re.findall(r"\b(?:avx2|fma|avx512[a-z0-9_]*)\b", text)))
    except OSError:
        simd = []
    return {"cpu": model, "cores": os.cpu_count(), "avx512": sorted(flags), "simd": simd,
            "python": platform.python_version()}
