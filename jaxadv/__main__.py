import sys

from jaxadv.cli import main

sys.exit(main())
