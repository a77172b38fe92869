"""What the machine has: GPUs (NVML, or fake ones from config) and host memory."""
