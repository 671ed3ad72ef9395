import sys

from fanout.main import main

sys.exit(main())
