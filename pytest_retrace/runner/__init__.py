"""The runner: recordings and replays in processes of their own.

``launcher`` is the parent side (starts the child with the hash seed fixed, passes its output
through, writes END or concludes the verdict), ``child`` the child's entry (imported by no other
module), ``forkserver`` replays request and call recordings in forks of a server that imported the
app once, ``protocol`` is what parent and child agree on, ``verdict`` what a replay proved. Above
the recording kinds; below the front ends.
"""
