"""src/inference.py: the four SageMaker functions, their codecs, client errors and model integrity."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import imported_src_modules

from greenlight.data import default_dataset_csv

SRC = Path(__file__).resolve().parents[2] / "src"
SERVING = ("inference", "payload", "compact_forest", "sagemaker_entry", "lambda_function", "train")


@pytest.fixture(scope="module")
def src_modules():
    """src/ modules imported by bare name, as the containers do; forgotten afterwards."""
    with imported_src_modules(SERVING) as modules:
        yield modules


def train_model(train, tmp: Path, csv: bytes, name: str = "model", trees: int = 20) -> Path:
    data = tmp / f"{name}-data"
    data.mkdir()
    (data / "train.csv").write_bytes(csv)
    model_dir = tmp / name
    assert train.main(["--train", str(data), "--model-dir", str(model_dir), "--n_estimators", str(trees),
                       "--n_jobs", "1", "--code-dir", str(SRC)]) == 0
    return model_dir


def target_first(csv: bytes) -> bytes:
    """The bundled data has the target last; train.py wants it first (what preprocess.py writes)."""
    lines = csv.decode().splitlines()
    return ("\n".join(",".join([ln.split(",")[-1], *ln.split(",")[:-1]]) for ln in lines) + "\n").encode()


@pytest.fixture(scope="module")
def model_dir(src_modules, tmp_path_factory):
    return train_model(src_modules.train, tmp_path_factory.mktemp("inference"), target_first(default_dataset_csv()))


@pytest.fixture(scope="module")
def nan_model_dir(src_modules, tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = np.nan_to_num(X[:, 0]) + 2 * np.isnan(X[:, 1])
    lines = ["target,a,b,c"] + [",".join([repr(float(t)), *("" if np.isnan(v) else repr(float(v)) for v in row)])
                                for t, row in zip(y, X, strict=True)]
    return train_model(src_modules.train, tmp_path_factory.mktemp("nan"), ("\n".join(lines) + "\n").encode(), "nan")


@pytest.fixture
def inf(src_modules):
    return src_modules.inference


@pytest.fixture
def model(inf, model_dir):
    return inf.model_fn(str(model_dir))


@pytest.fixture(scope="module")
def reference(model_dir):
    """scikit-learn's own predictions for the first rows of the training data."""
    import joblib

    sk = joblib.load(model_dir / "model.joblib")
    meta = json.loads((model_dir / "metadata.json").read_text())
    rows = np.loadtxt(io.StringIO(default_dataset_csv().decode()), delimiter=",", skiprows=1)[:25, :-1]
    return meta["feature_names"], rows, sk.predict(rows)


def serve(inf, model, body, content_type, accept="application/json"):
    return inf.output_fn(inf.predict_fn(inf.input_fn(body, content_type), model), accept)


# --- round trips -------------------------------------------------------------------------------


def test_metadata_and_layout(model, model_dir, src_modules):
    meta = model.metadata
    assert meta["forest_file"] == "forest.json" and meta["forest_format"] == "greenlight-forest/2"
    assert meta["forest"]["trees"] == 20
    assert len(meta["forest_sha256"]) == 64
    assert model.predictor_name == "greenlight-forest/2"
    # metadata.json names every forest file with its sha256 (the image's model layer is taken from them)
    arrays = sorted(p.name for p in model_dir.glob("forest.*.npy"))
    assert sorted(meta["forest_files"]) == arrays and len(arrays) >= 7
    assert all(src_modules.train.sha256_of(model_dir / name) == digest for name, digest in meta["forest_files"].items())
    assert sorted(p.name for p in (model_dir / "code").iterdir()) == sorted(src_modules.train.SERVING_CODE)


@pytest.mark.parametrize("shape", ["instances", "rows", "single", "records"])
def test_json_round_trip(inf, model, reference, shape):
    names, rows, expected = reference
    doc = {"instances": rows.tolist(), "rows": rows.tolist(), "single": rows[0].tolist(),
           "records": [dict(zip(names, r, strict=True)) for r in rows.tolist()]}[shape]
    body, ctype = serve(inf, model, json.dumps(doc).encode(), "application/json")
    assert ctype == "application/json"
    got = json.loads(body)["predictions"]
    want = expected[:1] if shape == "single" else expected
    assert got == want.tolist()  # floats survive JSON exactly


def test_records_in_any_key_order(inf, model, reference):
    names, rows, expected = reference
    records = [dict(reversed(list(zip(names, r, strict=True)))) for r in rows[:3].tolist()]
    body, _ = serve(inf, model, json.dumps(records), "application/json")
    assert json.loads(body)["predictions"] == expected[:3].tolist()


@pytest.mark.parametrize("n", [1, 25])
def test_csv_round_trip(inf, model, reference, n):
    _, rows, expected = reference
    csv = "\n".join(",".join(repr(v) for v in r) for r in rows[:n].tolist()) + "\n"
    body, ctype = serve(inf, model, csv, "text/csv; charset=utf-8", accept="text/csv")
    assert ctype == "text/csv"
    assert [float(v) for v in body.splitlines()] == expected[:n].tolist()


def test_csv_with_crlf_and_blank_lines(inf, model, reference):
    _, rows, expected = reference
    csv = "\r\n".join(",".join(repr(v) for v in r) for r in rows[:3].tolist()) + "\r\n\r\n"
    body, _ = serve(inf, model, csv.encode(), "text/csv")
    assert json.loads(body)["predictions"] == expected[:3].tolist()


def test_npy_round_trip(inf, model, reference):
    _, rows, expected = reference
    buf = io.BytesIO()
    np.save(buf, rows)
    body, _ = serve(inf, model, buf.getvalue(), "application/x-npy")
    assert json.loads(body)["predictions"] == expected.tolist()
    buf = io.BytesIO()
    np.save(buf, rows[0].astype(np.float32))  # one row, float32
    body, _ = serve(inf, model, buf.getvalue(), "application/x-npy")
    assert json.loads(body)["predictions"] == expected[:1].tolist()


@pytest.mark.parametrize("accept,ctype", [("*/*", "application/json"), ("", "application/json"),
                                          (None, "application/json"), ("application/xml, text/csv", "text/csv"),
                                          ("text/*", "text/csv")])
def test_accept_negotiation(inf, model, reference, accept, ctype):
    _, rows, expected = reference
    body, got = serve(inf, model, json.dumps(rows[0].tolist()), "application/json", accept=accept)
    assert got == ctype


def test_predict_fn_takes_plain_arrays(inf, model, reference):
    _, rows, expected = reference
    assert inf.predict_fn(rows, model).tolist() == expected.tolist()
    assert inf.predict_fn(rows[:1], model).tolist() == expected[:1].tolist()


def test_missing_content_type_is_json(inf, model, reference):
    _, rows, expected = reference
    body, _ = serve(inf, model, json.dumps([rows[0].tolist()]), None)
    assert json.loads(body)["predictions"] == expected[:1].tolist()


# --- client errors -----------------------------------------------------------------------------


def row_csv(values) -> str:
    return ",".join(str(v) for v in values)


GOOD = [0.01] * 10
BAD_INPUTS = [
    # (id, body, content type, status, error, row, column)
    ("empty", b"", "application/json", 400, "empty_body", None, None),
    ("blank", "  \n ", "text/csv", 400, "empty_body", None, None),
    ("not-json", "{oops", "application/json", 400, "malformed_json", None, None),
    ("not-utf8", b"\xff\xfe1,2", "text/csv", 400, "bad_encoding", None, None),
    ("json-scalar", "3", "application/json", 400, "bad_shape", None, None),
    ("json-dict", '{"rows": []}', "application/json", 400, "bad_shape", None, None),
    ("no-rows", '{"instances": []}', "application/json", 400, "no_rows", None, None),
    ("too-few", json.dumps([GOOD[:9]]), "application/json", 400, "wrong_feature_count", None, None),
    ("too-many-csv", row_csv(GOOD + [1]), "text/csv", 400, "wrong_feature_count", None, None),
    ("ragged-csv", row_csv(GOOD) + "\n" + row_csv(GOOD[:8]), "text/csv", 400, "wrong_feature_count", 1, None),
    ("ragged-json", json.dumps([GOOD, GOOD[:8]]), "application/json", 400, "wrong_feature_count", 1, None),
    ("string", json.dumps([GOOD[:3] + ["abc"] + GOOD[4:]]), "application/json", 400, "non_numeric", 0, 3),
    ("numeric-string", json.dumps([GOOD[:3] + ["1.5"] + GOOD[4:]]), "application/json", 400, "non_numeric", 0, 3),
    ("bool", json.dumps([GOOD, GOOD[:5] + [True] + GOOD[6:]]), "application/json", 400, "non_numeric", 1, 5),
    ("csv-word", row_csv(GOOD) + "\n" + row_csv(GOOD[:2] + ["x"] + GOOD[3:]), "text/csv", 400, "non_numeric", 1, 2),
    ("csv-header", "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n" + row_csv(GOOD), "text/csv", 400, "non_numeric", 0, 0),
    ("nan-json", "[" + row_csv(GOOD[:4] + ["NaN"] + GOOD[5:]) + "]", "application/json", 400, "missing_value", 0, 4),
    ("null-json", json.dumps([GOOD[:6] + [None] + GOOD[7:]]), "application/json", 400, "missing_value", 0, 6),
    ("nan-csv", row_csv(GOOD) + "\n" + row_csv(GOOD[:7] + ["nan"] + GOOD[8:]), "text/csv", 400, "missing_value", 1, 7),
    ("inf", row_csv(GOOD[:1] + ["inf"] + GOOD[2:]), "text/csv", 400, "non_finite", 0, 1),
    ("float32-overflow", json.dumps([GOOD[:2] + [1e39] + GOOD[3:]]), "application/json", 400, "out_of_range", 0, 2),
    ("huge-int", json.dumps([GOOD[:2] + [10**400] + GOOD[3:]]), "application/json", 400, "out_of_range", 0, 2),
    ("nested", json.dumps([[GOOD]]), "application/json", 400, "non_numeric", 0, 0),
    ("unknown-name", None, "application/json", 400, "unknown_feature", None, "height"),
    ("unknown-in-row-1", None, "application/json", 400, "unknown_feature", 1, "height"),
    ("missing-name", None, "application/json", 400, "missing_feature", 1, "bmi"),
    ("content-type", "1,2", "application/xml", 415, "unsupported_content_type", None, None),
    ("npy-garbage", b"\x93NUMPY garbage", "application/x-npy", 400, "malformed_npy", None, None),
]


def bad_body(case, names):
    ident, body = case[0], case[1]
    if ident == "unknown-name":
        return json.dumps([{**dict(zip(names, GOOD, strict=True)), "height": 1.0}])
    if ident == "unknown-in-row-1":
        good = dict(zip(names, GOOD, strict=True))
        return json.dumps([good, {**good, "height": 1.0}])
    if ident == "missing-name":
        good = dict(zip(names, GOOD, strict=True))
        return json.dumps([good, {k: v for k, v in good.items() if k != "bmi"}])
    return body


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_each_bad_input_is_its_client_error(inf, model, reference, case):
    ident, _, ctype, status, error, row, column = case
    with pytest.raises(inf.PayloadError) as caught:
        serve(inf, model, bad_body(case, reference[0]), ctype)
    exc = caught.value
    assert (exc.status_code, exc.error, exc.row, exc.column) == (status, error, row, column), exc.message
    assert json.loads(exc.to_json()) == {"error": error, "message": exc.message, "row": row, "column": column}
    assert isinstance(exc, ValueError)


def test_too_large_is_413(inf, model, monkeypatch):
    body = (row_csv(GOOD) + "\n") * 1000
    with pytest.raises(inf.PayloadError) as caught:
        inf.input_fn(body, "text/csv", max_bytes=1000)
    assert (caught.value.status_code, caught.value.error) == (413, "payload_too_large")
    monkeypatch.setenv("GREENLIGHT_MAX_PAYLOAD_BYTES", "2000")
    with pytest.raises(inf.PayloadError, match="limit is 2000"):
        inf.input_fn(body, "text/csv")
    monkeypatch.delenv("GREENLIGHT_MAX_PAYLOAD_BYTES")
    assert inf.input_fn(body, "text/csv").values.shape == (1000, 10)  # under the 4 MiB default
    assert inf.MAX_PAYLOAD_BYTES == 4 * 1024 * 1024


def test_unsupported_accept_is_406(inf, model):
    with pytest.raises(inf.PayloadError) as caught:
        inf.output_fn(np.array([1.0]), "application/xml")
    assert (caught.value.status_code, caught.value.error) == (406, "unsupported_accept")


def test_csv_output_is_each_value_s_repr_on_its_own_line(inf):
    # every float64 that can come out, the shortest repr that round-trips, one a line; none for no rows
    values = [0.0, -0.0, 1.0, 0.1, 1 / 3, -2.5e-300, 5e-324, 1.7976931348623157e308, 152.13257575757575,
              1e16, 123456789012345678.0, float("nan"), float("inf"), float("-inf")]
    body, kind = inf.output_fn(np.array(values), "text/csv")
    assert kind == "text/csv"
    assert body == "".join(repr(v) + "\n" for v in values)
    assert [float(line) for line in body.splitlines()][:11] == values[:11]
    assert inf.output_fn(np.array([]), "text/csv") == ("", "text/csv")
    assert inf.output_fn([2.0, 0.5], "text/csv") == ("2.0\n0.5\n", "text/csv")


def test_predict_fn_checks_unchecked_rows(inf, model):
    with pytest.raises(inf.PayloadError) as caught:
        inf.predict_fn(np.ones((2, 3)), model)
    assert caught.value.error == "wrong_feature_count"


def test_nan_allowed_when_trained_with_missing_values(inf, nan_model_dir):
    import joblib

    model = inf.model_fn(str(nan_model_dir))
    assert model.schema.allow_nan
    rows = [[0.5, None, 1.0], [None, None, None], [1.0, 2.0, -1.0]]
    body, _ = serve(inf, model, json.dumps(rows), "application/json")
    X = np.array(rows, dtype=np.float64)
    assert json.loads(body)["predictions"] == joblib.load(nan_model_dir / "model.joblib").predict(X).tolist()
    body, _ = serve(inf, model, "0.5,nan,1.0", "text/csv")
    assert json.loads(body)["predictions"] == [json.loads(serve(inf, model, "[[0.5,null,1.0]]",
                                                                "application/json")[0])["predictions"][0]]
    with pytest.raises(inf.PayloadError) as caught:  # inf stays refused
        serve(inf, model, "0.5,inf,1.0", "text/csv")
    assert caught.value.error == "non_finite"


# --- integrity ---------------------------------------------------------------------------------


def copy_model(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(("victim", "served_by"), [("forest.json", "forest"), ("forest.threshold.npy", "forest"),
                                                   ("forest.child.npy", "forest"), ("model.joblib", "joblib")])
def test_tampered_model_file_is_refused(inf, model_dir, tmp_path, victim, served_by):
    bad = copy_model(model_dir, tmp_path / "m")
    if served_by == "joblib":  # model.joblib is read (and checked) only when there is no forest
        (bad / "forest.json").unlink()
    data = bytearray((bad / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bad / victim).write_bytes(bytes(data))
    with pytest.raises(inf.ModelIntegrityError, match=f"refusing {re.escape(victim)}: its sha256 is"):
        inf.model_fn(str(bad))


def test_forest_format_mismatch_is_refused(inf, model_dir, tmp_path):
    bad = copy_model(model_dir, tmp_path / "m")
    meta = json.loads((bad / "metadata.json").read_text())
    (bad / "metadata.json").write_text(json.dumps({**meta, "forest_format": "greenlight-forest/9"}))
    with pytest.raises(inf.ModelIntegrityError, match="format 'greenlight-forest/9'"):
        inf.model_fn(str(bad))


def test_joblib_fallback_needs_the_same_scikit_learn(inf, model_dir, tmp_path, reference):
    # GIVEN a model directory without a forest file (served by model.joblib through scikit-learn)
    old = copy_model(model_dir, tmp_path / "m")
    (old / "forest.json").unlink()
    meta = json.loads((old / "metadata.json").read_text())
    model = inf.model_fn(str(old))
    assert model.predictor_name == "scikit-learn"
    _, rows, expected = reference
    assert json.loads(serve(inf, model, json.dumps(rows.tolist()), "application/json")[0])["predictions"] == \
        expected.tolist()
    # WHEN its recorded scikit-learn version differs from the runtime's THEN it is refused, naming both
    meta["versions"]["scikit-learn"] = "0.24.2"
    (old / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(inf.ModelIntegrityError, match=r"scikit-learn 0\.24\.2, but this runtime has 1\."):
        inf.model_fn(str(old))


def test_missing_metadata_is_an_integrity_error(inf, tmp_path):
    with pytest.raises(inf.ModelIntegrityError, match="metadata.json"):
        inf.model_fn(str(tmp_path))


# --- SageMaker wiring --------------------------------------------------------------------------


def test_sagemaker_entry_defines_transform_fn_only(src_modules):
    entry = src_modules.sagemaker_entry
    assert callable(entry.model_fn) and callable(entry.transform_fn)
    # the scikit-learn container refuses transform_fn next to input_fn/predict_fn/output_fn
    assert not any(hasattr(entry, name) for name in ("input_fn", "predict_fn", "output_fn"))


def test_sagemaker_entry_answers_client_errors_with_their_status(src_modules, model, reference, monkeypatch):
    # GIVEN the serving toolkit's worker.Response (a Flask response; faked here, same signature)
    class Response:
        def __init__(self, response=None, accept=None, status=200, headers=None, mimetype=None):
            self.response, self.status, self.mimetype = response, status, mimetype

    worker = types.ModuleType("sagemaker_containers.beta.framework.worker")
    worker.Response = Response
    framework = types.ModuleType("sagemaker_containers.beta.framework")
    framework.worker = worker
    for name, module in {"sagemaker_containers": types.ModuleType("sagemaker_containers"),
                         "sagemaker_containers.beta": types.ModuleType("sagemaker_containers.beta"),
                         "sagemaker_containers.beta.framework": framework,
                         "sagemaker_containers.beta.framework.worker": worker}.items():
        monkeypatch.setitem(sys.modules, name, module)
    entry = src_modules.sagemaker_entry
    _, rows, expected = reference
    # WHEN a good and a bad request go through transform_fn
    ok = entry.transform_fn(model, json.dumps(rows[0].tolist()), "application/json", "application/json")
    bad = entry.transform_fn(model, "1,2,3", "text/csv", "application/json")
    unsupported = entry.transform_fn(model, "1,2", "application/xml", "application/json")
    # THEN the good one is a (body, content type) tuple and the bad ones carry 400 / 415 and the JSON error
    assert json.loads(ok[0])["predictions"] == expected[:1].tolist() and ok[1] == "application/json"
    assert (bad.status, bad.mimetype) == (400, "application/json")
    assert json.loads(bad.response)["error"] == "wrong_feature_count"
    assert unsupported.status == 415


def test_sagemaker_entry_reraises_without_the_toolkit(src_modules, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "sagemaker_containers", None)  # import fails
    with pytest.raises(src_modules.inference.PayloadError):
        src_modules.sagemaker_entry.transform_fn(model, "1,2,3", "text/csv", "application/json")


# --- the serving import path -------------------------------------------------------------------


def test_serving_path_imports_numpy_and_stdlib_only(model_dir):
    # GIVEN a fresh interpreter with only the model's code/ on the path (as in the serving container)
    script = f"""
import sys
sys.path.insert(0, {str(model_dir / 'code')!r})
import inference, lambda_function, sagemaker_entry
m = inference.model_fn({str(model_dir)!r})
out = inference.output_fn(inference.predict_fn(inference.input_fn("0,0,0,0,0,0,0,0,0,0", "text/csv"), m), "text/csv")
heavy = sorted(k for k in ("sklearn", "pandas", "joblib", "scipy") if k in sys.modules)
print(heavy, out[1])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    # THEN it predicted without importing scikit-learn, pandas, joblib or scipy
    assert out.stdout.strip() == "[] text/csv", out.stderr


def test_models_with_different_features_share_the_code(inf, model, nan_model_dir, reference):
    # GIVEN two models loaded by one inference module (the local endpoint does this during a hot swap)
    other = inf.model_fn(str(nan_model_dir))
    _, rows, expected = reference
    # WHEN requests for each alternate THEN each is checked against its own model only
    for _ in range(2):
        assert json.loads(serve(inf, model, json.dumps(rows[0].tolist()), "application/json")[0])["predictions"] == \
            expected[:1].tolist()
        assert len(json.loads(serve(inf, other, "[[0.1, 0.2, 0.3]]", "application/json")[0])["predictions"]) == 1


def test_input_fn_checks_early_when_given_the_model(inf, model):
    data = inf.input_fn("1,2,3", "text/csv")  # shape only: the model is unknown here
    assert data.schema is None
    with pytest.raises(inf.PayloadError) as caught:
        inf.input_fn("1,2,3", "text/csv", model=model)
    assert caught.value.error == "wrong_feature_count"
    checked = inf.input_fn(row_csv(GOOD), "text/csv", model=model)
    assert checked.schema is model.schema and checked.values.dtype == np.float32


@pytest.mark.parametrize("raw", ["abc", "0", "-5"])
def test_a_bad_limit_setting_falls_back_to_the_default(inf, monkeypatch, raw):
    monkeypatch.setenv("GREENLIGHT_MAX_PAYLOAD_BYTES", raw)
    assert inf.max_payload_bytes() == inf.MAX_PAYLOAD_BYTES
    assert inf.max_payload_bytes(6 * 1024 * 1024) == 6 * 1024 * 1024


def src_cpus(inf) -> int:
    return inf.compact_forest.available_cpus()


def test_predict_threads_setting(inf, model_dir, monkeypatch, caplog):
    monkeypatch.setenv("GREENLIGHT_PREDICT_THREADS", "3")
    assert inf.model_fn(str(model_dir)).predictor.threads == 3
    monkeypatch.setenv("GREENLIGHT_PREDICT_THREADS", "auto")
    assert inf.model_fn(str(model_dir)).predictor.threads == src_cpus(inf)
    monkeypatch.delenv("GREENLIGHT_PREDICT_THREADS")
    assert inf.predict_threads() is None and inf.model_fn(str(model_dir)).predictor.threads == 1
    for raw in ("two", "0", "-1"):
        monkeypatch.setenv("GREENLIGHT_PREDICT_THREADS", raw)
        with caplog.at_level("WARNING"):
            assert inf.predict_threads() is None
        assert "GREENLIGHT_PREDICT_THREADS" in caplog.text
