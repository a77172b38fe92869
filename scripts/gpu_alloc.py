"""Hold GPU memory with nothing but the NVIDIA driver: no CUDA toolkit, no framework.

    python3 scripts/gpu_alloc.py MB SECONDS [GPU]

Allocates MB of device memory on GPU (default 0) through libcuda.so.1 (cuInit, cuDeviceGet,
cuCtxCreate, cuMemAlloc), prints "allocated", holds it SECONDS, frees it. The real-GPU
test of what a job used runs it as a job (tests/integration/test_nvml.py).
"""

from __future__ import annotations

import ctypes
import sys
import time


def check(result: int, what: str) -> None:
    if result != 0:
        raise SystemExit(f"gpu_alloc: {what} failed with CUDA error {result}")


def main() -> None:
    megabytes, seconds = int(sys.argv[1]), float(sys.argv[2])
    index = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    cuda = ctypes.CDLL("libcuda.so.1")
    check(cuda.cuInit(0), "cuInit")
    device = ctypes.c_int()
    check(cuda.cuDeviceGet(ctypes.byref(device), index), "cuDeviceGet")
    context = ctypes.c_void_p()
    check(cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device), "cuCtxCreate")
    pointer = ctypes.c_uint64()
    check(cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(megabytes << 20)), "cuMemAlloc")
    print("allocated", flush=True)
    time.sleep(seconds)
    cuda.cuMemFree_v2(pointer)
    cuda.cuCtxDestroy_v2(context)


if __name__ == "__main__":
    main()
