"""The ``tandem`` command line, the local stack (router, edge workers and cloud pools as processes
on one machine) and the demo: the top of the server side, importing every component."""
