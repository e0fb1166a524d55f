"""Batch runs an operator can trust: resume, locking, exit codes, the manifest,
crash safety against kills at any file-system change, damaged files, umask.

Real processes are killed with SIGKILL (``tests/solver/kill_at.py``), so no
clean-up code of the killed run gets to run.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import pandas as pd
import psutil
import pytest

import solver.batch.parts
import solver.batch.progress
import solver.batch.shards
from solver.batch.cli import main
from solver.batch.config import RunConfig
from solver.batch.engine import ExitCode, rebalance_batch
from solver.errors import OutputError, StaleOutputError
from tests.solver.batch_data import AS_OF, save, write_batch

ROOT = Path(__file__).resolve().parents[2]
CONFIG = RunConfig(as_of=AS_OF, max_turnover=0.1)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def _cli(*args: object) -> list[str]:
    """Arguments of ``rebalance batch`` with one worker and no progress."""
    return ["batch", *map(str, args), "--workers", "1", "--no-progress"]


def _outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The final summary (without timings) and trades, in a canonical order."""
    summary = pd.read_parquet(out / "summary.parquet").drop(columns="solve_seconds")
    trades = pd.read_parquet(out / "trades.parquet")
    keys = ["account_id", "side", "asset", "lot_id"]
    trades = trades.sort_values(keys, na_position="first").reset_index(drop=True)
    return summary.reset_index(drop=True), trades


def _same_outputs(out: Path, reference: Path) -> None:
    got, want = _outputs(out), _outputs(reference)
    pd.testing.assert_frame_equal(got[0], want[0])
    pd.testing.assert_frame_equal(got[1], want[1])


def _start(in_dir: Path, out: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start ``rebalance batch`` as its own process, its log in ``log``."""
    command = [sys.executable, "-m", "solver.batch.cli", *_cli(in_dir, "--out", out)]
    with log.open("wb") as err:
        return subprocess.Popen(
            [*command, *extra], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err
        )


def _kill_after_parts(process: subprocess.Popen[bytes], out: Path, parts: int) -> None:
    """SIGKILL ``process`` once ``parts`` chunks are committed."""
    deadline = time.monotonic() + 120
    committed = out / ".parts"
    while len(list(committed.glob("*.commit.json"))) < parts:
        assert time.monotonic() < deadline, "the run committed nothing in 120 s"
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A batch killed after two committed chunks, and a clean reference run."""
    root = tmp_path_factory.mktemp("killed")
    write_batch(root / "in", n_accounts=40, n_assets=40)
    process = _start(root / "in", root / "out", root / "killed.log")
    _kill_after_parts(process, root / "out", 2)
    assert main(_cli(root / "in", "--out", root / "ref")) == ExitCode.OK
    return root


def _change_prices(in_dir: Path) -> None:
    prices = pd.read_parquet(in_dir / "prices.parquet")
    prices.loc[0, "price"] *= 1.01
    save(in_dir, {"prices": prices})


def _change_one_accounts_lots(in_dir: Path) -> None:
    lots = pd.read_parquet(in_dir / "lots.parquet")
    first = lots.index[lots["account_id"] == "B000"][0]
    lots.loc[first, "quantity"] += 1
    save(in_dir, {"lots": lots})


CHANGES = {
    "prices": (_change_prices, [], "input prices.parquet changed"),
    "lots": (_change_one_accounts_lots, [], "input lots.parquet changed"),
    "flag": (None, ["--max-turnover", "0.3"], "setting max_turnover: 0.1 -> 0.3"),
    "as_of": (None, ["--as-of", "2026-11-25"], "as_of: 2026-11-24 -> 2026-11-25"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_batch_refuses_to_resume_a_run_whose_inputs_or_settings_changed(
    killed_run, tmp_path, change, caplog
):
    edit, flags, said = CHANGES[change]
    shutil.copytree(killed_run / "in", tmp_path / "in")
    shutil.copytree(killed_run / "out", tmp_path / "out")
    if edit is not None:
        edit(tmp_path / "in")
    parts = sorted(p.name for p in (tmp_path / "out" / ".parts").iterdir())
    code = main([*_cli(tmp_path / "in", "--out", tmp_path / "out"), *flags])
    assert code == ExitCode.CANNOT_RUN
    assert said in caplog.text
    assert "--restart" in caplog.text
    assert sorted(p.name for p in (tmp_path / "out" / ".parts").iterdir()) == parts
    assert not (tmp_path / "out" / "summary.parquet").exists()
    # --restart solves everything afresh: same as a clean run of the new inputs
    code = main(
        [*_cli(tmp_path / "in", "--out", tmp_path / "out"), *flags, "--restart"]
    )
    assert code == ExitCode.OK
    assert main([*_cli(tmp_path / "in", "--out", tmp_path / "ref"), *flags]) == 0
    _same_outputs(tmp_path / "out", tmp_path / "ref")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["solved_by_this_run"] == 40


def test_batch_resumes_a_killed_run_with_unchanged_inputs(killed_run, tmp_path):
    shutil.copytree(killed_run / "in", tmp_path / "in")
    shutil.copytree(killed_run / "out", tmp_path / "out")
    assert main(_cli(tmp_path / "in", "--out", tmp_path / "out")) == ExitCode.OK
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert 0 < manifest["solved_by_this_run"] < 40  # the killed run's parts reused
    _same_outputs(tmp_path / "out", killed_run / "ref")


def test_batch_refuses_outputs_it_cannot_prove_current(killed_run, tmp_path, caplog):
    shutil.copytree(killed_run / "in", tmp_path / "in")
    shutil.copytree(killed_run / "out", tmp_path / "out")
    (tmp_path / "out" / "manifest.json").write_text("{not json")
    code = main(_cli(tmp_path / "in", "--out", tmp_path / "out"))
    assert code == ExitCode.CANNOT_RUN
    assert "cannot be proved current" in caplog.text
    (tmp_path / "out" / "manifest.json").unlink()
    assert main(_cli(tmp_path / "in", "--out", tmp_path / "out")) == 2


def test_second_run_on_the_same_output_exits_at_once_and_harms_neither(
    killed_run, tmp_path
):
    shutil.copytree(killed_run / "in", tmp_path / "in")
    first = _start(tmp_path / "in", tmp_path / "out", tmp_path / "first.log")
    while not list((tmp_path / "out" / ".parts").glob("*.commit.json")):
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGSTOP)  # mid-run, holding the lock, however fast
    try:
        began = time.monotonic()
        second = _start(tmp_path / "in", tmp_path / "out", tmp_path / "second.log")
        assert second.wait(timeout=60) == ExitCode.IN_USE
        assert time.monotonic() - began < 30
    finally:
        os.kill(first.pid, signal.SIGCONT)
    log = (tmp_path / "second.log").read_text()
    assert "in use by another batch run" in log
    assert f"pid {first.pid}" in log
    assert first.wait(timeout=300) == ExitCode.OK, (tmp_path / "first.log").read_text()
    _same_outputs(tmp_path / "out", killed_run / "ref")


def test_a_killed_run_does_not_leave_its_output_locked(killed_run, tmp_path):
    # the fixture's run was killed holding the lock; its directory is usable
    shutil.copytree(killed_run / "in", tmp_path / "in")
    shutil.copytree(killed_run / "out", tmp_path / "out")
    assert (tmp_path / "out" / ".lock").exists()
    assert main(_cli(tmp_path / "in", "--out", tmp_path / "out")) == ExitCode.OK


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory):
    """Four accounts on ten assets, and their reference outputs."""
    root = tmp_path_factory.mktemp("small")
    write_batch(root / "in", n_accounts=4, n_assets=10)
    assert main(_cli(root / "in", "--out", root / "ref")) == ExitCode.OK
    return root


def _kill_at(in_dir: Path, out: Path, change: int) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "tests.solver.kill_at",
        str(change),
        *_cli(in_dir, "--out", out),
    ]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_a_kill_at_any_file_system_change_leaves_a_directory_the_next_run_completes(
    small_batch, tmp_path
):
    full = _kill_at(small_batch / "in", tmp_path / "count", 0)
    assert full.returncode == 0, full.stderr
    changes = int(full.stdout.split("changes ")[-1])
    assert changes > 40  # parts, commit records, merge, manifest, clean-up
    points = sorted({*range(1, changes + 1, 3), *range(changes - 20, changes + 1)})

    def kill_and_resume(point: int) -> tuple[int, int, str]:
        out = tmp_path / f"out{point}"
        killed = _kill_at(small_batch / "in", out, point)
        return point, killed.returncode, killed.stderr

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(kill_and_resume, points))
    for point, code, stderr in runs:
        assert code == -signal.SIGKILL, (point, code, stderr)
        out = tmp_path / f"out{point}"
        assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OK, point
        _same_outputs(out, small_batch / "ref")
        assert not list(out.glob(".*.tmp")), point  # stray temporary files removed
        assert not (out / ".parts").exists(), point
        assert not (out / ".shards").exists(), point
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["state"] == "complete", point


def test_a_damaged_part_is_discarded_named_and_solved_again(
    small_batch, tmp_path, caplog
):
    out = tmp_path / "out"
    killed = _kill_at(small_batch / "in", out, 40)  # after some chunks commit
    assert killed.returncode == -signal.SIGKILL
    commits = sorted((out / ".parts").glob("*.commit.json"))
    assert commits
    damaged = commits[0].with_name(
        commits[0].name.replace("commit.json", "summary.parquet")
    )
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OK
    assert f"discarding part {commits[0]}" in caplog.text
    assert "does not match its checksum" in caplog.text
    _same_outputs(out, small_batch / "ref")


def test_damaged_final_tables_are_not_reused(small_batch, tmp_path, caplog):
    out = tmp_path / "out"
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OK
    trades = out / "trades.parquet"
    trades.write_bytes(trades.read_bytes()[:-50])
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OK
    assert "final trades table of the earlier run is missing or changed" in caplog.text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["solved_by_this_run"] == 4
    _same_outputs(out, small_batch / "ref")


def test_a_rerun_of_a_finished_batch_solves_nothing_and_keeps_its_answers(
    small_batch, tmp_path
):
    out = tmp_path / "out"
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OK
    again = rebalance_batch(small_batch / "in", out, config=CONFIG, workers=1)
    assert again.solved_now == 0
    _same_outputs(out, small_batch / "ref")


def test_a_missing_lot_shard_stops_the_run_instead_of_reading_no_lots(
    small_batch, tmp_path, monkeypatch
):
    real = solver.batch.shards.LotShards.read

    def vanish(self, bucket):
        for path in self.directory.glob("*.arrow"):
            path.unlink()  # what a second run's clean-up did before the lock
        return real(self, bucket)

    monkeypatch.setattr(solver.batch.shards.LotShards, "read", vanish)
    with pytest.raises(OutputError, match="lot shard"):
        rebalance_batch(small_batch / "in", tmp_path / "out", config=CONFIG, workers=1)
    assert not (tmp_path / "out" / "summary.parquet").exists()


def test_a_full_disk_gives_a_clear_error_and_no_complete_looking_table(
    small_batch, tmp_path, monkeypatch, caplog
):
    out = tmp_path / "out"
    real = solver.batch.parts.write_frame

    def full(frame, path, fmt):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(solver.batch.parts, "write_frame", full)  # the final summary
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OUTPUT_FAILED
    assert "No space left on device" in caplog.text
    assert not list(out.glob("summary.*"))
    assert not list(out.glob("trades.*"))  # not renamed into place without summary
    assert not list(out.glob(".*.tmp"))
    assert json.loads((out / "manifest.json").read_text())["state"] == "running"
    monkeypatch.setattr(solver.batch.parts, "write_frame", real)
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OK
    _same_outputs(out, small_batch / "ref")


@pytest.fixture
def small_tmpfs(tmp_path):
    """Mount tiny file systems (tmpfs) under ``tmp_path``; skip where not allowed."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"fs{size}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr!r}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True)


def test_a_really_full_disk_leaves_no_complete_looking_table(
    small_batch, tmp_path, small_tmpfs
):
    codes = {}
    for size in ("16k", "48k", "96k", "128k", "256k"):
        out = small_tmpfs(size) / "out"
        codes[size] = main(_cli(small_batch / "in", "--out", out))
        assert codes[size] in (ExitCode.OK, ExitCode.OUTPUT_FAILED), size
        if codes[size] == ExitCode.OUTPUT_FAILED:
            assert not list(out.glob("summary.*")), size
            assert not list(out.glob("trades.*")), size
            assert json.loads((out / "manifest.json").read_text())["state"] == (
                "running"
            )
        resumed = tmp_path / f"resumed{size}"  # the disk is freed: resume
        shutil.copytree(out, resumed)
        assert main(_cli(small_batch / "in", "--out", resumed)) == ExitCode.OK
        _same_outputs(resumed, small_batch / "ref")
    assert codes["16k"] == ExitCode.OUTPUT_FAILED
    assert codes["256k"] == ExitCode.OK


def test_an_unwritable_output_directory_is_a_clear_error(small_batch, tmp_path, caplog):
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "file" / "out"  # cannot be created, even by root
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OUTPUT_FAILED
    assert "cannot write the outputs" in caplog.text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_honour_the_umask(small_batch, tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        assert main(_cli(small_batch / "in", "--out", tmp_path / "out")) == 0
    finally:
        os.umask(previous)
    for name in ("summary.parquet", "trades.parquet", "manifest.json"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == mode, name


def test_manifest_records_the_run(small_batch, tmp_path):
    out = tmp_path / "out"
    assert main(_cli(small_batch / "in", "--out", out)) == ExitCode.OK
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "complete"
    assert manifest["as_of"] == AS_OF
    assert manifest["version"]
    assert manifest["settings"]["max_turnover"] == 0.1  # from config.toml
    assert manifest["workers"] == 1
    assert manifest["scheduler"] is None
    assert manifest["status_counts"] == {"optimal": 4}
    assert manifest["started"] <= manifest["finished"]
    lots = manifest["inputs"]["lots"]
    data = (small_batch / "in" / "lots.parquet").read_bytes()
    assert lots["sha256"] == hashlib.sha256(data).hexdigest()
    assert lots["rows"] == len(pd.read_parquet(small_batch / "in" / "lots.parquet"))
    for name in ("summary", "trades"):
        entry = manifest["outputs"][name]
        data = (out / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["rows"] == len(pd.read_parquet(out / "trades.parquet"))
    summary = pd.read_parquet(out / "summary.parquet")
    assert set(summary["as_of"]) == {AS_OF}


def test_exit_code_says_when_some_accounts_have_no_answer(tmp_path):
    tables = write_batch(tmp_path / "in", n_accounts=3, n_assets=10)
    tables["accounts"].loc[1, "cash"] = -5.0
    save(tmp_path / "in", {"accounts": tables["accounts"]})
    assert main(_cli(tmp_path / "in", "--out", tmp_path / "out")) == ExitCode.UNANSWERED
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert list(summary["status"]) == ["optimal", "invalid_input", "optimal"]


BAD_SETTINGS = {
    "flag out of range": (["--max-turnover", "10"], None, "max_turnover"),
    "text in config": ([], 'min_cash = "0.5%"\n', "min_cash"),
    "unknown key": ([], "max_turnvoer = 0.1\n", "max_turnvoer"),
    "negative weight": (["--tracking-error-weight", "-1"], None, "tracking_error"),
    "bad as_of": (["--as-of", "2026-13-01"], None, "as_of"),
    "missing config": (["--config", "typo.toml"], None, "config"),
    "unknown solver": (["--solver", "NOPE"], None, "solver"),
    "tax rate": ([], "tax_rate_long = 1.5\n", "tax_rate_long"),
    "side search": ([], 'sides = "fast"\n', "sides"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_bad_run_wide_setting_stops_the_run_before_any_solve(
    small_batch, tmp_path, case, caplog
):
    flags, config, field = BAD_SETTINGS[case]
    shutil.copytree(small_batch / "in", tmp_path / "in")
    if config is not None:
        with (tmp_path / "in" / "config.toml").open("a") as toml:
            toml.write(config)
    code = main([*_cli(tmp_path / "in", "--out", tmp_path / "out"), *flags])
    assert code == ExitCode.CANNOT_RUN
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, caplog.text  # one error, not one per account
    assert field in errors[0].getMessage()
    assert not list(tmp_path.glob("out/summary.*"))
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_log_file_has_timestamped_lines_with_as_of_and_progress(
    small_batch, tmp_path, monkeypatch
):
    monkeypatch.setattr(solver.batch.progress, "PROGRESS_SECONDS", 0.0)
    log = tmp_path / "run.log"
    args = ["batch", small_batch / "in", "--out", tmp_path / "out", "--workers", "1"]
    assert main([*map(str, args), "--log-file", str(log)]) == ExitCode.OK
    lines = log.read_text().splitlines()
    assert lines
    assert all(TIMESTAMP.match(line) for line in lines), lines
    assert any(f"as_of {AS_OF}" in line for line in lines)
    assert any("of 4 accounts" in line for line in lines)  # progress, not a bar
    assert "\r" not in log.read_text()


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = capsys.readouterr().out
    for code in ("0", "1", "2", "3", "4"):
        assert re.search(rf"^\s+{code}\s+\w", text, re.MULTILINE), code


def test_help_gives_every_numeric_flag_a_default_and_unit(capsys):
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in re.findall(r"(--[a-z-]+) X ", text):
        described = text.split(f"{flag} X ", 1)[1].split(" --", 1)[0]
        assert "(default: " in described, flag
        assert re.search(r"fraction|seconds|weight|multiplier|share", described), flag
    assert text.count(" X ") >= 9


def test_the_data_contract_lists_every_setting():
    contract = (Path(__file__).parents[2] / "docs" / "DATA.md").read_text()
    for field in fields(RunConfig):
        assert f"| `{field.name}`" in contract or f"`{field.name}`," in contract, (
            field.name
        )


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert re.fullmatch(r"rebalance \S+\n", capsys.readouterr().out)


def test_stale_output_error_for_python_callers(small_batch, tmp_path):
    out = tmp_path / "out"
    rebalance_batch(small_batch / "in", out, config=CONFIG, workers=1)
    other = RunConfig(as_of=AS_OF, max_turnover=0.2)
    with pytest.raises(StaleOutputError, match=re.escape("max_turnover: 0.1 -> 0.2")):
        rebalance_batch(small_batch / "in", out, config=other, workers=1)
    again = rebalance_batch(
        small_batch / "in", out, config=other, workers=1, restart=True
    )
    assert again.solved_now == 4


def test_net_side_rule_is_a_batch_setting_and_never_beats_auto(small_batch, tmp_path):
    """``--sides net`` (relax-fix-resolve): every account solved, none with a
    lower objective than the default run's, and the setting recorded."""
    out = tmp_path / "net"
    assert main([*_cli(small_batch / "in", "--out", out), "--sides", "net"]) == 0
    net = pd.read_parquet(out / "summary.parquet").set_index("account_id")
    auto = pd.read_parquet(small_batch / "ref" / "summary.parquet")
    auto = auto.set_index("account_id").loc[net.index]
    assert (net["status"] == "optimal").all()
    assert (net["objective_continuous"] >= auto["objective_continuous"] - 1e-9).all()
    bounds = net["objective_bound"] - auto["objective_bound"]
    assert bounds.abs().max() < 1e-9  # the same relaxed program
    assert json.loads((out / "manifest.json").read_text())["settings"]["sides"] == "net"


def test_sigterm_stops_the_workers_too_and_the_run_resumes(tmp_path):
    # a scheduler's kill: without a handler the parent alone would end
    write_batch(tmp_path / "in", n_accounts=200, n_assets=40)
    out, log = tmp_path / "out", tmp_path / "log"
    process = _start(tmp_path / "in", out, log, "--workers", "2")
    deadline = time.monotonic() + 120
    while not list((out / ".parts").glob("*.commit.json")):
        assert time.monotonic() < deadline, "the run committed nothing in 120 s"
        assert process.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.02)
    workers = psutil.Process(process.pid).children(recursive=True)
    assert workers
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(60) == 143
    psutil.wait_procs(workers, timeout=10)
    assert not [w.pid for w in workers if w.is_running()]
    assert main(_cli(tmp_path / "in", "--out", tmp_path / "out")) == ExitCode.OK
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert len(summary) == 200
