"""The bare loops the realistic figures are measured against (bench/realistic.py), in a module
of their own so bench/profile_sandbox.py runs the same code without Django."""

# One evaluate() per call, warm: `loop` calls it in this process; `fork` forks a child per
# call that calls it once and exits (no sandbox, no platform: the least a fresh process
# per submission can cost). Both warm up alike, the fork parent freezes its objects as
# the warm parent does, and both print calls/s and CPU per call: the loop's own, or each
# child's from its fork to the end of its call, as the worker records a sandboxed child's.
BARE_LOOP = """
import gc, json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from evaluation_script import evaluate
annotation, submission, calls, mode = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
import io, contextlib
def cpu():
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime
def call():
    with contextlib.redirect_stdout(io.StringIO()):
        evaluate(annotation, submission, "dev", submission_metadata={"id": 0})
children = []
def forked():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            call()
            os.write(write, repr(cpu()).encode())
        finally:
            os._exit(0)
    os.close(write)
    children.append(float(os.read(read, 64)))
    os.close(read)
    os.waitpid(pid, 0)
for _ in range(10):
    call()
if mode == "fork":
    gc.collect()
    gc.freeze()
step = call if mode == "loop" else forked
sys.stdout.write("go\\n"); sys.stdout.flush()
sys.stdin.readline()
cpu0, t0 = cpu(), time.perf_counter()
for _ in range(calls):
    step()
used = cpu() - cpu0 if mode == "loop" else sum(children)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": used}))
"""
