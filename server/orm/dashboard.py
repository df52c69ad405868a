"""Dashboard figures of large projects, computed by the beat so that a page reads one row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base


class DashboardFigure(Base):
    __tablename__ = "dashboard_figures"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(30), primary_key=True)  # funnel
    computed_at: Mapped[datetime]
    body: Mapped[dict[str, Any]]
