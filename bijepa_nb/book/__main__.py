"""``python -m bijepa_nb.book``: execute the chapters, then render the book (see ``runner``)."""

import sys

from .runner import main

sys.exit(main())
