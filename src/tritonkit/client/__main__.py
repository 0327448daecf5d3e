import sys

from tritonkit.client.cli import main

sys.exit(main())
