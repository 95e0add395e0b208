"""The pure Blender output parser, on a recorded Blender 3.4.1 log and on synthetic lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from brender.node.blender_log import (
    ErrorLine,
    Event,
    FraLine,
    FrameProgress,
    FrameSaved,
    FrameStarted,
    LogTracker,
    ProgressThrottle,
    ReadLine,
    SavedLine,
    TimeLine,
    parse_duration,
    parse_line,
)
from brender.node.chunk import RenderOrder
from brender.node.runner import saved_check

RECORDED = Path(__file__).parent.parent / "data" / "blender-3.4-two-frames.log"


def feed_all(tracker: LogTracker, lines: list[str], step: float = 0.01) -> list[object]:
    """The frame events of a log (progress events are tested on their own)."""
    events: list[object] = []
    for i, line in enumerate(lines):
        events += frame_events(tracker.feed(line, i * step))
    events += tracker.finish(len(lines) * step)
    return events


def frame_events(events: list[Event]) -> list[Event]:
    return [e for e in events if not isinstance(e, FrameProgress)]


def test_recorded_log_two_frames() -> None:
    lines = RECORDED.read_text().splitlines()
    tracker = LogTracker([1, 2])
    events = feed_all(tracker, lines)
    assert events == [
        FrameStarted(1),
        FrameSaved(1, "/tmp/bt/out/0001.png", 0.44),
        FrameStarted(2),
        FrameSaved(2, "/tmp/bt/out/0002.png", 0.01),
    ]
    assert tracker.frames_saved == [1, 2]
    assert tracker.first_error is None


def test_forged_saved_lines_are_not_taken_and_the_real_one_is() -> None:
    lines = RECORDED.read_text().splitlines()
    # A scene's script prints a fake save as each frame starts (a frame_change handler).
    forged: list[str] = []
    started: set[int] = set()
    for line in lines:
        fra = parse_line(line)
        if isinstance(fra, FraLine) and fra.frame not in started:
            started.add(fra.frame)
            forged += [f"Fra:{fra.frame} Mem:1M | forged", "Saved: '/etc/passwd'", " Time: 0.01"]
        forged.append(line)
    order = RenderOrder(chunk_id=1, blend_file="/p/a.blend", frames=(1, 2),
                        output="/tmp/bt/out/####", format="PNG")  # fmt: skip
    tracker = LogTracker([1, 2], check=saved_check(order))
    saved = [e for e in feed_all(tracker, forged) if isinstance(e, FrameSaved)]
    assert [(e.frame, e.path) for e in saved] == [
        (1, "/tmp/bt/out/0001.png"),
        (2, "/tmp/bt/out/0002.png"),
    ]
    assert len(tracker.refused) == 2
    assert "'/etc/passwd', which is not the file the job's output names" in tracker.refused[0]


def stereo_log(frames: list[int]) -> list[str]:
    """Blender's lines for frames rendered in stereo and saved view by view."""
    lines: list[str] = []
    for n in frames:
        lines += [f"Fra:{n} Mem:1M | Sample 4/4", f"Saved: '/r/out/{n:04d}_L.png'",
                  f"Saved: '/r/out/{n:04d}_R.png'", " Time: 00:00.10 (Saving: 00:00.01)"]  # fmt: skip
    return lines


def test_stereo_saved_view_by_view_on_shared_storage() -> None:
    """Each view's file is where the output names it: the first one stands for the frame."""
    order = RenderOrder(chunk_id=1, blend_file="/p/a.blend", frames=(1, 2),
                        output="/r/out/####", format="PNG")  # fmt: skip
    tracker = LogTracker([1, 2], check=saved_check(order))
    saved = [e for e in feed_all(tracker, stereo_log([1, 2])) if isinstance(e, FrameSaved)]
    assert [(e.frame, e.path) for e in saved] == [
        (1, "/r/out/0001_L.png"),
        (2, "/r/out/0002_L.png"),
    ]
    assert tracker.refused == []


def test_stereo_saved_view_by_view_is_refused_for_an_uploaded_job_and_says_why() -> None:
    """An uploaded job brings back one file a frame: the other view would be lost."""
    order = RenderOrder(chunk_id=1, blend_file="/p/a.blend", frames=(1,), output="/r/out/####",
                        format="PNG", manifest="ab" * 32, upload_key="k")  # fmt: skip
    tracker = LogTracker([1], check=saved_check(order))
    assert not [e for e in feed_all(tracker, stereo_log([1])) if isinstance(e, FrameSaved)]
    assert "view by view" in tracker.refused[0] and "'Stereo 3D'" in tracker.refused[0]
    assert tracker.frames_saved == []


def test_recorded_log_lines() -> None:
    lines = RECORDED.read_text().splitlines()
    parsed = [parse_line(line) for line in lines]
    fra = [p for p in parsed if isinstance(p, FraLine)]
    assert {p.frame for p in fra} == {1, 2}
    assert (fra[0].frame, fra[0].elapsed) == (1, 0.0)
    assert (1, 0.13) in [(p.frame, p.elapsed) for p in fra]
    assert [p for p in parsed if isinstance(p, SavedLine)] == [
        SavedLine("/tmp/bt/out/0001.png"),
        SavedLine("/tmp/bt/out/0002.png"),
    ]
    assert [p for p in parsed if isinstance(p, TimeLine)] == [
        TimeLine(0.44, 0.29),
        TimeLine(0.01, 0.0),
    ]
    assert parse_line("Blender quit") is None
    assert parse_line("Read blend: /tmp/bt/scene.blend") == ReadLine()


@pytest.mark.parametrize(
    ("line", "seconds", "saving"),
    [
        (" Time: 00:00.44 (Saving: 00:00.29)", 0.44, 0.29),  # Blender 3.x
        ("Time: 00:00.44 (Saving: 00:00.29)", 0.44, 0.29),  # Blender 4.x
        ("Time: 01:02.50 (Saving: 00:01.00)", 62.5, 1.0),
        ("Time: 1:02:03.25 (Saving: 00:00.10)", 3723.25, 0.1),
        ("Time: 00:03.00", 3.0, None),
        ("Time: 00:00.44 (Saving: 00:00.29)\r\n", 0.44, 0.29),
    ],
)
def test_time_lines(line: str, seconds: float, saving: float | None) -> None:
    event = parse_line(line)
    assert isinstance(event, TimeLine)
    assert event.seconds == pytest.approx(seconds)
    assert event.saving == (None if saving is None else pytest.approx(saving))


def test_durations() -> None:
    assert parse_duration("00:00.13") == pytest.approx(0.13)
    assert parse_duration("12:34.56") == pytest.approx(754.56)
    assert parse_duration("2:00:00.00") == pytest.approx(7200.0)
    assert parse_duration("7.5") == pytest.approx(7.5)
    assert parse_duration("a:b") is None
    assert parse_duration("1:2:3:4") is None


def test_fra_line_fields() -> None:
    line = (
        "Fra:250 Mem:10.11M (Peak 10.83M) | Time:01:02:03.04 | Remaining:00:00.00 "
        "| Mem:0.90M, Peak:0.90M | Scene, ViewLayer | Sample 1/4"
    )
    event = parse_line(line)
    assert event == FraLine(250, pytest.approx(3723.04), 0.0, "rendering", 1, 4)
    assert parse_line("Fra:7 Mem:1.00M (Peak 1.00M) | Rendering") == FraLine(
        7, None, None, "rendering"
    )


def test_error_lines() -> None:
    missing = parse_line("Error: Cannot read file '/x/a.blend': No such file or directory")
    assert missing == ErrorLine(
        "Error: Cannot read file '/x/a.blend': No such file or directory", True
    )
    for fatal in (
        "Error: File format is not supported in file '/tmp/bad.blend'",
        "Error: Cannot render, no camera",
        "Error: Build without OpenImageDenoiser",
    ):
        assert parse_line(fatal) == ErrorLine(fatal, True)
    soft = "Error: Format from '-F / --render-format' not known or not compiled in this release."
    assert parse_line(soft) == ErrorLine(soft, False)
    assert parse_line("No device available to denoise on") is None


def test_first_error_is_kept() -> None:
    tracker = LogTracker([1])
    feed_all(
        tracker,
        [
            "Blender 3.4.1",
            "Error: Format from '-F / --render-format' not known",
            "Error: Cannot render, no camera",
        ],
    )
    assert tracker.first_error == "Error: Format from '-F / --render-format' not known"
    assert tracker.fatal_error == "Error: Cannot render, no camera"


def test_blender_4_log_without_leading_space() -> None:
    lines = [
        "Blender 4.2.0 (hash a51f293548ad built 2024-07-16 06:29:35)",
        "Fra:3 Mem:20.00M (Peak 20.00M) | Time:00:00.10 | Rendering 1 / 64 samples",
        "Fra:3 Mem:20.00M (Peak 20.00M) | Time:00:01.70 | Rendering 64 / 64 samples",
        'Saved: "/renders/sh010/0003.exr"',
        "Time: 00:01.90 (Saving: 00:00.20)",
        "",
        "Fra:4 Mem:20.00M (Peak 20.00M) | Time:00:00.10 | Rendering 1 / 64 samples",
        "Saved: '/renders/sh010/0004.exr'",
        "Time: 1:00:02.00 (Saving: 00:00.20)",
    ]
    events = feed_all(LogTracker([3, 4]), lines)
    assert events == [
        FrameStarted(3),
        FrameSaved(3, "/renders/sh010/0003.exr", 1.9),
        FrameStarted(4),
        FrameSaved(4, "/renders/sh010/0004.exr", 3602.0),
    ]


def test_save_without_time_line_is_released_by_next_frame_and_end() -> None:
    tracker = LogTracker([1, 2])
    assert frame_events(tracker.feed("Fra:1 Mem:1M | Time:00:00.00 | Sync", 10.0)) == [
        FrameStarted(1)
    ]
    assert tracker.feed("Saved: '/o/0001.png'", 12.5) == []  # held for a Time: line
    assert frame_events(tracker.feed("Fra:2 Mem:1M | Time:00:00.00 | Sync", 12.6)) == [
        FrameSaved(1, "/o/0001.png", 2.5),  # wall clock: first Fra:1 to Saved
        FrameStarted(2),
    ]
    assert tracker.feed("Saved: '/o/0002.png'", 13.0) == []
    assert tracker.finish(13.1) == [FrameSaved(2, "/o/0002.png", 0.4)]


def test_zero_blender_time_falls_back_to_wall_clock() -> None:
    tracker = LogTracker([5])
    tracker.feed("Fra:5 Mem:1M | Time:00:00.00 | Sync", 1.0)
    tracker.feed("Saved: '/o/0005.png'", 1.004)
    events = tracker.feed(" Time: 00:00.00 (Saving: 00:00.00)", 1.005)
    assert len(events) == 1
    saved = events[0]
    assert isinstance(saved, FrameSaved)
    assert 0 < saved.render_time < 0.01


def test_saves_without_fra_lines_follow_the_ordered_frames() -> None:
    tracker = LogTracker([4, 6, 9], start=0.0)
    events = feed_all(tracker, ["Saved: '/o/a.png'", "Saved: '/o/b.png'", "Saved: '/o/c.png'"])
    assert [(e.frame, e.path) for e in events if isinstance(e, FrameSaved)] == [
        (4, "/o/a.png"),
        (6, "/o/b.png"),
        (9, "/o/c.png"),
    ]


def test_second_view_of_a_frame_is_not_a_second_frame() -> None:
    tracker = LogTracker([1, 2])
    events = feed_all(
        tracker,
        [
            "Fra:1 Mem:1M | Time:00:00.00 | Sync",
            "Saved: '/o/0001_L.png'",
            "Saved: '/o/0001_R.png'",
            " Time: 00:00.50 (Saving: 00:00.01)",
        ],
    )
    assert [e for e in events if isinstance(e, FrameSaved)] == [FrameSaved(1, "/o/0001_L.png", 0.5)]
    assert tracker.frames_saved == [1]


# -- progress -----------------------------------------------------------------------------------

CYCLES = "Fra:{f} Mem:9.40M (Peak 10.83M) | Time:00:0{t}.07 | {rest}"


def progress_of(tracker: LogTracker, lines: list[str]) -> list[FrameProgress]:
    out: list[FrameProgress] = []
    for i, line in enumerate(lines):
        out += [e for e in tracker.feed(line, i * 0.01) if isinstance(e, FrameProgress)]
    return out


def test_progress_phases_samples_and_remaining() -> None:
    lines = [
        "Read blend: /tmp/s.blend",
        CYCLES.format(f=1, t=0, rest="Mem:0.00M | Scene, ViewLayer | Synchronizing object | Cube"),
        CYCLES.format(f=1, t=0, rest="Mem:0.00M | Scene, ViewLayer | Loading render kernels"),
        CYCLES.format(f=1, t=0, rest="Mem:0.00M | Scene, ViewLayer | Updating Objects | Copying"),
        CYCLES.format(f=1, t=0, rest="Mem:4.26M | Scene, ViewLayer | Sample 0/128"),
        CYCLES.format(
            f=1, t=1, rest="Remaining:00:11.92 | Mem:4.82M | Scene, ViewLayer | Sample 1/128"
        ),
        CYCLES.format(
            f=1, t=2, rest="Remaining:01:02.50 | Mem:4.82M | Scene, ViewLayer | Sample 64/128"
        ),
        # Cycles says `Sample 0/N` once more as it stops: the count does not go back.
        CYCLES.format(
            f=1, t=3, rest="Remaining:00:00.10 | Mem:4.82M | Scene, ViewLayer | Sample 0/128"
        ),
        CYCLES.format(f=1, t=3, rest="Mem:4.82M | Scene, ViewLayer | Compositing"),
        CYCLES.format(f=1, t=3, rest="Mem:4.82M | Scene, ViewLayer | Finished"),
        "Saved: '/o/0001.png'",
        CYCLES.format(f=2, t=0, rest="Mem:0.00M | Scene, ViewLayer | Synchronizing object | Cube"),
    ]
    got = progress_of(LogTracker([1, 2]), lines)
    assert [(p.frame, p.phase, p.samples, p.total, p.remaining) for p in got] == [
        (1, "loading", None, None, None),
        (1, "synchronizing", None, None, None),
        (1, "loading", None, None, None),
        (1, "synchronizing", None, None, None),
        (1, "rendering", 0, 128, None),
        (1, "rendering", 1, 128, 11.92),
        (1, "rendering", 64, 128, 62.5),
        (1, "rendering", 64, 128, 0.1),
        (1, "compositing", None, None, None),
        (1, "saving", None, None, None),
        (2, "synchronizing", None, None, None),
    ]


def test_progress_of_blender_4_and_eevee_lines() -> None:
    cycles4 = "Fra:3 Mem:12.1M (Peak 12.9M) | Time:00:01.23 | Remaining:00:11.92 | Mem:1.0M, Peak:1.0M | Scene, ViewLayer | Sample 1/128"
    eevee = "Fra:4 Mem:30.2M (Peak 31.0M) | Time:00:00.50 | Rendering 12 / 64 samples"
    assert parse_line(cycles4) == FraLine(3, 1.23, 11.92, "rendering", 1, 128)
    assert parse_line(eevee) == FraLine(4, 0.5, None, "rendering", 12, 64)


def test_progress_of_the_recorded_log() -> None:
    got = progress_of(LogTracker([1, 2]), RECORDED.read_text().splitlines())
    assert {p.frame for p in got} == {1, 2}
    assert [p.phase for p in got[:2]] == ["loading", "synchronizing"]
    assert any(p.phase == "rendering" and p.total for p in got)


def test_throttle_passes_changes_and_four_a_second() -> None:
    throttle = ProgressThrottle(0.25)
    render = [FrameProgress(1, "rendering", n, 1000, 10.0 - n / 100) for n in range(1000)]
    sent = [throttle.offer(FrameProgress(1, "synchronizing"), 0.0)]
    # Blender prints a sample every millisecond for one second: 4 of them go, plus the first.
    sent += [throttle.offer(p, 0.001 + i * 0.001) for i, p in enumerate(render)]
    sent += [throttle.offer(FrameProgress(1, "saving"), 1.002)]  # a phase change goes at once
    sent += [throttle.offer(FrameProgress(1, "saving"), 1.5)]  # the same again: nothing new
    sent += [throttle.offer(FrameProgress(2, "saving"), 1.501)]  # a new frame goes at once
    passed = [p for p in sent if p is not None]
    assert passed[0] == FrameProgress(1, "synchronizing")
    samples = [p.samples for p in passed if p.phase == "rendering"]
    assert samples == [0, 250, 500, 750]
    assert passed[-2:] == [FrameProgress(1, "saving"), FrameProgress(2, "saving")]
    # Never more than one a quarter second within a phase.
    assert len(passed) == 7
