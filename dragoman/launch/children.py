"""Child processes of the local stacks, which must never outlive their launcher.

util-linux `setpriv --pdeathsig` has the kernel send the child SIGTERM when the thread that
started it ends, which covers a launcher killed with SIGKILL (a Python `preexec_fn` would
do the same, but forking a threaded gRPC process is unsafe). Launchers therefore start
children from the thread that lives as long as they do, their event loop's.
"""

import logging
import shutil

logger = logging.getLogger(__name__)


def die_with_parent() -> list[str]:
    """The command prefix that has a child get SIGTERM when its parent thread ends."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        logger.warning("setpriv not found: children would outlive a launcher killed with SIGKILL")
        return []
    return [setpriv, "--pdeathsig", "TERM", "--"]
