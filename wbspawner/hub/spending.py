"""The home page's "your spending this month" panel, read for the hub's templates.

This module owns :func:`template_var`: a callable for
``c.JupyterHub.template_vars`` that JupyterHub calls with the user whose page it
renders; what it returns, called by the home page's template, gives
:class:`~wbspawner.costs.mine.MySpending` (their cost this month per size and
their group budget's state), or ``None`` when there is no accounting database
or it cannot be read (the page then shows no panel; a failure is logged, never
shown).

JupyterHub calls template variables synchronously, in its event loop; the read
is two small indexed queries on the accounting database, in line with the
hub's own synchronous ORM calls on every page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from wbspawner.costs.accounting import open_db, report
from wbspawner.costs.mine import MySpending, my_spending
from wbspawner.model import Profiles
from wbspawner.spawn.budget import budget_state

log = logging.getLogger("JupyterHub")


def read_spending(
    sessions: sessionmaker[Session],
    profiles: Profiles,
    user: str,
    groups: list[str],
    *,
    is_admin: bool,
    now: datetime,
) -> MySpending:
    """Return a user's spending this month from the accounting database.

    Args:
        sessions: the accounting database's sessions.
        profiles: the profiles in force (budgets, sizes).
        user: the user's name.
        groups: the user's groups.
        is_admin: whether the user is a hub admin.
        now: the current time (UTC): names the month, open records run to it.

    Returns:
        The panel.
    """
    month = now.strftime("%Y-%m")
    with sessions() as session:
        mine = report(session, by="size", month=month, now=now, user=user)
        spent = (
            {r.key: r.cost for r in report(session, by="group", now=now)}
            if profiles.budgets
            else {}
        )
    state = budget_state(profiles, groups, spent, now, is_admin=is_admin)
    return my_spending(mine, state, profiles, month)


def template_var(
    url: str | None,
    profiles: Callable[[], Profiles],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[Any], Callable[[], MySpending | None]]:
    """Return the ``wb_spending`` template variable for ``JupyterHub.template_vars``.

    JupyterHub calls every template variable for every page it renders; this
    one only binds the user, and the database is read when a template calls the
    result (``home.html`` does), so the other pages cost nothing.

    Args:
        url: the accounting database (``None``: no panel).
        profiles: returns the profiles in force (the hot-reloaded source).
        clock: returns the current UTC time.

    Returns:
        A function of the hub's user returning a function of nothing that
        returns the panel (``None`` without a user or a readable database).
    """
    # one connection pool for the hub's life, opened (and migrated) at first use
    opened: list[sessionmaker[Session]] = []

    def read(user: Any) -> MySpending | None:
        if user is None or not url:
            return None
        groups = [g.name for g in getattr(user, "groups", [])]
        try:
            if not opened:
                opened.append(open_db(url))
            return read_spending(
                opened[0],
                profiles(),
                user.name,
                groups,
                is_admin=bool(user.admin),
                now=clock(),
            )
        except SQLAlchemyError as err:
            log.warning("Home page: %s's spending cannot be read: %s", user.name, err)
            return None

    def spending(user: Any) -> Callable[[], MySpending | None]:
        return lambda: read(user)

    return spending
