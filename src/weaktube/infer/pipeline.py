"""Detections -> tubes -> segments, the post-processing after the network (no torch here)."""

from __future__ import annotations

from weaktube.infer.link import LinkConfig, link_tubes
from weaktube.infer.temporal import segments_from_tubes
from weaktube.structures import Detections, SegmentPredictions, TubePredictions


def tubes_and_segments(dets: Detections, num_classes: int, fps: dict[str, float] | float,
                       link: LinkConfig | None = None) -> tuple[TubePredictions,
                                                                SegmentPredictions]:
    """Link per-frame detections into trimmed tubes (``weaktube.infer.link``) and turn each
    tube into a temporal segment in seconds (same-class overlapping segments merged)."""
    tubes = link_tubes(dets, link or LinkConfig(fill_gaps=True), num_classes=num_classes)
    return tubes, segments_from_tubes(tubes, fps, merge=True)
