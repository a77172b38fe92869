"""gflow: a single-machine, Slurm-like job scheduler for shared GPU workstations."""

__version__ = "0.1.0"
