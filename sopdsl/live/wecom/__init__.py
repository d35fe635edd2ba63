"""The WeCom (企业微信) adapter, both ways: callbacks in as sopdsl events, actions out through the API.

Input: WeCom's customer and customer-group change callbacks (`callback.py`, mapped by
`events.py`), and the runtime's `send`, `tag`, `untag`, `task` and `escalate` actions
(`executor.py`; a staff task is an app message to its assignee, `tasks.py`). Output:
events fed to the service, and calls to WeCom's external-contact API (`api.py`: the token,
error codes, retries). `contacts.py` carries what the callbacks say about a customer (owner,
welcome code) and staff to the executor, through the runtime's store. `settings.py` reads the `wecom` table of an executors file.
Needs the `wecom` extra (`pip install 'sopdsl[wecom]'`) for the callback's decryption.
"""

from __future__ import annotations

from sopdsl.live.wecom.api import WeComApi, WeComError
from sopdsl.live.wecom.callback import WeComCallback
from sopdsl.live.wecom.contacts import Contacts
from sopdsl.live.wecom.executor import WeComExecutor

__all__ = ["Contacts", "WeComApi", "WeComCallback", "WeComError", "WeComExecutor"]
