"""benchmarks/export_speed.py: its random-weight checkpoints load as trained ones do, and
its timer counts the calls it reports."""

from tests.benchmark_scripts import load_benchmark
from weaktube.infer.export import DeployedDetector, example_clips
from weaktube.train.checkpoint import inference_model, load_checkpoint


def test_random_checkpoint_and_timer(tmp_path):
    bench = load_benchmark("export_speed")
    model = inference_model(load_checkpoint(bench.random_checkpoint("demo", tmp_path / "r.pt")))
    assert model.num_classes == 24 and model.clip_len == 8
    deployed = DeployedDetector(model).eval()
    calls = []

    def fn(clip):
        calls.append(1)
        return deployed(clip)

    med, best = bench.time_calls(fn, example_clips(1, model.clip_len, 64), repeats=3)
    assert len(calls) == 2 + 3 and 0 < best <= med
