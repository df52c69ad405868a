from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ImportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_field: str = Field(
        default="image", min_length=1, max_length=100, description="the task's data key of the image"
    )
    category_map: dict[str, str] = Field(
        default_factory=dict,
        max_length=1000,
        description="Label Studio from_name -> category key, where the names differ",
    )


class TaskProblem(BaseModel):
    task: int = Field(description="position of the task in the file, from 0")
    task_id: str | None = Field(description="the task's Label Studio id")
    code: str
    detail: str
    from_name: str | None = None
    imported: bool = Field(description="whether the rest of the task was imported")


class ImportReport(BaseModel):
    tasks: int
    imported: int = Field(description="tasks whose image, subject and readable labels are in the project")
    failed: int = Field(description="tasks that imported nothing")
    images_added: int
    images_existing: int
    predictions_added: int
    labels_verified: int = Field(description="labels set to verified from an annotation")
    labels_unchanged: int
    problems: list[TaskProblem]
