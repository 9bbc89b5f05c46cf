"""``python -m tests.rotation.frozen_cli ARGS``: keyguard with its clock moved to $KG_TEST_NOW.

Freezegun at the CLI edge is how rotation tests make fresh moto keys look old; the moto
server runs in another process and keeps real time.
"""

import os
from datetime import datetime

import freezegun

if __name__ == "__main__":
    freezegun.freeze_time(datetime.fromisoformat(os.environ["KG_TEST_NOW"]), tick=True).start()
    from keyguard.cli import main

    main()
