"""What every stage shares and none of them owns, with no Beam in it: the
trainer, the server and the workflow import this package, never pipelines/.

- errors: the one exception type a command line reports on one line (exit 2).
- locks: one writer per output directory.
- storage: full disks, read-only mounts and refused permissions said in one line.
"""
