"""The classical (flow + GrabCut) tracker, measured on synthetic clips."""




def test_classical_tracker_is_measured_on_synthetic_clips(tmp_path):
    """Optical flow + GrabCut, through the page's Tracker interface: J on regenerated clips
    (0.68 on the 20 validation clips, in the README; it has no memory, so occluded objects
    are lost)."""
    from lib.demo import synth
    from lib.segmentation import classical
    out = synth.write_clips(tmp_path / "clips", 6, frames=30, size=128, seed=1)
    result = classical.track_clip_j(
        lambda info, frames: classical.FlowTracker(info, frames), out)
    assert result["clips"] == 6 and result["frames"] > 300
    assert 0.6 < result["J"] < 0.85
    assert result["J_occluded"] < 0.3
