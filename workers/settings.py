"""The GPU worker's settings: the same `AA_` variables as the server, only those it needs.

It has no database; it reads images by URI and answers through the broker.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AA_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    broker_url: str = ""
    # "cuda", "cuda:1", "cpu"; empty picks CUDA when present.
    device: str = ""

    def broker(self) -> str:
        # The embedded default, as the server derives it.
        return self.broker_url or f"filesystem://{self.data_dir.expanduser().resolve() / 'broker'}"
