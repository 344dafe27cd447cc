"""Per-invocation state shared by commands through ``ctx.obj``; built lazily, no module globals."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import typer

from pmfin.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from stripe import StripeClient


class AppContext:
    def __init__(self, flags: dict[str, Any] | None = None, env_file: Any = None):
        self.flags = dict(flags or {})
        self.env_file = env_file

    @cached_property
    def settings(self) -> Settings:
        return Settings.load(self.flags, env_file=self.env_file)

    @property
    def verbose(self) -> bool:
        return bool(self.flags.get("verbose"))

    @cached_property
    def database(self):  # -> pmfin.db.Database
        from pmfin.db import Database, embedded
        from pmfin.output import note

        db = Database.from_settings(self.settings)
        if db.created:  # a typo in --home / PMFIN_HOME would otherwise go unnoticed: an empty database
            note(f"created a new data directory {embedded.data_dir(db.home)} with an empty embedded PostgreSQL "
                 "(is --home / PMFIN_HOME what you meant?)")
        return db

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @cached_property
    def stripe(self) -> StripeClient:
        from pmfin.stripe_ops.client import build_client

        return build_client(self.settings)


def get_app(ctx: typer.Context) -> AppContext:
    """The AppContext of this invocation (created on first use, e.g. in tests invoking a sub-app)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj
