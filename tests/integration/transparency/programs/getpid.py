"""A worker names its lock file after itself."""
import os
import socket

pid = os.getpid()
print("worker", pid, "parent", os.getppid())
print("lock name", f"worker-{socket.gethostname()}-{pid}.lock")
print("cpus known:", (os.cpu_count() or 0) > 0, "uid", os.getuid() >= 0)
print("region", os.environ["TR_REGION"])
