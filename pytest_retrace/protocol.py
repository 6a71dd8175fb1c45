"""What the launcher and the session child it starts agree on; kept tiny so the launcher,
which never runs the engine itself, does not import it."""

CHILD_ENV = "_PYTEST_RETRACE_CHILD"  # the child's configuration, as JSON
CHILD_CODE = "from pytest_retrace.session import main; main()"
DIVERGED_EXIT = 70  # exit status of a replay that is not faithful
