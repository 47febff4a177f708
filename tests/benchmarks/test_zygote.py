"""The forked runner of ``python -m benchmarks --quick``: output, exit status, timeout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks._zygote import run_forked, run_lanes

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")

MODULE = '''
import sys, time
if __name__ == "__main__":
    args = sys.argv[1:]
    print("args", args, "cwd-file", open("marker.txt").read())
    print("threads", __import__("os").environ.get("OMP_NUM_THREADS"))
    if "--append" in args:  # lane order: each job sees what the jobs before it in its lane wrote
        with open(args[args.index("--append") + 1], "a+") as log:
            log.seek(0)
            print("seen", repr(log.read()))
            log.write(args[-1])
    if "--sleep" in args:
        time.sleep(30)
    if "--raise" in args:
        raise ValueError("broken benchmark")
    print("to stderr", file=sys.stderr)
    sys.exit(int(args[0]))
'''


@pytest.fixture(scope="module")
def fake_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zygote")
    (root / "fake_bench_module.py").write_text(MODULE)
    (root / "marker.txt").write_text("here")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


def test_child_runs_the_module_as_main_in_cwd_with_its_arguments(fake_module: Path) -> None:
    status, out, err = run_forked("fake_bench_module", ["0", "--x"], 30, cwd=str(fake_module))
    assert status == 0
    assert "args ['0', '--x'] cwd-file here" in out
    assert "to stderr" in err


def test_exit_status_and_exceptions_come_back(fake_module: Path) -> None:
    assert run_forked("fake_bench_module", ["3"], 30, cwd=str(fake_module))[0] == 3
    status, _, err = run_forked("fake_bench_module", ["0", "--raise"], 30,
                                cwd=str(fake_module))
    assert status == 1
    assert "ValueError: broken benchmark" in err


def test_a_child_past_its_time_is_killed(fake_module: Path) -> None:
    status, out, _ = run_forked("fake_bench_module", ["0", "--sleep"], 1, cwd=str(fake_module))
    assert status == "timeout"
    assert "args" in out


def test_lanes_run_side_by_side_each_in_order_on_limited_threads(fake_module: Path) -> None:
    lane_a = [("fake_bench_module", ("0", "--append", "a.log", f"a{i}")) for i in range(3)]
    lane_b = [("fake_bench_module", ("2", "--append", "b.log", "b0")),
              ("fake_bench_module", ("0", "--append", "b.log", "b1"))]
    done = run_lanes([lane_a, lane_b], timeout_s=30, cwd=str(fake_module), threads=1)
    assert set(done) == set(lane_a + lane_b)
    assert "seen 'a0a1'" in done[lane_a[2]].stdout
    assert "seen 'b0'" in done[lane_b[1]].stdout
    assert done[lane_b[0]].status == 2 and done[lane_b[1]].status == 0
    assert all("threads 1" in d.stdout for d in done.values())
    assert all(d.wall_s > 0 and d.cpu_s >= 0 for d in done.values())
