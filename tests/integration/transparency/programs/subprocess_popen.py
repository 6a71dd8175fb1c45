"""Stream a child's output line by line, and handle a failing command."""
import subprocess
import sys

code = "import sys, time\nfor line in open('inventory.csv'): print(line.strip(), time.time_ns()); sys.stdout.flush()"
with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as child:
    for line in child.stdout:
        print("child:", line.rstrip())
    print("exit", child.wait(), "poll", child.poll())
proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, _ = proc.communicate(b"echo through cat")
print("cat:", out.decode(), proc.returncode)
try:
    subprocess.check_output(["grep", "banana", "inventory.csv"])
except subprocess.CalledProcessError as exc:
    print("grep failed:", exc.returncode, exc)
