"""Engine, URL handling, the embedded server, the data contract and pmfin's migrations."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlalchemy is imported by what uses the database, not by `import pmfin.db`
    from sqlalchemy.engine import URL, Engine

    from pmfin.settings import Settings


@dataclass
class Database:
    url: URL
    embedded: bool
    home: Path
    created: bool = False  # the embedded server's data directory was created just now (empty)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        from pmfin.db import url as urls

        if settings.database_url:
            return cls(urls.normalize(settings.database_url), embedded=False, home=settings.home)
        from pmfin.db import embedded

        started = embedded.launch(settings.home)
        return cls(urls.normalize(started.url), embedded=True, home=settings.home, created=started.created)

    @property
    def display_url(self) -> str:
        from pmfin.db import url as urls

        return urls.display(self.url)

    @cached_property
    def engine(self) -> Engine:
        from sqlalchemy import create_engine

        return create_engine(
            self.url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10, "application_name": "pmfin"},
        )
