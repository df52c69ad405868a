from typing import Any

from server.core.errors import Conflict


class LeaseLost(Conflict):
    code = "lease_lost"

    def __init__(self, detail: str = "this assignment is no longer leased to you") -> None:
        super().__init__(detail)


class StaleLabels(Conflict):
    code = "stale_labels"

    def __init__(self, current: list[dict[str, Any]]) -> None:
        super().__init__(
            "someone changed these labels after you loaded them; review the current values",
            extra={"current": current},
        )


class UndoWindowClosed(Conflict):
    code = "undo_window_closed"

    def __init__(self) -> None:
        super().__init__("the submit can no longer be undone")
