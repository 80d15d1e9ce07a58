"""Broadcast sound on a real worker (real libvlc, the paced sink): loudness normalisation, fades and
volume, measured on what the sink hands its outputs — the samples the Icecast encoder gets.
The stream itself, decoded from a real icecast2, is in test_icecast.py."""

from __future__ import annotations

import time

import numpy as np
import pytest

from playback import services
from playback.engine import OutputConfig, volume_to_level
from playback.models import PlayerCommand
from playback.output import RATE, Master, PacedSink, apply_gain
from playback.worker import FADE_MS
from tests.playback.sound import Capture, loudness_of, rms_db, tone_levels

pytestmark = pytest.mark.django_db


# --- pure: the gain stage ------------------------------------------------------------------------

def test_a_master_ramp_moves_linearly_over_play_out_time_and_holds():
    master = Master()
    master.ramp(0.0, 1_000_000, 300_000)
    assert master.at(900_000) == 1.0 and master.at(1_150_000) == pytest.approx(0.5)
    assert master.at(1_300_000) == 0.0 and master.at(5_000_000) == 0.0
    env = master.envelope(1_000_000, RATE // 10)  # the first 100 ms of the fade, per sample
    assert isinstance(env, np.ndarray) and env[0] == pytest.approx(1.0, abs=1e-3)
    assert env[-1] == pytest.approx(2 / 3, abs=1e-3) and np.all(np.diff(env) < 0)
    assert master.envelope(2_000_000, 100) == 0.0  # after the ramp: one number, no per-sample work
    master.ramp(1.0, 2_000_000, 0)
    assert master.at(2_000_000) == 1.0


def test_gain_saturates_instead_of_wrapping():
    loud = np.array([30000, -30000, 1000, -1000], dtype=np.int16).tobytes()
    out = np.frombuffer(apply_gain(loud, 2.0), dtype=np.int16)
    assert out.tolist() == [32767, -32768, 2000, -2000]
    assert apply_gain(loud, 1.0) is loud


# --- on a real worker ----------------------------------------------------------------------------

@pytest.fixture
def capture():
    return Capture()


@pytest.fixture
def worker(start_worker, capture):
    return start_worker(OutputConfig("dummy"), audio_sink=PacedSink(outputs=[capture]), owner="test:1:sound")


def run_until(worker, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.step(timeout=0.02)
        if predicate():
            return
    raise AssertionError("condition not met within the time limit")


def played_out(worker, seconds: float) -> None:
    """Step the worker while its output plays for `seconds` more."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.step(timeout=0.02)


def test_items_play_at_the_target_loudness_whatever_their_own(station, worker, capture, tone, tmp_path):
    quiet = tone("Quiet", 4.0, freq=440.0, level_db=-28.0)
    loud = tone("Loud", 4.0, freq=1000.0, level_db=-8.0)
    jingle = tone("Jingle", 3.0, freq=2000.0, level_db=-20.0, kind="jingle")
    assert quiet.loudness_lufs < -28 and loud.loudness_lufs > -12  # 20 LU apart in the files
    station.jingle_offset = -4.0
    station.save()
    worker.nudged = True
    for track in (quiet, loud, jingle):
        services.queue_append(station=station, track=track)
    run_until(worker, lambda: worker.on_air is not None and worker.on_air.entry.title == "Jingle")
    run_until(worker, lambda: worker.on_air is None, timeout=10)
    played_out(worker, 0.5)
    blocks = capture.by_freq((440.0, 1000.0, 2000.0))
    measured = {}
    for freq, name in ((440.0, "quiet"), (1000.0, "loud"), (2000.0, "jingle")):
        samples = [s for f, _, s in blocks if f == freq][2:-2]  # whole blocks inside the item
        measured[name] = loudness_of(np.concatenate(samples), tmp_path / f"{name}.wav")
    assert abs(measured["quiet"] - -16.0) <= 1.0, measured
    assert abs(measured["loud"] - -16.0) <= 1.0, measured
    assert abs(measured["jingle"] - -20.0) <= 1.0, measured  # the kind's offset
    # Each item's gain holds to its last sample and the next item's from its first: at a join the
    # outgoing item's tail (still in VLC's output queue when the next starts) keeps its own gain.
    for freq in (440.0, 1000.0):
        levels = [rms_db(s) for f, _, s in blocks if f == freq]
        assert max(abs(db - np.median(levels)) for db in levels[1:-1]) < 1.0, (freq, levels[-6:])
    peak = max(np.abs(s.astype(np.int32)).max() for _, _, s in blocks)
    assert peak < 32767  # nothing clipped


def test_with_normalisation_off_items_play_at_their_own_level(station, worker, capture, tone, tmp_path):
    station.loudness_normalise = False
    station.save()
    worker.nudged = True
    quiet = tone("Quiet", 3.0, freq=440.0, level_db=-28.0)
    services.queue_append(station=station, track=quiet)
    run_until(worker, lambda: worker.on_air is not None)
    run_until(worker, lambda: worker.on_air is None, timeout=10)
    samples = [s for f, _, s in capture.by_freq((440.0,)) if f == 440.0][2:-2]
    assert abs(loudness_of(np.concatenate(samples), tmp_path / "q.wav") - quiet.loudness_lufs) <= 0.5


def test_a_skip_fades_out_on_the_output_then_the_next_item_starts_at_full_level(station, worker, capture,
                                                                                 tone):
    first = tone("First", 8.0, freq=440.0, level_db=-16.0)
    second = tone("Second", 3.0, freq=1000.0, level_db=-16.0)
    for track in (first, second):
        services.queue_append(station=station, track=track)
    run_until(worker, lambda: worker.on_air is not None)
    played_out(worker, 2.0)
    services.command_issue(station=station, action=PlayerCommand.Action.SKIP)
    worker.nudged = True
    run_until(worker, lambda: worker.on_air is not None and worker.on_air.entry.title == "Second")
    played_out(worker, 1.0)
    blocks = capture.by_freq((440.0, 1000.0))
    labels = [f for f, _, _ in blocks]
    first_second = labels.index(1000.0)
    assert 440.0 not in labels[first_second:], "the skipped item was heard after the next began"
    # The skipped item's level, block by block, up to the next item: full, then down to silence.
    before = [(at, rms_db(s)) for f, at, s in blocks[:first_second] if f == 440.0]
    full = np.median([db for _, db in before[:20]])
    fading = [(at, db) for at, db in before if db < full - 1.0]
    assert fading, "no fade: the item was cut"
    fade_ms = (fading[-1][0] - fading[0][0]) / 1000
    assert FADE_MS * 0.6 <= fade_ms <= FADE_MS * 1.4, fade_ms
    assert all(b[1] <= a[1] + 0.5 for a, b in zip(fading, fading[1:], strict=False))  # only down
    assert fading[-1][1] < full - 20  # to silence, not a step
    after = [rms_db(s) for f, _, s in blocks[first_second:] if f == 1000.0][1:10]
    assert min(after) > full - 3  # the next item is at full level from its start


def test_the_volume_control_is_heard_on_the_output(station, worker, capture, tone):
    services.queue_append(station=station, track=tone("Long", 8.0, freq=440.0, level_db=-16.0))
    run_until(worker, lambda: worker.on_air is not None)
    played_out(worker, 1.5)
    services.command_issue(station=station, action=PlayerCommand.Action.VOLUME, args={"volume": 50})
    worker.nudged = True
    set_at = time.monotonic()
    run_until(worker, lambda: worker.engine.volume == 50)
    played_out(worker, 1.5)
    levels = [(at / 1e6, rms_db(s)) for f, at, s in capture.by_freq((440.0,)) if f == 440.0]
    before = np.median([db for t, db in levels if t < set_at - 0.2])
    after = np.median([db for t, db in levels if set_at + 0.6 < t < set_at + 1.2])
    assert after - before == pytest.approx(20 * np.log10(volume_to_level(50)), abs=0.5)


# --- crossfades ------------------------------------------------------------------------------------

@pytest.fixture
def recorded_worker(start_worker, tmp_path):
    """A worker whose output records what is heard (the air check), for playback.aircheck."""
    from playback.output import Recorder

    return start_worker(OutputConfig("dummy"), audio_sink=PacedSink(Recorder(tmp_path / "heard", "kol")),
                        owner="test:1:xfade")


def test_songs_crossfade_for_the_set_length_and_jingles_join_end_to_end(station, recorded_worker, tone,
                                                                          tmp_path):
    from playback import aircheck
    from playback.models import PlayLog

    worker = recorded_worker
    station.crossfade = 2.0
    station.save()
    worker.nudged = True
    freqs = (440.0, 660.0, 880.0, 1100.0)
    tracks = [tone("A", 7.0, freq=440.0, level_db=-16.0), tone("B", 7.0, freq=660.0, level_db=-16.0),
              tone("J", 4.0, freq=880.0, level_db=-16.0, kind="jingle"),
              tone("C", 7.0, freq=1100.0, level_db=-16.0)]
    for track in tracks:
        services.queue_append(station=station, track=track)
    run_until(worker, lambda: PlayLog.objects.filter(station=station).count() == 4, timeout=40)
    worker.engine.sink.close()
    rec = aircheck.load(tmp_path / "heard")
    levels = tone_levels(rec.samples(rec.start_mono, rec.end_mono), freqs)
    full = float(np.median(levels[:, 0][levels[:, 0] > -40]))
    on = levels > full - 45  # a tone is sounding (within 45 dB of its full level)
    first = [int(np.argmax(on[:, k])) for k in range(4)]
    last = [len(on) - 1 - int(np.argmax(on[::-1, k])) for k in range(4)]
    # A → B, songs: they overlap by the crossfade (20 ms windows), each heard for its whole length.
    assert (last[0] - first[1]) * 20 == pytest.approx(2000, abs=60), (first, last)
    assert (last[0] - first[0]) * 20 == pytest.approx(7000, abs=60)
    assert (last[1] - first[1]) * 20 == pytest.approx(7000, abs=60)
    # B → jingle → C: end to end, no overlap and no gap (the exact join is aircheck's, below).
    assert first[2] - last[1] in (0, 1) and first[3] - last[2] in (0, 1), (first, last)
    joins = {(b.from_freq, b.to_freq): b.gap_ms for b in aircheck.boundaries(
        aircheck.segments(rec, expected_freqs=freqs)) if b.from_freq != 440.0 and b.to_freq != 440.0}
    assert abs(joins[(660.0, 880.0)]) < 1.0 and abs(joins[(880.0, 1100.0)]) < 1.0, joins
    # Equal power: the sum of both tones holds its level through the crossfade.
    power = 10 * np.log10(np.sum(10 ** (levels[first[1]:last[0] + 1, :2] / 10), axis=1))
    assert np.max(np.abs(power - full)) < 1.0, (power.min(), power.max(), full)
    rows = list(PlayLog.objects.filter(station=station).order_by("started_at"))
    assert [r.outcome for r in rows] == [PlayLog.Outcome.COMPLETED] * 4
    assert (rows[0].ended_at - rows[1].started_at).total_seconds() == pytest.approx(2.0, abs=0.2)


def test_a_pause_or_a_skip_during_a_crossfade_ends_the_outgoing_song(station, recorded_worker, tone, tmp_path):
    from playback import aircheck
    from playback.models import PlayLog

    worker = recorded_worker
    station.crossfade = 3.0
    station.save()
    worker.nudged = True
    freqs = (440.0, 660.0, 880.0)
    for title, freq in (("A", 440.0), ("B", 660.0), ("C", 880.0)):
        services.queue_append(station=station, track=tone(title, 9.0, freq=freq, level_db=-16.0))
    run_until(worker, lambda: worker.on_air is not None and worker.on_air.entry.title == "B", timeout=20)
    run_until(worker, lambda: worker.clock() > worker.on_air.started_mono + 1.0)  # inside the crossfade
    services.command_issue(station=station, action=PlayerCommand.Action.PAUSE)
    worker.nudged = True
    run_until(worker, lambda: worker.paused)
    paused_at = worker.clock()
    played_out(worker, 1.0)
    services.command_issue(station=station, action=PlayerCommand.Action.RESUME)
    worker.nudged = True
    run_until(worker, lambda: not worker.paused)
    played_out(worker, 1.0)
    services.command_issue(station=station, action=PlayerCommand.Action.SKIP)
    worker.nudged = True
    run_until(worker, lambda: worker.on_air is not None and worker.on_air.entry.title == "C")
    played_out(worker, 1.0)
    worker.engine.sink.close()
    rec = aircheck.load(tmp_path / "heard")
    full = float(np.median(tone_levels(rec.samples(rec.start_mono, rec.start_mono + 1.0), freqs)[:, 0]))
    heard_after = []  # per 100 ms after the pause (the recording has a gap where it was paused)
    for t in np.arange(paused_at + 0.4, rec.end_mono - 0.1, 0.1):
        chunk = rec.samples(t, t + 0.1)
        if len(chunk) >= 0.1 * RATE - 1:
            heard_after.append(tone_levels(chunk, freqs).max(axis=0))
    heard_after = np.array(heard_after)
    # After the pause A is never heard again; B comes back after it; after the skip, C.
    assert len(heard_after) > 10
    # (an onset splatters a little energy across the spectrum: only A sounding on its own counts)
    alone = (heard_after[:, 0] > full - 45) & (heard_after[:, 0] > heard_after[:, 1:].max(axis=1) - 6)
    assert not np.any(alone), "the outgoing song came back after the pause"
    assert np.any(heard_after[:, 1] > full - 3) and np.any(heard_after[:, 2] > full - 3)
    assert PlayLog.objects.get(title="B").outcome == PlayLog.Outcome.SKIPPED
