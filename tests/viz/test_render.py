import cv2
import numpy as np
import pytest

from weaktube.structures import TubePredictions
from weaktube.viz.render import class_colour, draw_frame, render_scale, render_tubes


def _tubes() -> TubePredictions:
    box = np.array([[10.0, 8.0, 30.0, 40.0]])
    return TubePredictions(
        videos=np.array(["v", "v", "other"], dtype=object), labels=np.array([1, 0, 1]),
        scores=np.array([0.9, 0.05, 0.8]), start_frames=np.array([2, 0, 0]),
        boxes=[np.repeat(box, 4, axis=0), np.repeat(box + 5, 6, axis=0),
               np.repeat(box, 6, axis=0)])


def _read(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    ok, img = cap.read()
    while ok:
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(int))
        ok, img = cap.read()
    return out


def _coloured(img: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.count_nonzero(np.abs(img - np.array(colour)).max(axis=-1) < 40))


@pytest.mark.parametrize("min_score, expected", [(0.1, 1), (0.0, 2)])
def test_render_tubes_draws_each_tube_in_the_frames_it_covers(tmp_path, min_score, expected):
    frames = np.zeros((6, 48, 64, 3), np.uint8)
    out = tmp_path / "tubes.mp4"
    drawn = render_tubes(out, frames, "v", _tubes(), ["a", "b"], fps=10.0, min_score=min_score)
    assert drawn == expected  # the other video's tube is never drawn
    images = _read(out)
    assert len(images) == 6 and images[0].shape == (96, 128, 3)
    colour = class_colour(1)  # the 0.9 tube covers frames 2..5
    assert _coloured(images[0], colour) < 5
    assert _coloured(images[3], colour) > 50
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, nothing half-written left


def test_empty_tubes_and_bad_k(tmp_path):
    frames = np.zeros((6, 48, 64, 3), np.uint8)
    tubes = _tubes()
    tubes.boxes[0] = np.zeros((0, 4))  # the best tube, empty: skipped, not ranked
    assert render_tubes(tmp_path / "a.mp4", frames, "v", tubes, ["a", "b"], max_tubes=1) == 1
    assert _coloured(_read(tmp_path / "a.mp4")[3], class_colour(1)) < 5
    with pytest.raises(ValueError, match="max_tubes"):
        render_tubes(tmp_path / "b.mp4", frames, "v", tubes, ["a", "b"], max_tubes=0)


def test_render_tubes_draws_a_stream_as_it_draws_an_array(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)
    render_tubes(tmp_path / "a.mp4", frames, "v", _tubes(), ["a", "b"], min_score=0.0)
    assert render_tubes(tmp_path / "s.mp4", (f for f in frames), "v", _tubes(), ["a", "b"],
                        min_score=0.0) == 2
    np.testing.assert_array_equal(_read(tmp_path / "s.mp4"), _read(tmp_path / "a.mp4"))
    with pytest.raises(ValueError, match="no frame"):
        render_tubes(tmp_path / "e.mp4", iter([]), "v", _tubes(), ["a", "b"])
    assert not (tmp_path / "e.mp4").exists()


def test_a_box_at_the_top_left_keeps_its_caption_inside():
    """The whole caption is drawn from the image's left edge, not cut off by it."""
    img = draw_frame(np.zeros((48, 96, 3), np.uint8), np.zeros((0, 4)),
                     np.array([[-20.0, 0.0, 90.0, 40.0]]), np.array([1]), np.array([0.9]),
                     ["a", "b"], scale=2)
    (tw, th), _ = cv2.getTextSize("b 0.90", cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    band = img[2:th, :170].astype(int)  # caption rows, left of the box's right edge (x 180)
    cols = np.nonzero((np.abs(band - np.array(class_colour(1))).max(axis=-1) < 60).any(axis=0))[0]
    assert cols.min() <= 4 and abs(int(cols.max()) - (1 + tw)) <= 3


def test_render_scale_follows_the_frame_size():
    assert render_scale((160, 120)) == 2
    assert render_scale((1920, 1080)) == 1


def test_render_tubes_keeps_the_best_k(tmp_path):
    frames = np.zeros((6, 48, 64, 3), np.uint8)
    assert render_tubes(tmp_path / "a.mp4", frames, "v", _tubes(), ["a", "b"],
                        max_tubes=1) == 1
    assert render_tubes(tmp_path / "b.mp4", frames, "none", _tubes(), ["a", "b"]) == 0
    assert len(_read(tmp_path / "b.mp4")) == 6  # no tube: the plain video
