"""The server's memory as the operating system sees it: how much the machine has (the default
in-flight budget is a share of it), the peak a call reaches (what a model costs per pixel),
and handing freed memory back after a large request.

Measured, not guessed: TensorFlow's oneDNN build keeps a pool that grows to the largest call's
peak and never shrinks (a 2048x2048 image through a tiny generator left the process 400 MiB
larger for good), unless TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1 is set before TensorFlow starts
(`launch.serve` sets it); then tensors come from malloc, and glibc returns them when freed
if it maps large blocks on their own (`return_large_blocks`) and trims its heaps
(`return_freed_memory`). The peak of a call is read from TensorFlow's allocator where it keeps
statistics (the pool) and from the kernel's high-water mark of the process otherwise.
"""
import ctypes
import ctypes.util
import os

import tensorflow as tf

# What the in-flight budget may take of the machine's memory by default: the rest holds the
# process itself (TensorFlow, the models: about 0.7 GiB for a small one) and what the
# estimates miss.
DEFAULT_BUDGET_SHARE = 0.5
# glibc maps blocks from this size on by themselves, so freeing one returns it at once;
# smaller ones come from its heaps, which `return_freed_memory` trims.
_MMAP_THRESHOLD = 128 << 10
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _glibc():
    """glibc's malloc controls, or None on another C library (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _glibc()


def machine_memory_bytes():
    """The memory this process may use: the machine's, or its container's limit if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in _CGROUP_LIMITS:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def default_budget_bytes():
    """The in-flight budget without --max_inflight_memory_mb: DEFAULT_BUDGET_SHARE of the
    machine's (or container's) memory."""
    return int(machine_memory_bytes() * DEFAULT_BUDGET_SHARE)


def return_large_blocks():
    """Makes glibc map blocks of _MMAP_THRESHOLD bytes or more on their own, for good: by
    default it raises that threshold after each large free (up to 32 MiB) and then keeps the
    freed blocks in its heaps."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def return_freed_memory():
    """Gives the free pages of glibc's heaps back to the system (a few ms)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _status_bytes(field):
    """A field of /proc/self/status (VmRSS, VmHWM) in bytes, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_high_water_mark():
    """Sets the process's VmHWM to its VmRSS (Linux 4.0+); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _allocator_held_bytes():
    """Resets the statistics of TensorFlow's CPU allocator and returns the bytes it holds, or
    None where it keeps none: TensorFlow turns oneDNN, whose pool counts, on by default only
    on CPUs with AVX-512 VNNI or newer (an AVX2 machine raises "Cannot reset memory stats")."""
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
        return tf.config.experimental.get_memory_info("CPU:0")["current"]
    except ValueError:
        return None


def peak_growth_bytes(run):
    """How far memory rose above its level before while `run()` ran: the larger of the peak
    of TensorFlow's CPU allocator (where it keeps statistics) and of the process's resident
    set (where the kernel lets us reset its high-water mark); RuntimeError where neither can
    be read. Anything else running in the process meanwhile counts too: measure while nothing
    else runs."""
    return_freed_memory()
    # The allocator's peak counts the tensors alive before (the models, other requests'
    # leftovers): only its rise above them is the call's.
    held = _allocator_held_bytes()
    before = _status_bytes("VmRSS") if _reset_high_water_mark() else None
    if held is None and before is None:
        raise RuntimeError("cannot measure a call's memory here: TensorFlow's CPU allocator "
                           "keeps no statistics (set TF_ENABLE_ONEDNN_OPTS=1) and the kernel's "
                           "high-water mark (/proc/self/clear_refs) cannot be reset")
    run()
    peaks = []
    if held is not None:
        peaks.append(tf.config.experimental.get_memory_info("CPU:0")["peak"] - held)
    if before is not None:
        peaks.append(_status_bytes("VmHWM") - before)
    return max(peaks)
