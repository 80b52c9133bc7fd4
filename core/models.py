"""Every table of the application database on ``Base.metadata`` (the head of ``migrations/``).

Each domain keeps its own models; importing this module registers all of them, for Alembic,
the admin panel and the tests.
"""

from core.battles import models as battle_models  # noqa: F401
from core.chain import models as chain_models  # noqa: F401
from core.content import catalog_models as content_catalog_models  # noqa: F401
from core.content import models as content_models  # noqa: F401
from core.events import models as event_models  # noqa: F401
from core.identity import models as identity_models  # noqa: F401
from core.leaderboards import models as leaderboard_models  # noqa: F401
from core.metrics import models as metric_models  # noqa: F401
from core.rewards import models as reward_models  # noqa: F401
from core.scores import models as score_models  # noqa: F401
