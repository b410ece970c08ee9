"""A worker process's entry: `python -P -m xor_rosetta.app.workers READ_FD WRITE_FD` serves tasks until told to stop."""
import sys
from multiprocessing.connection import Connection

from xor_rosetta.app.workers.serve import serve  # by its own name, so that note() is that module's

serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
