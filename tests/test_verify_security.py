"""A bundle is untrusted input from a stranger: crafted bundles (code to import, a bomb, a
relabelled or forged cell, an extra member, a garbage spec, an over-cost spec) are refused in
one line with exit status 2, before any re-run; nothing is written outside a temporary folder
that is removed; no code a bundle names or holds ever runs."""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.cells import cell_id as spec_id
from core.schema import CELL_SCHEMA, METRIC_SCHEMA
from core.spec import CellSpec, TrainConfig, canonical_json
from harness.bundle import CELLS, MANIFEST, METRICS, Limits
from harness.cli import main
from harness.verify import SECRET_ENV, draw_seed, verify
from tests.tiny import members_of, tiny_preset, tiny_store
from tests.tiny import pack as pack_members

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("honest")
    _, results = tiny_store(root)
    out = root / "entry.tar.gz"
    assert main(["submit", "--results", str(results), "--out", str(out)]) == 0
    return out


def pack(path: Path, members: dict[str, bytes]) -> Path:
    """The members as a bundle whose manifest lists every member's true SHA-256 (a forger
    controls the whole bundle, so the integrity check alone proves nothing)."""
    manifest = json.loads(members[MANIFEST])
    listed = {n: d for n, d in members.items() if n != MANIFEST}
    manifest["members"] = {
        n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for n, d in listed.items()
    }
    return pack_members(path, {**members, MANIFEST: json.dumps(manifest).encode()})


def table(members: dict[str, bytes], name: str) -> list[dict]:
    return pq.read_table(io.BytesIO(members[name])).to_pylist()


def parquet(rows: list[dict], schema: pa.Schema) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


def with_cells(members: dict[str, bytes], cells: list[dict], metrics: list[dict] | None = None) -> dict:
    out = {**members, CELLS: parquet(cells, CELL_SCHEMA)}
    if metrics is not None:
        out[METRICS] = parquet(metrics, METRIC_SCHEMA)
    return out


def temporaries() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("prunebench-verify-")}


def refused(tmp_path: Path, bundle: Path, capsys, *extra: str) -> str:
    """Verify ``bundle``: exit 2, one line on stderr, no re-run, nothing written anywhere."""
    before, temps = sorted(tmp_path.rglob("*")), temporaries()
    accept = tmp_path / "board"
    assert main(["verify", str(bundle), "--accept-into", str(accept), *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prunebench: error: "), captured.err
    assert "re-running" not in captured.out, "refused before any re-run"
    assert sorted(tmp_path.rglob("*")) == before and not accept.exists()
    assert temporaries() == temps
    return lines[0]


def test_code_a_bundle_names_is_never_imported(bundle, tmp_path):
    """A cell whose pruner is not registered here names a plugin module that is importable
    (on PYTHONPATH): verify refuses without importing it; the module's top level would have
    created a file."""
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "imported.txt"
    (planted / "pb_planted_plugin.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    members = members_of(bundle)
    cells = table(members, CELLS)
    spec = json.loads(cells[0]["spec_json"])
    spec.update(pruner="planted_pruner", plugin="pb_planted_plugin==1.0")
    cells[0].update(pruner="planted_pruner", plugin="pb_planted_plugin", plugin_version="1.0",
                    spec_json=canonical_json(spec))  # fmt: skip
    manifest = json.loads(members[MANIFEST])
    manifest["plugins"] = [{"name": "pb_planted_plugin", "version": "1.0"}]
    crafted = pack(
        tmp_path / "import.tar.gz", with_cells({**members, MANIFEST: json.dumps(manifest).encode()}, cells)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(planted), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "verify", str(crafted), "--accept-into", str(tmp_path / "board")],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pruner 'planted_pruner' is not registered here" in lines[0], proc.stderr
    assert "imports nothing a bundle names" in lines[0]
    assert not marker.exists(), "the bundle's plugin module was imported"
    assert not (tmp_path / "board").exists()
    # the module is importable: had verify imported it, the file would exist
    subprocess.run([sys.executable, "-c", "import pb_planted_plugin"], env=env, check=True, cwd=tmp_path)
    assert marker.exists()


def test_members_over_their_limits_are_refused_before_being_read(bundle, tmp_path, capsys):
    members = members_of(bundle)
    # a member whose header states more than its limit: refused from the header, nothing read
    header = tarfile.TarInfo(METRICS)
    header.size = 2**31
    path = tmp_path / "header-bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo(MANIFEST), io.BytesIO(b""))
        tar.fileobj.write(header.tobuf())  # the header alone: its data would be 2 GiB
    line = refused(tmp_path, path, capsys)
    assert f"member {METRICS!r} states 2147483648 bytes, over its limit of 512 MiB" in line
    # a study manifest of 9 MiB (a few KiB compressed): over the 8 MiB JSON cap
    bomb = {**members, "studies/big.json": b"{" + b" " * (9 << 20) + b"}"}
    line = refused(tmp_path, pack(tmp_path / "json-bomb.tar.gz", bomb), capsys)
    assert "member 'studies/big.json' states 9437186 bytes, over its limit of 8 MiB" in line
    # too many members
    many = {**members, **{f"studies/s{i}.json": b"{}" for i in range(40)}}
    assert "more than 40 members" in refused(tmp_path, pack(tmp_path / "many.tar.gz", many), capsys)


def test_limits_are_enforced_while_streaming_and_on_the_file(bundle, tmp_path, capsys):
    """The same limits, smaller: the metrics member is read in chunks and stops at its cap; a
    bundle file over the file limit is not opened."""
    assert verify(str(bundle), limits=Limits(metrics_bytes=1024)) == 2
    assert "member 'metrics.parquet' states" in capsys.readouterr().err
    assert verify(str(bundle), limits=Limits(bundle_bytes=100)) == 2
    assert "over the limit of 0 MiB" in capsys.readouterr().err
    assert verify(str(bundle), sample=17) == 2
    assert "--sample 17: must be from 1 to 16" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("pruner", "global_magnitude", "column pruner is 'global_magnitude', its spec says 'random'"),
        ("sparsity", 0.9, "column sparsity is 0.9, its spec says 0.5"),
        ("arch", "cnn_32x3_fc256", "column arch is 'cnn_32x3_fc256', its spec says 'mlp_256x2'"),
        ("epochs_dense", 30.0, "epochs_dense 30, its spec's dense parent trains 1"),
    ],
)
def test_a_relabelled_cell_is_refused(bundle, tmp_path, capsys, column, value, says):
    members = members_of(bundle)
    cells = table(members, CELLS)
    victim = next(c for c in cells if c["pruner"] == "random")
    victim[column] = value
    line = refused(tmp_path, pack(tmp_path / "relabel.tar.gz", with_cells(members, cells)), capsys)
    assert f"refused: cell {victim['cell_id']!r}: {says}" in line


def test_a_forged_cell_outside_the_sample_is_refused(bundle, tmp_path, capsys):
    """A cell never run: another seed's spec (id, parent and columns all consistent) carrying
    the numbers of an existing cell. Whatever the sample, the dense rows give it away: two dense
    parents (seeds) never measure identical numbers."""
    members = members_of(bundle)
    cells, metrics = table(members, CELLS), table(members, METRICS)
    source = next(c for c in cells if c["pruner"] == "global_magnitude")
    spec = CellSpec.from_dict(json.loads(source["spec_json"])).with_(seed=1)
    forged = {**source, "cell_id": spec_id(spec), "parent_id": spec.parent.id, "seed": 1,
              "spec_json": canonical_json(spec.to_dict())}  # fmt: skip
    copied = [{**r, "cell_id": forged["cell_id"]} for r in metrics if r["cell_id"] == source["cell_id"]]
    crafted = pack(tmp_path / "forged.tar.gz", with_cells(members, [*cells, forged], [*metrics, *copied]))
    line = refused(tmp_path, crafted, capsys, "--sample", "1", "--seed", "0")
    pair = {source["parent_id"], forged["parent_id"]}
    assert "its dense rows are identical to those of dense parent" in line and "copied numbers" in line
    assert any(f"dense parent {p} (another seed or recipe)" in line for p in pair)
    # an edited dense number of one cell: its sibling of the same parent disagrees
    edited = [dict(r) for r in metrics]
    row = next(r for r in edited if r["cell_id"] == source["cell_id"] and r["phase"] == "dense"
               and r["metric"] == "accuracy" and r["eval_set"] == "test" and r["class"] is None)  # fmt: skip
    row["value"] -= 0.01
    line = refused(tmp_path, pack(tmp_path / "edited.tar.gz", with_cells(members, cells, edited)), capsys)
    assert f"the cells of dense parent {source['parent_id']} report different dense rows" in line


@pytest.mark.parametrize(
    ("member", "data", "says"),
    [
        ("studies/evil.pkl", b"\x80\x04\x95", "member 'studies/evil.pkl' is not part of the bundle format"),
        ("notes.txt", b"hello", "member 'notes.txt' is not part of the bundle format"),
        ("studies/x.json", b"[1, 2]", "studies/x.json is not a JSON object"),
    ],
)
def test_a_member_the_format_does_not_define_is_refused(bundle, tmp_path, capsys, member, data, says):
    members = {**members_of(bundle), member: data}
    assert says in refused(tmp_path, pack(tmp_path / "extra.tar.gz", members), capsys)


@pytest.mark.parametrize(
    ("spec_json", "says"),
    [
        ("{not json", "spec_json is not valid JSON"),
        ("[1, 2, 3]", "spec_json is not a JSON object"),
        ("1" * 70_000, "spec_json is not a string of at most 65536 characters"),
        ('{"spec_version": 2, "pruner": "random"}', "spec_json is not a cell spec: train is not a table"),
    ],
)
def test_a_garbage_spec_is_one_line(bundle, tmp_path, capsys, spec_json, says):
    members = members_of(bundle)
    cells = table(members, CELLS)
    cells[0]["spec_json"] = spec_json
    line = refused(tmp_path, pack(tmp_path / "garbage.tar.gz", with_cells(members, cells)), capsys)
    assert says in line


def test_a_spec_that_would_cost_too_much_to_rerun_is_refused(bundle, tmp_path, capsys):
    """A 100000-epoch dense parent, consistent in every column: refused before any training."""
    members = members_of(bundle)
    cells, metrics = table(members, CELLS), table(members, METRICS)
    source = cells[0]
    old = CellSpec.from_dict(json.loads(source["spec_json"]))
    spec = old.with_(train=TrainConfig(**{**old.train.as_dict(), "epochs": 100_000}))
    cells[0] = {**source, "cell_id": spec_id(spec), "parent_id": spec.parent.id, "epochs_dense": 100_000.0,
                "spec_json": canonical_json(spec.to_dict())}  # fmt: skip
    metrics = [
        {**r, "cell_id": cells[0]["cell_id"]} if r["cell_id"] == source["cell_id"] else r for r in metrics
    ]
    line = refused(tmp_path, pack(tmp_path / "costly.tar.gz", with_cells(members, cells, metrics)), capsys)
    assert "a re-run costs 100001 training epochs, over the limit of 200" in line


def test_the_sample_is_unpredictable_and_printed(bundle, monkeypatch, capsys):
    """Without --seed the seed comes from the bundle's hash and a secret (or the time): a
    submitter cannot know it; it is printed, and --seed repeats the verification."""
    monkeypatch.delenv(SECRET_ENV, raising=False)
    assert len({draw_seed("ab" * 32)[0] for _ in range(5)}) == 5  # the time and OS randomness
    monkeypatch.setenv(SECRET_ENV, "verifier-secret")
    a, source = draw_seed("ab" * 32)
    assert draw_seed("ab" * 32)[0] == a != draw_seed("cd" * 32)[0] and "secret" in source
    monkeypatch.delenv(SECRET_ENV)
    assert main(["verify", str(bundle), "--sample", "1"]) == 0
    out = capsys.readouterr().out
    seed = int(out.split("sample seed ")[1].split()[0])
    assert f"repeat this verification with --seed {seed}" in out
    picked = next(ln for ln in out.splitlines() if ln.startswith("ok "))
    assert main(["verify", str(bundle), "--sample", "1", "--seed", str(seed)]) == 0
    assert picked in capsys.readouterr().out  # the same cell again


@pytest.mark.slow  # four harness processes
def test_a_plugins_cells_are_re_run_with_the_plugin_the_verifier_names(tmp_path):
    """The plugin a bundle's cells need runs only when the verifier names it (--plugin); without
    it the bundle is refused in one line, the plugin never imported from the bundle's word."""
    from tests.test_plugins import SRC_MODULE, SRC_PLUGIN, SRC_PRUNER

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / f"{SRC_MODULE}.py").write_text(SRC_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "src"), str(ROOT)])}
    preset = tiny_preset(tmp_path, pruners=f'["{SRC_PRUNER}"]')

    def harness(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True)  # fmt: skip

    results, bundle = tmp_path / "results", tmp_path / "plugin.tar.gz"
    run = harness("run-all", "--preset", str(preset), "--results", str(results), "--workers", "1",
                  "--no-report", "--plugin", SRC_MODULE)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert harness("submit", "--results", str(results), "--out", str(bundle)).returncode == 0
    refused = harness("verify", str(bundle))
    assert refused.returncode == 2 and f"pruner '{SRC_PRUNER}' is not registered here" in refused.stderr
    accepted = harness("verify", str(bundle), "--sample", "1", "--plugin", SRC_MODULE)
    assert accepted.returncode == 0 and "verdict: accepted: 1 of 1" in accepted.stdout, accepted.stderr
