"""`python -m tests.faulty_relay`: the relay, dying at `FAULT_CRASH_POINT` (see tests/faults.py)."""

from relay.main import main
from relay.pump import OutboxPump
from tests.faults import crash_at_checkpoint

if __name__ == "__main__":
    crash_at_checkpoint(OutboxPump, "after_publish")
    main()
