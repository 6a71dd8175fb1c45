"""A job configures logging only once it knows what it will do (logging imported late)."""
import json
import sys


def main():
    config = json.load(open("config.json"))
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    log = logging.getLogger("stock")
    log.info("starting with threshold %s", config["threshold"])
    log.warning("greeting is %r", config["greeting"])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s.%(msecs)03d] %(message)s", datefmt="%H:%M:%S"))
    log.addHandler(handler)
    log.error("done")


main()
