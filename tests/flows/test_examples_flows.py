"""The example flows of examples/flows/, each on file:// and on s3:// (the moto server), run
in-process by faas.flows.run with the real providers; compute on a real local endpoint."""
from __future__ import annotations

import io
import json
import posixpath
import tarfile
from pathlib import Path

import jsonschema
import pytest
from helpers import running_endpoint

import faas
import faas.flows as ff
from faas.flows.actions.files import open_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def load(name):
    defn = ff.load(EXAMPLES / f"{name}.json")
    schema = json.loads((EXAMPLES / f"{name}.schema.json").read_text())
    return defn, schema


def start(name, input, site, **kw):
    """What a runner does at start: validate the definition and the input, then run."""
    defn, schema = load(name)
    assert ff.validate(defn) == []
    jsonschema.validate(input, schema)
    return ff.run(defn, input, actions="site", store_url=site["store"],
                  config={"collections": site["collections"]}, **kw)


def put_tree(base_url: str, files: dict) -> None:
    fs, root = open_url(base_url)
    for rel, data in files.items():
        fs.write(posixpath.join(root, rel), io.BytesIO(data))


def read_tree(base_url: str) -> dict:
    fs, root = open_url(base_url)
    if fs.info(root) is None:
        return {}
    return {rel: fs.read_bytes(posixpath.join(root, rel)) for rel, _ in fs.walk(root)}


def png(w, h, color):
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (w, h), color).save(out, format="png")
    return out.getvalue()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, moto_url):
    """A local endpoint; started after moto_url set AWS_ENDPOINT_URL, so its workers reach S3."""
    home = tmp_path_factory.mktemp("flows-examples") / "faas-home"
    with running_endpoint(home):
        c = faas.client()
        import importlib.util
        spec = importlib.util.spec_from_file_location("flows_example_functions", EXAMPLES / "functions.py")
        functions = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(functions)
        ids = {f: c.register_function(getattr(functions, f)) for f in ("make_thumbnails", "simple_tar")}
        c.close()
        yield ids


@pytest.fixture(params=["file", "s3"])
def site(request, tmp_path, endpoint):
    if request.param == "file":
        bases = {n: (tmp_path / n).as_uri() for n in ("src", "mid", "dst")}
    else:
        bucket = request.getfixturevalue("s3_bucket")
        bases = {n: f"s3://{bucket}/{n}" for n in ("src", "mid", "dst")}
    return {"store": (tmp_path / "site-store").as_uri(), "collections": bases, "fns": endpoint,
            "backend": request.param}


DATA = {"run7/a.txt": b"alpha\n" * 100, "run7/sub/b.bin": bytes(range(256)) * 1000, "run7/c.txt": b"c"}


def sub(tree: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in tree.items() if k.startswith(prefix)}


def test_transfer_and_process(site):
    c = site["collections"]
    images = {"in/photo1.png": png(400, 300, (200, 10, 10)), "in/photo2.png": png(90, 600, (0, 0, 200)),
              "in/notes.txt": b"not an image"}
    put_tree(c["src"], images)
    doc = start("transfer_and_process", {"input": {
        "source": {"id": "src", "path": "/in/"},
        "destination": {"id": "dst", "path": "/~/images/"},
        "recursive_tx": True,
        "compute_endpoint_id": "local",
        "compute_function_id": site["fns"]["make_thumbnails"],
        "compute_function_kwargs": {"src_url": c["dst"] + "/images", "dst_url": c["dst"] + "/thumbs",
                                    "size": 64}}}, site)
    assert doc["status"] == "SUCCEEDED", doc
    out = doc["output"]
    assert out["TransferFiles"]["details"]["files_transferred"] == 3
    assert out["ProcessFiles"]["details"]["results"][0]["output"] == {
        "thumbnails": ["photo1.thumb.jpg", "photo2.thumb.jpg"], "skipped": ["notes.txt"]}
    from PIL import Image
    thumbs = read_tree(c["dst"] + "/thumbs")
    sizes = {k: Image.open(io.BytesIO(v)).size for k, v in thumbs.items()}
    assert sizes == {"photo1.thumb.jpg": (64, 48), "photo2.thumb.jpg": (10, 64)}
    assert [e["code"] for e in doc["log"]] == ["FlowStarted", "ActionStarted", "ActionCompleted",
                                               "ActionStarted", "ActionCompleted", "FlowSucceeded"]


def test_tar_and_transfer(site):
    c = site["collections"]
    put_tree(c["src"], DATA)
    doc = start("tar_and_transfer", {"input": {
        "source": {"id": "src", "path": "/run7"}, "gcs_base_path": c["src"],
        "destination": {"id": "dst", "path": "/archive/"},
        "compute_endpoint_id": "local", "compute_function_id": site["fns"]["simple_tar"]}}, site)
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["TarFiles"]["details"]["result"] == ["/run7.tar.gz"]
    got = read_tree(c["dst"])
    assert list(got) == ["archive/run7.tar.gz"]
    with tarfile.open(fileobj=io.BytesIO(got["archive/run7.tar.gz"])) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert members == DATA


def test_tar_and_transfer_bad_function_fails_the_run(site):
    doc = start("tar_and_transfer", {"input": {
        "source": {"id": "src", "path": "/nothing"}, "gcs_base_path": site["collections"]["src"],
        "destination": {"id": "dst", "path": "/archive/"},
        "compute_endpoint_id": "local", "compute_function_id": "f" * 64}}, site)
    assert doc["status"] == "FAILED" and doc["error"] == "ActionUnableToRun"
    assert "not registered" in doc["cause"]


def test_move(site):
    c = site["collections"]
    put_tree(c["src"], DATA)
    doc = start("move", {"source": {"id": "src", "path": "/run7"},
                         "destination": {"id": "dst", "path": "/moved/run7"}}, site)
    assert doc["status"] == "SUCCEEDED", doc
    assert sub(read_tree(c["dst"]), "moved/") == DATA
    assert read_tree(c["src"]) == {}
    assert doc["output"]["TransferResult"]["details"]["files_transferred"] == 3


def test_move_keeps_the_source_when_the_copy_fails(site):
    c = site["collections"]
    put_tree(c["src"], DATA)
    doc = start("move", {"source": {"id": "src", "path": "/run7"},
                         "destination": {"id": "nowhere", "path": "/x"}}, site)
    assert doc["status"] == "FAILED" and doc["error"] == "ActionUnableToRun"
    assert "nowhere" in doc["cause"]
    assert read_tree(c["src"]) == DATA


def test_two_stage_transfer(site):
    c = site["collections"]
    put_tree(c["src"], DATA)
    doc = start("two_stage_transfer", {"source": {"id": "src", "path": "/run7"},
                                       "intermediate": {"id": "mid", "path": "/tmp/run7"},
                                       "destination": {"id": "dst", "path": "/final/run7"}}, site)
    assert doc["status"] == "SUCCEEDED", doc
    assert sub(read_tree(c["dst"]), "final/") == DATA
    assert read_tree(c["mid"]) == {}                 # the intermediate copy was cleaned up
    assert read_tree(c["src"]) == DATA               # a transfer, not a move


def test_two_stage_transfer_cleans_up_after_a_failed_second_stage(site):
    c = site["collections"]
    put_tree(c["src"], DATA)
    doc = start("two_stage_transfer", {"source": {"id": "src", "path": "/run7"},
                                       "intermediate": {"id": "mid", "path": "/tmp/run7"},
                                       "destination": {"id": "file:///proc/1/nope", "path": "/x"}}, site)
    assert doc["status"] == "FAILED" and doc["error"] == "StageTwoFailed", doc
    assert read_tree(c["mid"]) == {}
    assert doc["output"]["CleanUp"]["details"]["items_deleted"] == 1


def test_bad_input_is_refused_by_the_schema():
    _, schema = load("move")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"source": {"id": "src"}, "destination": {"id": "d", "path": "/x"}}, schema)
