"""Package boundaries: the evaluator consumes outputs only; boxes/structures stay torch-free
where they promise to."""

import subprocess
import sys

import pytest


def _modules_after_import(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("stmt, forbidden", [
    ("import weaktube.evaluate", {"torch", "weaktube.model", "weaktube.train"}),
    ("import weaktube.structures", {"torch", "weaktube.model", "weaktube.train"}),
    ("import weaktube.boxes", {"torch"}),
    ("import weaktube.infer.pipeline", {"torch", "cv2"}),
    ("import weaktube.tracking", {"torch"}),
    ("import weaktube.model", {"weaktube.train", "weaktube.evaluate", "weaktube.cli"}),
    ("import weaktube.losses.detection", {"weaktube.train", "weaktube.evaluate"}),
    ("import weaktube.data.dataset", {"weaktube.model", "weaktube.train"}),
])
def test_import_boundaries(stmt, forbidden):
    loaded = _modules_after_import(stmt)
    assert not (forbidden & loaded), f"{stmt} pulls in {forbidden & loaded}"
