"""Log a failure with its traceback and go on."""
import json
import logging

logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger(__name__)


def load(name):
    with open(name) as f:
        return json.load(f)


for name in ["config.json", "missing.json"]:
    try:
        print(name, load(name))
    except OSError:
        log.exception("could not load %s", name)
print("carrying on")
