"""What a job's end sets off, and the AFTER graph it runs down.

A job pushed `AFTER` other jobs waits, pending, until every parent has succeeded; a parent that
ends dead or canceled (or is deleted) cancels it instead, and its own children after it, down
the graph. The graph itself (`_children`: parent id -> ids pushed after it) is state, kept by
the apply path (`jobs/jobstate.py`), so replay rebuilds it; this part of the engine walks it
when a job ends, in `_finished`, which also wakes JOB.WAIT and JOB.LOGS followers and settles
the job's batch. Cancelling lives here too: it is how a failed parent's children end, and
every other way a job is canceled (JOB.CANCEL, an EXPIRE passing) ends the same way.

A parent may be gone from memory when a child looks at it: archived jobs ended, and the caller
(JOB.PUSH) looks those up in the archive; a parent missing everywhere at push is an unknown
id, and later one that was archived since, so it counts as succeeded (had it failed, its
children would have been canceled when it ended).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from jobcached.errors import CommandError
from jobcached.jobs.jobstate import CANCEL, CANCELED, DEAD, PENDING, SUCCEEDED, JobState, job_fields
from jobcached.jobs.model import Job, State, next_state

log = logging.getLogger("jobcached.jobs")


class Dependencies(JobState):
    """The engine's part that ends jobs and releases what waited on them; see the module
    docstring."""

    #: serve a queue's blocked fetchers: a job made due may be what they wait for (defined by
    #: the engine's fetching part, `jobs/fetching.py`, which builds on this one)
    _serve_waiters: Callable[[str], None]

    def _parents_status(self, parents: Sequence[str], archived: dict[str, State], *,
                        strict: bool = False) -> tuple[str | None, bool]:
        """(why the job must be canceled: the first parent that ended dead or canceled, as
        the cancel reason; whether any parent is yet to succeed).
        A parent in neither memory nor `archived` has been archived since (it ended, and had
        it failed this job would have been canceled then): it counts as succeeded, unless
        `strict` (at push), where it is an unknown id."""
        waiting = False
        for parent_id in parents:
            parent = self.jobs.get(parent_id)
            state = parent.state if parent is not None else archived.get(parent_id)
            if state is None:
                if strict:
                    raise CommandError(f"no such parent job {parent_id}")
                continue
            if state is DEAD or state is CANCELED:
                return f"parent {parent_id} is {state.value}", waiting
            if state is not SUCCEEDED:
                waiting = True
        return None, waiting

    def _cancel(self, job: Job, reason: str, *, cascade: bool = True) -> None:
        next_state(job, CANCEL)  # raises if not allowed
        self._commit_job(job, {"op": "cancel", "id": job.id, "now": self.clock.now_ms(),
                               "reason": reason})
        self.queues[job.queue].canceled += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job canceled", extra=job_fields(job, reason=reason))
        self._finished(job, cascade=cascade)

    def _finished(self, job: Job, *, cascade: bool = True) -> None:
        """A job ended: wake JOB.WAIT and JOB.LOGS followers, settle its batch, and release
        (or cancel) the jobs that were pushed AFTER it. Each is looked for before it is
        called: most jobs have none of them, and this runs once per job."""
        self.waiters.job_ended(job)
        if job.batch:
            self.batches.settle(job.batch)
        if cascade and job.id in self._children:
            self._release_children(job)

    def _release_children(self, parent: Job) -> None:
        """Queue the children whose parents have all succeeded; cancel, down the graph, those
        with a parent that ended dead or canceled. A work list, not recursion: a chain may
        be thousands of jobs long."""
        work = [parent.id]
        while work:
            for child_id in self._children.pop(work.pop(), ()):
                child = self.jobs.get(child_id)
                if child is None or child.state is not PENDING:
                    continue
                failed, waiting = self._parents_status(child.parents, {})
                if failed is not None:
                    self._cancel(child, failed, cascade=False)
                    work.append(child.id)
                elif not waiting:
                    self._make_due(child)

    def _make_due(self, job: Job) -> None:
        """A pending job with nothing left to wait for but (maybe) its run-at time."""
        now = self.clock.now_ms()
        if job.run_at_ms > now:
            if job.timer is None:
                job.timer = self.timers.schedule(job.run_at_ms, ("due", job))
            return
        self._commit_job(job, {"op": "due", "id": job.id, "now": now})
        self._serve_waiters(job.queue)

    def _take_children(self, parent_ids: list[str]) -> list[tuple[str, str]]:
        """(child id, parent id) of every job pushed AFTER these parents, which are about to
        be deleted: taken out of the graph now, canceled by `_orphaned` once they are gone."""
        return [(child_id, parent_id) for parent_id in parent_ids
                for child_id in self._children.pop(parent_id, ())]

    def _orphaned(self, orphans: list[tuple[str, str]]) -> None:
        """Cancel the children of deleted parents (and theirs, down the graph): they can never
        run, and a parent missing from memory would otherwise count as archived, so
        succeeded."""
        for child_id, parent_id in orphans:
            child = self.jobs.get(child_id)
            if child is not None and child.state is PENDING:
                self._cancel(child, f"parent {parent_id} was deleted")
