"""What the stages share that needs no Beam: the trainer, the server and the
workflow can import it without loading apache_beam (more of what they share,
now in pipelines/, belongs here too).

- errors: the one exception type a command line reports on one line (exit 2).
- locks: one writer per output directory.
- storage: full disks, read-only mounts and refused permissions said in one line.
"""
