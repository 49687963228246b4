"""benchmarks/edge_boxes.py on hand-built boxes and on the real UCF101-24 annotation file."""

import numpy as np

from tests.benchmark_scripts import load_benchmark
from weaktube.structures import AnnotationSet, Tube, VideoRecord


def test_edge_fractions_known_answer():
    bench = load_benchmark("edge_boxes")
    boxes = np.array([[2, 40, 30, 80],  # 2 px from the left of 100: within 5 %
                      [40, 40, 60, 60],  # 40 px from every edge
                      [30, 10, 70, 94]], np.float32)  # 6 px from the bottom of 100: within 10 %
    v = VideoRecord("v", 3, 100, 100, 25.0, "train", [Tube(0, 0, boxes)])
    w = VideoRecord("w", 3, 100, 100, 25.0, "train")  # no boxes
    out = bench.edge_fractions(AnnotationSet(["a"], [v, w]), [0.05, 0.1])
    assert out["boxes"] == 3 and out["videos"] == 2
    assert out["0.05"] == {"boxes_pct": 33.3, "videos_pct": 50.0}
    assert out["0.1"] == {"boxes_pct": 66.7, "videos_pct": 50.0}


def test_real_ucf24_counts(shared_data):
    import warnings

    from weaktube.data.readers import convert

    bench = load_benchmark("edge_boxes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ann = convert(shared_data / "ucf24" / "annotations" / "pyannot_with_class_names.pkl")
    out = bench.edge_fractions(ann, [0.05, 0.1])
    assert out["boxes"] == sum(len(t.boxes) for v in ann.videos for t in v.tubes) == 573862
    # the figures docs/DESIGN.md quotes ("Augmentation"): real people reach the edges
    assert out["0.05"] == {"boxes_pct": 23.7, "videos_pct": 48.6}
    assert out["0.1"] == {"boxes_pct": 38.7, "videos_pct": 64.6}
