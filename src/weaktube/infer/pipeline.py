"""Detections -> tubes -> segments, the post-processing after the network (no torch here)."""

from __future__ import annotations

import dataclasses

from weaktube.infer.link import LinkConfig, link_tubes
from weaktube.infer.temporal import segments_from_tubes
from weaktube.structures import Detections, SegmentPredictions, TubePredictions


def tubes_and_segments(dets: Detections, num_classes: int, fps: dict[str, float] | float,
                       link: LinkConfig | None = None, keyframe_stride: int = 1
                       ) -> tuple[TubePredictions, SegmentPredictions]:
    """Link per-frame detections into trimmed tubes (``weaktube.infer.link``) and turn each
    tube into a temporal segment in seconds (same-class overlapping segments merged).

    ``keyframe_stride``: the stride the detections were made with (every n-th frame). The
    link's ``max_gap`` counts missed *keyframes*: a tube survives ``max_gap`` of them, i.e.
    ``(max_gap + 1) * n - 1`` frames (3 at stride 1, 15 at stride 4); gaps are filled
    (``fill_gaps`` is required above stride 1, where no two detections are adjacent)."""
    link = link or LinkConfig(fill_gaps=True)
    if keyframe_stride < 1:
        raise ValueError(f"keyframe_stride must be >= 1, got {keyframe_stride}")
    if keyframe_stride > 1:
        if not link.fill_gaps:
            raise ValueError(f"keyframe stride {keyframe_stride} needs the link's fill_gaps: "
                             "without it every tube ends at its first keyframe")
        link = dataclasses.replace(link, max_gap=(link.max_gap + 1) * keyframe_stride - 1)
    tubes = link_tubes(dets, link, num_classes=num_classes)
    return tubes, segments_from_tubes(tubes, fps, merge=True)
