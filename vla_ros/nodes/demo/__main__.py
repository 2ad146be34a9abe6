"""``python -m vla_ros.nodes.demo`` = ``vla-ros demo``."""

import sys

from vla_ros.nodes.demo.app import main

sys.exit(main())
