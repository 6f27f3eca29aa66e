"""The definition does not depend on where the checkout is: the SDK's code hash (the S3 prefix of the
Processing scripts) hashes src/ paths relative to their parent, not absolutely (pipelines/definition.py)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from unittest import mock

import pipelines.definition as definition


def test_the_code_hash_is_the_same_for_two_checkouts_and_changes_with_the_code(tmp_path):
    import sagemaker.core.workflow.utilities as sdk_utilities

    digests = []
    for name in ("checkout-one", "somewhere/else/checkout-two"):
        copy = tmp_path / name / "src"
        shutil.copytree(definition.src_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
        with mock.patch.object(definition, "src_dir", lambda copy=copy: copy):
            patched = definition._checkout_independent_hash(sdk_utilities)
            digests.append(patched(str(copy / "preprocess.py"), hashlib.sha256()).hexdigest())
            unpatched = sdk_utilities._hash_file_or_dir(str(copy / "preprocess.py"), hashlib.sha256()).hexdigest()
            digests.append(unpatched)
    assert digests[0] == digests[2], "the patched hash depends on the checkout's location"
    assert digests[1] != digests[3], "the SDK's own hash no longer includes the absolute path: drop the patch"
    changed = tmp_path / "checkout-one" / "src" / "preprocess.py"
    changed.write_text(changed.read_text() + "\n# changed\n")
    with mock.patch.object(definition, "src_dir", lambda: changed.parent):
        after = definition._checkout_independent_hash(sdk_utilities)(str(changed), hashlib.sha256()).hexdigest()
    assert after != digests[0]
    assert Path(definition.src_dir()).name == "src"
