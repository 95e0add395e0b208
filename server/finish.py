"""How a job ends, and its finishing step: once every frame of a job that asked for a movie is done, the job
stays `active` while its movie is encoded, and ends `completed` only once the movie exists
(or `failed`, saying why, with its frames kept). The movie's own status (`waiting`,
`encoding`, `done`, `failed`, `not made`) is the job row's `movie_status`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from brender.server import movie
from brender.server.faults import Faults
from brender.server.live import MOVIE_ROW, LiveJob
from brender.server.states import FrameStatus, JobStatus, job_outcome

log = logging.getLogger(__name__)


class Finishing(Faults):
    """The movie's states, kept with the job's (the scheduler is one of these)."""

    jobs: dict[int, LiveJob]
    """Every unfinished job (the scheduler's)."""
    finishing: Callable[[LiveJob], None] | None = None
    """Set by the farm: start the job's finishing step (movie.Finisher), which answers
    through `movie_ended`."""

    def movie_to(self, job: LiveJob, status: str, file: str = "") -> None:
        job.movie_status = status
        self.store.put(MOVIE_ROW, job.id, (status, file, job.id))
        self.emit("job", {"id": job.id})

    def held_for_movie(self, job: LiveJob, outcome: JobStatus) -> tuple[JobStatus, str] | None:
        """For a job whose frames are all final: None while its movie is still to be made
        (the encoding starts here), else the outcome and error the job ends with."""
        if job.movie is None:
            return outcome, ""
        if outcome != JobStatus.COMPLETED:
            self.movie_to(job, movie.NOT_MADE)
            return outcome, ""
        if job.movie_status == movie.DONE:
            return outcome, ""
        if job.movie_status == movie.FAILED:
            return JobStatus.FAILED, job.error
        if job.movie_status != movie.ENCODING and job.status == JobStatus.ACTIVE.value:
            self.movie_to(job, movie.ENCODING)
            if self.finishing is not None:
                self.finishing(job)
        return None

    def movie_ended(self, job_id: int, made: Path | None, error: str) -> None:
        """The finishing step's answer: the movie, or why there is none. The job ends now,
        or when it is resumed if it was paused meanwhile; a job gone meanwhile is left be."""
        job = self.jobs.get(job_id)
        if job is None or job.movie_status != movie.ENCODING:
            return
        if made is None:
            job.error = error
            self.movie_to(job, movie.FAILED)
        else:
            self.movie_to(job, movie.DONE, str(made))
        self.settle(job)

    def settle(self, job: LiveJob) -> None:
        """Finish the job once all its frames are final and no chunk of it is running: its
        outcome from its frame counts, held while its movie is made."""
        if job.left() or job.running or not job.dispatchable:
            return
        c = job.counts
        outcome = job_outcome(
            c[FrameStatus.DONE], c[FrameStatus.FAILED], c[FrameStatus.CANCELED], sum(c.values())
        )
        if outcome is None:
            return
        held = self.held_for_movie(job, outcome)
        if held is None:
            return  # active while its movie is encoded
        outcome, error = held
        if outcome != JobStatus.COMPLETED and job.first_failure is not None:
            error = f"frame {job.first_failure[0]}: {job.first_failure[1]}"
        self.job_to(job, outcome, error=error)
        log.info("job %d %s", job.id, outcome.value)
        self.drop(job.id)

    def drop(self, job_id: int) -> LiveJob | None:
        raise NotImplementedError  # the scheduler's: the job leaves the dispatch queue

    def settle_idle(self) -> None:
        """After a start: jobs whose frames are all final but which did not end (the master
        stopped while their movie was encoding) finish now."""
        for job in list(self.jobs.values()):
            if not job.left() and not job.running and job.dispatchable:
                self.settle(job)

    def movie_target(self, job: LiveJob) -> Path:
        assert job.movie is not None
        return movie.movie_path(job.output, job.frame_start, job.frame_end, job.movie)
