"""The bounds of every number a user can send: one place, checked by CLI and daemon alike."""

MAX_JOB_ID = 2**53
MAX_TIME_LIMIT = 10 * 366 * 86400  # seconds
MAX_SIZE_MB = 1024**3  # 1024 T
DEFAULT_PRIORITY = 10
MAX_PRIORITY = 255
MAX_GPUS = 1024
MAX_NAME_LENGTH = 200
MAX_COMMAND_LENGTH = 1_000_000
MAX_ARG_STRLEN = 131_072  # Linux: the longest one argument or variable a program is given
POINTER_BYTES = 8  # each argument and variable also costs its pointer on the new stack
MIN_ARG_MAX = 131_072  # what execve allows whatever the stack limit
MAX_ARG_MAX = 6 * 1024 * 1024  # 3/4 of the kernel's 8 MiB cap, with an unlimited stack
