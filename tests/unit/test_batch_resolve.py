"""Which version `greenlight batch run` uses without --model-version: the one the local batch schedule names."""

from __future__ import annotations

import pytest

from deploy.batch.aws_requests import ModelRef, schedule_request
from deploy.batch.config import BatchConfig
from deploy.batch.local_schedule import disable_local_schedule, put_local_schedule
from deploy.batch.resolve import deployed_version
from greenlight.errors import NotFoundError

GROUP = "greenlight-models"
FIX = "approve a version (greenlight models approve N) or pass --model-version"


def put(home, group=GROUP, version=3):
    config = BatchConfig(input="in", output="out", schedule_name="greenlight-models-batch")
    put_local_schedule(home, schedule_request(config, ModelRef(group, version, f"{group}-v{version}"), local=True))


def test_the_enabled_schedule_names_the_deployed_version(tmp_path):
    put(tmp_path)
    assert deployed_version(tmp_path, GROUP, "greenlight-models-batch") == 3


@pytest.mark.parametrize("setup, words", [
    (lambda home: None, "there is no schedule 'greenlight-models-batch' yet"),
    (lambda home: (put(home), disable_local_schedule(home, "greenlight-models-batch")),
     "is DISABLED (no version of 'greenlight-models' is Approved; it last ran v3)"),
    (lambda home: put(home, group="other-models"), "runs other-models/3, not a version of 'greenlight-models'"),
])
def test_nothing_deployed_is_one_clear_error(tmp_path, setup, words):
    setup(tmp_path)
    with pytest.raises(NotFoundError) as caught:
        deployed_version(tmp_path, GROUP, "greenlight-models-batch")
    assert words in str(caught.value) and str(caught.value).endswith(FIX)


def test_the_local_target_refuses_a_schedule_of_another_group(tmp_path):
    from deploy.batch.aws_requests import ScheduleInputError
    from deploy.batch.local_target import LocalBatchTarget

    put(tmp_path, group="other-models")
    target = LocalBatchTarget(tmp_path, GROUP, BatchConfig(), lambda uri: tmp_path / "none")
    with pytest.raises(ScheduleInputError, match="a version of another group; set batch.schedule_name"):
        target.observe()
