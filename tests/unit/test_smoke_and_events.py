"""deploy.engine.smoke (exact comparison) and deploy.engine.events (which events reconcile)."""

from __future__ import annotations

import json

import pytest

from deploy.engine.events import why_ignored
from deploy.engine.smoke import SMOKE_KEY, SmokeMismatch, SmokeTest
from greenlight.errors import DataError
from pipelines.definition import SMOKE_METADATA_KEY

DOC = {"format": "greenlight-smoke/1", "content_type": "text/csv", "body": "1.5,2\n3,4\n",
       "predictions": [0.1 + 0.2, 151.00000000000003]}


def test_the_pipeline_links_smoke_data_under_the_key_the_engine_reads():
    assert SMOKE_METADATA_KEY == SMOKE_KEY


def test_smoke_round_trip_and_exact_comparison():
    smoke = SmokeTest.from_json(json.dumps(DOC), "s3://b/smoke.json")
    smoke.check(json.dumps({"predictions": DOC["predictions"]}).encode())
    smoke.check(SmokeTest.from_json(smoke.to_json(), "x").predictions)
    with pytest.raises(SmokeMismatch, match=r"1 of 2 smoke predictions differ.*row 0: got 0.3, recorded "
                                            r"0.30000000000000004"):
        smoke.check(b'{"predictions": [0.3, 151.00000000000003]}')
    with pytest.raises(SmokeMismatch, match="1 predictions for 2 smoke rows"):
        smoke.check([0.1])
    with pytest.raises(SmokeMismatch, match="not a list of predictions"):
        smoke.check(b"<html>500</html>")


@pytest.mark.parametrize("change, words", [
    ({"format": "other"}, "format 'other'"),
    ({"predictions": [1.0]}, "one prediction per row"),
    ({"body": None, "predictions": []}, "one prediction per row"),
])
def test_unusable_smoke_data_is_a_data_error_naming_where(change, words):
    with pytest.raises(DataError, match=f"smoke-test data at s3://x is not usable: .*{words}"):
        SmokeTest.from_json(json.dumps({**DOC, **change}), "s3://x")
    with pytest.raises(DataError, match="not usable"):
        SmokeTest.from_json("not json", "s3://x")


EVENT = {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "account": "1",
         "region": "r", "detail": {"ModelPackageGroupName": "g"}}


@pytest.mark.parametrize("change, words", [
    ({}, None),
    ({"source": "aws.s3"}, "source is 'aws.s3'"),
    ({"detail-type": "x"}, "detail-type is 'x'"),
    ({"detail": {"ModelPackageGroupName": "h"}}, "group 'h' is not the configured 'g'"),
    ({"detail": "text"}, "no detail object"),
    ({"account": "2"}, "account '2'"),
    ({"region": "q"}, "region 'q'"),
])
def test_why_ignored(change, words):
    reason = why_ignored({**EVENT, **change}, group="g", account="1", region="r")
    assert reason is None if words is None else words in reason
    assert why_ignored([1], group="g", account=None, region=None).startswith("not an EventBridge event")


def test_the_local_lock_times_out_naming_its_holder(tmp_path):
    import threading

    from deploy.engine.local_state import LocalLock
    from greenlight.errors import ConflictError

    lock = LocalLock(tmp_path, "g", timeout=0.2)
    held, release = threading.Event(), threading.Event()

    def holder():
        with lock():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    try:
        with pytest.raises(ConflictError, match=r"another reconcile of g has held .* for over 0.2 s \(pid \d+ since"):
            with LocalLock(tmp_path, "g", timeout=0.2)():
                pass
    finally:
        release.set()
        thread.join()
    with LocalLock(tmp_path, "g", timeout=0.2)():  # free again once released
        pass
