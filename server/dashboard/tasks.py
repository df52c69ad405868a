from __future__ import annotations

from celery import shared_task

from server.core import runtime, tasknames
from server.dashboard import service
from server.flywheel import service as flywheel
from server.prelabel import service as prelabel


@shared_task(name=tasknames.DASHBOARD_STORE_FUNNELS)
def store_funnels() -> list[int]:
    """The beat's minute: count the slow figures of large projects (their funnels and work
    series, the flywheel's activity, the active labeler's predictions) so that their pages read
    one row; returns the projects whose funnel was counted."""
    with runtime.database().session_scope() as session:
        projects = service.large_projects(session)
        service.store_work(session, projects)
        flywheel.store_activity(session, projects)
        prelabel.store_prediction_counts(session, projects)
        return service.store_funnels(session, projects)
