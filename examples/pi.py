"""Estimate pi by Monte Carlo, the way a Globus Compute user runs a bag of tasks.

    python examples/pi.py [--tasks 1000] [--points 1000] [--chunksize 50] [--endpoint local]

Each task throws `points` random darts at the unit square and counts those inside the quarter
circle; the average of the `tasks` estimates is printed with its error and the time it took.
It runs the same bag three ways:
  1. submit: one future per call (what Globus Compute users write);
  2. map(..., chunksize=...): many calls in one task message, far less overhead per call, so
     several times faster for short calls like these (with a large --points the work dominates
     and the two take about the same time);
  3. the boto-style client: register_function once, then submit_batch / get_result by task id.
"""
import argparse
import math
import time

import faas


def pi(num_points):
    from random import random
    inside = 0
    for _ in range(num_points):
        x, y = random(), random()
        if x**2 + y**2 < 1:
            inside += 1
    return inside * 4 / num_points


def report(label, estimates, started):
    estimate = sum(estimates) / len(estimates)
    print(f"{label:<24} pi ~ {estimate:.6f}  error {abs(estimate - math.pi):.6f}  "
          f"({len(estimates)} tasks in {time.monotonic() - started:.2f} s)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=1000, help="number of estimates (N)")
    p.add_argument("--points", type=int, default=10**3, help="darts per estimate")
    p.add_argument("--chunksize", type=int, default=50, help="calls per task message for map()")
    p.add_argument("--endpoint", default=None, help="endpoint name [default: local]")
    a = p.parse_args()

    with faas.Executor(endpoint=a.endpoint) as ex:
        t = time.monotonic()
        ex.submit(pi, 1).result()    # the first call starts the embedded endpoint if need be
        print(f"endpoint ready in {time.monotonic() - t:.2f} s")

        # 1. one future per call
        t = time.monotonic()
        futures = [ex.submit(pi, a.points) for _ in range(a.tasks)]
        report("submit", [f.result() for f in futures], t)

        # 2. the same bag with map(): `chunksize` calls travel (and run) as one task
        t = time.monotonic()
        report(f"map(chunksize={a.chunksize})",
               list(ex.map(pi, [a.points] * a.tasks, chunksize=a.chunksize)), t)

    # 3. the boto-style client: functions are registered once; tasks are looked up by id
    with faas.client(endpoint=a.endpoint) as c:
        t = time.monotonic()
        fid = c.register_function(pi)
        task_ids = c.submit_batch(tasks=[{"function_id": fid, "args": [a.points]}] * a.tasks)
        report("client.submit_batch", [c.get_result(tid) for tid in task_ids], t)


if __name__ == "__main__":
    main()
