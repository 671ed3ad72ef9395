"""`python -m tests.faulty_archiver`: the archiver, dying after its n-th commit (see tests/faults.py)."""

from archiver.consumer import EventConsumer
from archiver.main import main
from tests.faults import crash_at_checkpoint

if __name__ == "__main__":
    crash_at_checkpoint(EventConsumer, "after_commit")
    main()
