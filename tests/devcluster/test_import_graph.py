"""devcluster's modules import each other without cycles.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a
class spread over modules that import each other is what this rules out. Which
part may import which is the import-linter contract in ``pyproject.toml``.
"""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("devcluster", cache_dir=None)
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == []
