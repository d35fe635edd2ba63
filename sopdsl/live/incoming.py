"""An event as a bot sends it, the model pydantic checks it by on `intake.py`'s careful path.

Apart from `intake.py` because that module is compiled (mypyc), and a compiled module's class
does not keep the annotations pydantic reads its fields from.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr


class Incoming(BaseModel):
    """The fields of an event, strictly typed; any other field is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: StrictStr
    time: StrictInt | StrictFloat | StrictStr | None = None
    member: StrictStr | None = None
    group: StrictStr | None = None
    name: StrictStr | None = None
    data: dict[StrictStr, Any] = {}
    id: StrictStr | None = None
